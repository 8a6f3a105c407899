//! Webhook management through the REST API, on SQLite and PostgreSQL.

mod common;

use common::{settings, with_server};
use lwh_domain::{Plan, WebhookId};
use reqwest::Method;
use serde_json::{json, Value};

async fn problem(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    let ct = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body: Value = res.json().await.expect("json body");
    assert_eq!(ct, "application/problem+json", "{status} {body}");
    assert_eq!(body["status"], status, "{body}");
    (status, body)
}

both_backends!(free_plan_stops_at_three_webhooks, |backend| async move {
    with_server(backend, settings(Plan::Free), |s| async move {
        for i in 0..3 {
            s.create_webhook(
                &format!("https://hooks.example.com/{i}"),
                &["course_completed"],
            )
            .await;
        }
        let res = s
            .manage(Method::POST, "/api/v1/webhooks")
            .json(&json!({"url": "https://hooks.example.com/4", "events": ["course_completed"]}))
            .send()
            .await
            .unwrap();
        let (status, body) = problem(res).await;
        assert_eq!(status, 403);
        assert_eq!(body["code"], "plan_limit_reached");
        let list = s.get_json("/api/v1/webhooks").await;
        assert_eq!(
            list["usage"],
            json!({"used": 3, "limit": 3, "plan": "free"})
        );
        assert_eq!(list["data"].as_array().unwrap().len(), 3);
    })
    .await
});

both_backends!(pro_plan_has_no_cap, |backend| async move {
    with_server(backend, settings(Plan::Pro), |s| async move {
        for i in 1..=100 {
            s.create_webhook(
                &format!("https://hooks.example.com/{i}"),
                &["cohort_deleted"],
            )
            .await;
        }
        let list: Value = s
            .manage(Method::GET, "/api/v1/webhooks")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            list["usage"],
            json!({"used": 100, "limit": null, "plan": "pro"})
        );
    })
    .await
});

both_backends!(
    concurrent_creations_cannot_overfill_free,
    |backend| async move {
        with_server(backend, settings(Plan::Free), |s| async move {
        let attempts = (0..8).map(|i| {
            s.manage(Method::POST, "/api/v1/webhooks")
                .json(&json!({"url": format!("https://hooks.example.com/{i}"), "events": ["quiz_passed"]}))
                .send()
        });
        let results = futures_join_all(attempts).await;
        let created = results.iter().filter(|r| r.as_ref().unwrap().status() == 201).count();
        assert_eq!(created, 3);
        assert_eq!(s.app.store().count_webhooks().await.unwrap(), 3);
    })
    .await
    }
);

async fn futures_join_all<F: std::future::Future>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output> {
    let handles: Vec<_> = futures.collect();
    let mut out = Vec::new();
    // Poll them concurrently by boxing into a JoinSet-free join.
    let joined = async move {
        let mut pinned: Vec<std::pin::Pin<Box<F>>> = handles.into_iter().map(Box::pin).collect();
        let mut results: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
        std::future::poll_fn(|cx| {
            let mut pending = false;
            for (i, f) in pinned.iter_mut().enumerate() {
                if results[i].is_none() {
                    match f.as_mut().poll(cx) {
                        std::task::Poll::Ready(v) => results[i] = Some(v),
                        std::task::Poll::Pending => pending = true,
                    }
                }
            }
            if pending {
                std::task::Poll::Pending
            } else {
                std::task::Poll::Ready(())
            }
        })
        .await;
        results
            .into_iter()
            .map(|r| r.expect("ready"))
            .collect::<Vec<_>>()
    };
    out.extend(joined.await);
    out
}

both_backends!(
    secret_is_shown_once_and_kept_encrypted,
    |backend| async move {
        with_server(backend, settings(Plan::Free), |s| async move {
        let created = s
            .create_webhook("https://hooks.example.com/a", &["course_completed"])
            .await;
        let secret = created["secret"].as_str().unwrap().to_owned();
        assert_eq!(secret.len(), 32);
        assert!(secret.chars().all(|c| c.is_ascii_alphanumeric()));
        let id = created["id"].as_str().unwrap().to_owned();

        // A client-supplied secret is returned once too.
        common::logs::remember("my-own-secret-0123456789");
        let own = s
            .manage(Method::POST, "/api/v1/webhooks")
            .json(&json!({"url": "https://hooks.example.com/b", "events": ["quiz_passed"], "secret": "my-own-secret-0123456789"}))
            .send()
            .await
            .unwrap();
        assert_eq!(own.status(), 201);
        let own: Value = own.json().await.unwrap();
        assert_eq!(own["data"]["secret"], "my-own-secret-0123456789");

        let mut texts = Vec::new();
        for path in ["/api/v1/webhooks".to_owned(), format!("/api/v1/webhooks/{id}")] {
            texts.push(s.manage(Method::GET, &path).send().await.unwrap().text().await.unwrap());
        }
        let patched = s
            .manage(Method::PATCH, &format!("/api/v1/webhooks/{id}"))
            .json(&json!({"url": "https://hooks.example.com/moved", "events": ["quiz_failed", "quiz_passed"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(patched.status(), 200);
        let patched_text = patched.text().await.unwrap();
        let patched_json: Value = serde_json::from_str(&patched_text).unwrap();
        assert_eq!(patched_json["data"]["url"], "https://hooks.example.com/moved");
        assert_eq!(patched_json["data"]["events"], json!(["quiz_passed", "quiz_failed"]));
        texts.push(patched_text);
        for text in &texts {
            assert!(!text.contains(&secret), "secret leaked in {text}");
            assert!(!text.contains("my-own-secret"), "secret leaked in {text}");
            assert!(!text.contains("\"secret\""), "secret field in {text}");
        }

        // The edit preserved the secret: the stored ciphertext still opens to it.
        let stored = s
            .app
            .store()
            .get_webhook(id.parse::<WebhookId>().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(s.master_key.open(&stored.secret_ciphertext, &id).unwrap().expose(), secret);

        // Not in clear anywhere in the database.
        let dump = common_dump(&s).await;
        for needle in [secret.as_str(), "my-own-secret-0123456789"] {
            assert!(!dump.contains(needle), "secret found in the database");
            let hex: String = needle.bytes().map(|b| format!("{b:02x}")).collect();
            assert!(!dump.contains(&hex), "secret found hex-encoded in the database");
        }
    })
    .await
    }
);

/// Everything the database holds, as text: the SQLite files' bytes, or every PostgreSQL row.
async fn common_dump(s: &common::TestServer) -> String {
    use sqlx::{Connection, Row};
    let db = s.db.as_ref().unwrap();
    match &db.target {
        lwh_storage::DatabaseTarget::Sqlite(path) => {
            // Checkpoint so the main file holds everything, then read file and WAL.
            let mut out = Vec::new();
            for suffix in ["", "-wal"] {
                let p = format!("{}{suffix}", path.display());
                if let Ok(bytes) = std::fs::read(&p) {
                    out.extend(bytes);
                }
            }
            String::from_utf8_lossy(&out).into_owned()
        }
        lwh_storage::DatabaseTarget::Postgres(_) => {
            let schema = db.schema().unwrap();
            let mut conn = sqlx::PgConnection::connect(&common::postgres_admin_url())
                .await
                .unwrap();
            let tables = sqlx::query(
                "SELECT table_name::text AS t FROM information_schema.tables WHERE table_schema = $1",
            )
            .bind(schema)
            .fetch_all(&mut conn)
            .await
            .unwrap();
            assert!(tables.len() >= 8, "expected the schema's tables");
            let mut out = String::new();
            for t in tables {
                let table: String = t.get("t");
                let rows = sqlx::query(&format!(
                    "SELECT CAST(x AS TEXT) AS row FROM {schema}.{table} x"
                ))
                .fetch_all(&mut conn)
                .await
                .unwrap();
                for r in rows {
                    out.push_str(&r.get::<String, _>("row"));
                    out.push('\n');
                }
            }
            out
        }
    }
}

both_backends!(
    bad_input_gets_a_problem_naming_the_field,
    |backend| async move {
        with_server(backend, settings(Plan::Free), |s| async move {
        let cases: Vec<(Value, u16, &str, &str)> = vec![
            (json!({"url": "not a url", "events": ["quiz_passed"]}), 422, "validation_failed", "url"),
            (json!({"url": "ftp://example.com/", "events": ["quiz_passed"]}), 422, "validation_failed", "url"),
            (json!({"url": "http://example.com/", "events": ["quiz_passed"]}), 422, "validation_failed", "url"),
            (json!({"url": "https://u:p@example.com/", "events": ["quiz_passed"]}), 422, "validation_failed", "url"),
            (json!({"url": format!("https://example.com/{}", "a".repeat(2050)), "events": ["quiz_passed"]}), 422, "validation_failed", "url"),
            (json!({"url": "https://10.0.0.1/", "events": ["quiz_passed"]}), 422, "url_not_allowed", "url"),
            (json!({"url": "https://0x7f.1/", "events": ["quiz_passed"]}), 422, "url_not_allowed", "url"),
            (json!({"url": "https://localhost/", "events": ["quiz_passed"]}), 422, "url_not_allowed", "url"),
            (json!({"url": "https://nowhere.invalid/", "events": ["quiz_passed"]}), 422, "url_not_allowed", "url"),
            (json!({"url": "https://hooks.example.com/", "events": []}), 422, "validation_failed", "events"),
            (json!({"url": "https://hooks.example.com/", "events": ["quiz_passed", "made_up"]}), 422, "validation_failed", "events[1]"),
            (json!({"url": "https://hooks.example.com/", "events": ["cohort_deleted"]}), 422, "validation_failed", "events[0]"),
            (json!({"url": "https://hooks.example.com/", "events": ["ping"]}), 422, "validation_failed", "events[0]"),
            (json!({"url": "https://hooks.example.com/", "events": ["quiz_passed"], "colour": "red"}), 422, "validation_failed", "colour"),
            (json!({"url": 42, "events": ["quiz_passed"]}), 422, "validation_failed", "url"),
            (json!({"url": "https://hooks.example.com/", "events": "quiz_passed"}), 422, "validation_failed", "events"),
            (json!({"url": "https://hooks.example.com/", "events": [7]}), 422, "validation_failed", "events[0]"),
            (json!({"events": ["quiz_passed"]}), 422, "validation_failed", "url"),
            (json!({"url": "https://hooks.example.com/", "events": ["quiz_passed"], "secret": "short"}), 422, "validation_failed", "secret"),
            (json!({"url": "https://hooks.example.com/", "events": ["quiz_passed"], "secret": "has spaces in the secret"}), 422, "validation_failed", "secret"),
            (json!({"url": "https://hooks.example.com/", "events": ["quiz_passed"], "secret": 12345678901234567u64}), 422, "validation_failed", "secret"),
        ];
        for (body, want_status, want_code, want_field) in cases {
            let res = s
                .manage(Method::POST, "/api/v1/webhooks")
                .json(&body)
                .send()
                .await
                .unwrap();
            let (status, problem) = problem(res).await;
            assert_eq!(status, want_status, "{body} → {problem}");
            assert_eq!(problem["code"], want_code, "{body} → {problem}");
            let fields: Vec<&str> = problem["errors"]
                .as_array()
                .unwrap_or_else(|| panic!("errors missing: {problem}"))
                .iter()
                .map(|e| e["field"].as_str().unwrap())
                .collect();
            assert!(fields.contains(&want_field), "{body} → {problem}");
        }

        // Oversize, malformed and non-JSON bodies.
        let huge = format!(r#"{{"url": "https://hooks.example.com/", "events": ["quiz_passed"], "secret": "{}"}}"#, "a".repeat(300 * 1024));
        let res = s
            .manage(Method::POST, "/api/v1/webhooks")
            .header("content-type", "application/json")
            .body(huge)
            .send()
            .await
            .unwrap();
        let (status, body) = problem(res).await;
        assert_eq!((status, body["code"].as_str().unwrap()), (413, "payload_too_large"));
        let res = s
            .manage(Method::POST, "/api/v1/webhooks")
            .header("content-type", "application/json")
            .body("{\"url\": ")
            .send()
            .await
            .unwrap();
        assert_eq!(problem(res).await.1["code"], "invalid_json");
        let res = s
            .manage(Method::POST, "/api/v1/webhooks")
            .body("url=x")
            .send()
            .await
            .unwrap();
        assert_eq!(problem(res).await.0, 415);

        // PATCH is validated the same way, and cannot set Failed.
        let id = s.create_webhook("https://hooks.example.com/ok", &["quiz_passed"]).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        for (body, field) in [
            (json!({"status": "failed"}), "status"),
            (json!({"status": 1}), "status"),
            (json!({"events": []}), "events"),
            (json!({"url": "javascript:alert(1)"}), "url"),
            (json!({"secret": "abcdefghijklmnopqrstuvwxyz"}), "secret"),
        ] {
            let res = s
                .manage(Method::PATCH, &format!("/api/v1/webhooks/{id}"))
                .json(&body)
                .send()
                .await
                .unwrap();
            let (status, problem) = problem(res).await;
            assert_eq!(status, 422, "{body} → {problem}");
            assert_eq!(problem["errors"][0]["field"], field, "{body} → {problem}");
        }
        // Nothing was created by the refused requests.
        assert_eq!(s.app.store().count_webhooks().await.unwrap(), 1);
    })
    .await
    }
);

both_backends!(webhook_lifecycle_through_the_api, |backend| async move {
    with_server(backend, settings(Plan::Free), |s| async move {
        let created = s
            .create_webhook(
                "https://hooks.example.com/x",
                &["order_refunded", "student_enrolled"],
            )
            .await;
        let id = created["id"].as_str().unwrap().to_owned();
        assert!(id.starts_with("wh_") && id.len() == 29);
        assert_eq!(created["status"], "active");
        assert_eq!(created["last_triggered_at"], Value::Null);
        assert_eq!(
            created["events"],
            json!(["student_enrolled", "order_refunded"])
        );

        for status in ["paused", "disabled", "active"] {
            let res = s
                .manage(Method::PATCH, &format!("/api/v1/webhooks/{id}"))
                .json(&json!({"status": status}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["data"]["status"], status);
        }

        let res = s
            .manage(Method::DELETE, &format!("/api/v1/webhooks/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 204);
        for method in [Method::GET, Method::DELETE] {
            let res = s
                .manage(method, &format!("/api/v1/webhooks/{id}"))
                .send()
                .await
                .unwrap();
            assert_eq!(problem(res).await.1["code"], "not_found");
        }
        let res = s
            .manage(Method::GET, "/api/v1/webhooks/not-an-id")
            .send()
            .await
            .unwrap();
        assert_eq!(problem(res).await.0, 404);
        let res = s
            .manage(Method::GET, "/api/v1/nothing-here")
            .send()
            .await
            .unwrap();
        assert_eq!(problem(res).await.0, 404);
    })
    .await
});

both_backends!(catalogue_follows_the_plan, |backend| async move {
    let mut pro = settings(Plan::Pro);
    pro.extra_events = vec![lwh_domain::catalogue::ExtraEvent {
        slug: "badge_awarded".into(),
        label: Some("Badge awarded".into()),
        description: None,
    }];
    with_server(backend, settings(Plan::Free), |s| async move {
        let body: Value = s
            .manage(Method::GET, "/api/v1/catalogue")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let entries = body["data"].as_array().unwrap();
        // 18 LMS events and the 3 service events.
        assert_eq!(entries.len(), 18 + 3);
        assert_eq!(entries.iter().filter(|e| e["service"] == true).count(), 3);
        assert!(entries
            .iter()
            .all(|e| e["pro"] == false && e["example"].is_object()));
    })
    .await;
    with_server(backend, pro, |s| async move {
        let body: Value = s
            .manage(Method::GET, "/api/v1/catalogue")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let slugs: Vec<&str> = body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["slug"].as_str().unwrap())
            .collect();
        assert_eq!(slugs.len(), 18 + 3 + 13 + 1);
        assert!(slugs.contains(&"gift_redeemed") && slugs.contains(&"badge_awarded"));
        s.create_webhook(
            "https://hooks.example.com/b",
            &["badge_awarded", "gift_redeemed"],
        )
        .await;
    })
    .await;
});
