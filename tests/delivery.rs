//! The delivery engine end to end: a real receiver on 127.0.0.1, real signatures, retries,
//! statuses and the delivery log — on SQLite and on PostgreSQL.

mod common;

use std::time::{Duration, Instant};

use common::receiver::{Answer, Receiver};
use common::{delivery_settings, with_server, TestServer};
use lwh_domain::Plan;
use reqwest::Method;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(15);

async fn emit(s: &TestServer, event: &str, data: Value) -> Value {
    let res = s
        .client
        .post(s.url("/api/v1/events"))
        .bearer_auth(&s.events_token)
        .json(&json!({"event": event, "data": data}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    res.json::<Value>().await.unwrap()["data"].clone()
}

async fn get(s: &TestServer, path: &str) -> Value {
    let res = s.manage(Method::GET, path).send().await.unwrap();
    assert!(res.status().is_success(), "{path}: {}", res.status());
    res.json().await.unwrap()
}

async fn log(s: &TestServer, webhook: &str, query: &str) -> Value {
    get(s, &format!("/api/v1/webhooks/{webhook}/deliveries{query}")).await
}

/// Polls `check` until it returns Some, or panics.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Delivery rows stored for `webhook`, in any status: what ingestion created, read from the
/// database rather than inferred from a receiver that got nothing more within some wait.
async fn deliveries_stored(s: &TestServer, webhook: &str) -> usize {
    let id = webhook.parse().expect("webhook id");
    let (mut stored, mut before) = (0, None);
    loop {
        let page = s
            .app
            .store()
            .list_deliveries(id, None, before, 500)
            .await
            .expect("deliveries");
        stored += page.len();
        match page.last() {
            Some(last) if page.len() == 500 => before = Some(last.id),
            _ => return stored,
        }
    }
}

async fn patch_status(s: &TestServer, id: &str, status: &str) {
    let res = s
        .manage(Method::PATCH, &format!("/api/v1/webhooks/{id}"))
        .json(&json!({"status": status}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

both_backends!(signed_post_reaches_the_receiver, |backend| async move {
    let mut settings = delivery_settings(Plan::Free);
    settings.site_url = "https://academy.example".into();
    with_server(backend, settings, |s| async move {
        let rx = Receiver::start().await;
        let hook = s.create_webhook(&rx.url("/hook"), &["course_completed"]).await;
        let secret = hook["secret"].as_str().unwrap().to_owned();
        let webhook_id = hook["id"].as_str().unwrap().to_owned();
        let accepted = emit(&s, "course_completed", json!({"enrollment_id": 9, "user_id": 7, "course_id": 42})).await;
        assert_eq!(accepted["deliveries"], 1);
        let got = rx.wait_for(1, WAIT).await;
        let r = &got[0];

        // The seed's scheme: HMAC-SHA256(secret, raw body), lowercase hex.
        assert_eq!(
            r.header("x-learnomy-signature"),
            lwh_domain::signing::learnomy_signature(&secret, &r.body)
        );
        assert!(lwh_domain::signing::verify_learnomy_signature(&secret, &r.body, &r.header("x-learnomy-signature")));
        assert_eq!(r.header("content-type"), "application/json");
        assert!(r.header("user-agent").starts_with("Learnomy-Webhooks/"));
        assert_eq!(r.header("x-learnomy-event"), "course_completed");
        assert_eq!(r.header("x-learnomy-webhook"), webhook_id);
        assert!(r.header("x-learnomy-delivery").starts_with("dlv_"));
        assert_eq!(r.header("webhook-id"), accepted["id"].as_str().unwrap());

        // The body is the contract's payload, compact, in order.
        let body = std::str::from_utf8(&r.body).unwrap();
        assert!(body.starts_with(&format!("{{\"id\":\"{}\",\"event\":\"course_completed\",\"created_at\":\"", accepted["id"].as_str().unwrap())), "{body}");
        assert!(body.ends_with(",\"site_url\":\"https://academy.example\",\"data\":{\"enrollment_id\":9,\"user_id\":7,\"course_id\":42}}"), "{body}");

        // Standard Webhooks headers verify with the standard-webhooks library, given
        // whsec_ + base64(secret).
        let wh = standardwebhooks::Webhook::new(&lwh_domain::signing::standard_webhooks_secret(&secret)).unwrap();
        let mut headers = standardwebhooks_headers(r);
        assert!(wh.verify(&r.body, &headers).is_ok(), "standard webhooks signature must verify");
        headers.insert("webhook-signature", "v1,AAAA".parse().unwrap());
        assert!(wh.verify(&r.body, &headers).is_err());

        // Last Triggered is set once the attempt is recorded.
        eventually("last_triggered_at", || async {
            let w = get(&s, &format!("/api/v1/webhooks/{webhook_id}")).await;
            w["data"]["last_triggered_at"].is_string().then_some(())
        })
        .await;
        rx.wait_for(1, WAIT).await;
        assert_eq!(rx.count(), 1, "exactly one request");
    })
    .await
});

fn standardwebhooks_headers(r: &common::receiver::Received) -> axum::http::HeaderMap {
    let mut h = axum::http::HeaderMap::new();
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        h.insert(name, r.header(name).parse().unwrap());
    }
    h
}

both_backends!(
    retries_then_delivers_with_identical_bytes,
    |backend| async move {
        with_server(backend, delivery_settings(Plan::Pro), |s| async move {
            let rx = Receiver::start().await;
            rx.script(&[Answer::Status(500), Answer::Status(500)]);
            let hook = s.create_webhook(&rx.url("/r"), &["quiz_passed"]).await;
            let id = hook["id"].as_str().unwrap().to_owned();
            emit(&s, "quiz_passed", json!({"score": 90})).await;
            let got = rx.wait_for(3, WAIT).await;
            assert!(
                got.iter().all(|r| r.body == got[0].body),
                "identical body bytes on every retry"
            );
            let delivery_ids: Vec<String> = got
                .iter()
                .map(|r| r.header("x-learnomy-delivery"))
                .collect();
            assert!(delivery_ids.iter().all(|d| d == &delivery_ids[0]));
            let delivered = eventually("delivered", || async {
                let page = log(&s, &id, "").await;
                let d = page["data"][0].clone();
                (d["status"] == "delivered").then_some(d)
            })
            .await;
            assert_eq!(delivered["attempts"], 3);
            assert_eq!(delivered["retry_count"], 2);
            assert_eq!(delivered["response_code"], 200);
            let detail = get(
                &s,
                &format!("/api/v1/deliveries/{}", delivered["id"].as_str().unwrap()),
            )
            .await;
            let attempts = detail["data"]["attempts_log"].as_array().unwrap().clone();
            assert_eq!(attempts.len(), 3);
            assert_eq!(attempts[0]["status_code"], 500);
            assert_eq!(attempts[0]["error_kind"], "http_status");
            assert_eq!(attempts[2]["status_code"], 200);
            assert_eq!(detail["data"]["payload"]["data"], json!({"score": 90}));
            // Each attempt's details carry the headers exactly as the receiver saw them, and
            // the receiver's answer headers.
            for (a, r) in attempts.iter().zip(&got) {
                let sent = &a["request_headers"];
                for name in [
                    "webhook-signature",
                    "webhook-timestamp",
                    "x-learnomy-signature",
                ] {
                    assert_eq!(sent[name], r.header(name).as_str(), "{name} in {a}");
                }
                assert_eq!(sent["content-type"], "application/json");
                assert!(a["response_headers"]["date"].is_string(), "{a}");
            }
        })
        .await
    }
);

both_backends!(retrying_shows_the_retry_count, |backend| async move {
    let mut settings = delivery_settings(Plan::Pro);
    settings.retry_schedule = vec![
        lwh_app::Dur(Duration::from_millis(50)),
        lwh_app::Dur(Duration::from_millis(50)),
        lwh_app::Dur(Duration::from_secs(600)),
    ];
    with_server(backend, settings, |s| async move {
        let rx = Receiver::start().await;
        rx.always(Answer::Status(500));
        let hook = s.create_webhook(&rx.url("/r"), &["quiz_passed"]).await;
        let id = hook["id"].as_str().unwrap().to_owned();
        emit(&s, "quiz_passed", json!({})).await;
        rx.wait_for(3, WAIT).await;
        let d = eventually("retrying with 3 failures", || async {
            let page = log(&s, &id, "?status=retrying").await;
            let d = page["data"][0].clone();
            (d["retry_count"] == 3).then_some(d)
        })
        .await;
        assert_eq!(d["status"], "retrying");
        assert!(d["next_attempt_at"].is_string());
        // The webhook says its receiver is failing, and how, on every plan's API.
        let listed = get(&s, "/api/v1/webhooks").await;
        let activity = &listed["data"][0]["activity"];
        assert_eq!(activity["failing"], true, "{activity}");
        assert_eq!(activity["failures_since_success"], 3, "{activity}");
        assert_eq!(activity["last_failure_status_code"], 500, "{activity}");
        assert_eq!(activity["queued"], 1, "{activity}");
        assert!(activity["failing_since"].is_string(), "{activity}");
    })
    .await
});

both_backends!(
    a_dead_endpoint_ends_failed_after_the_schedule,
    |backend| async move {
        let mut settings = delivery_settings(Plan::Pro);
        settings.request_timeout = lwh_app::Dur(Duration::from_millis(300));
        with_server(backend, settings, |s| async move {
            let rx = Receiver::start().await;
            rx.always(Answer::Hang);
            let hook = s.create_webhook(&rx.url("/dead"), &["quiz_failed"]).await;
            let id = hook["id"].as_str().unwrap().to_owned();
            emit(&s, "quiz_failed", json!({})).await;
            let d = eventually("failed", || async {
                let page = log(&s, &id, "?status=failed").await;
                page["data"].as_array().and_then(|a| a.first().cloned())
            })
            .await;
            assert_eq!(d["attempts"], 4, "1 + 3 scheduled retries");
            let detail = get(
                &s,
                &format!("/api/v1/deliveries/{}", d["id"].as_str().unwrap()),
            )
            .await;
            let attempts_log = detail["data"]["attempts_log"].as_array().unwrap();
            assert!(!attempts_log.is_empty(), "the log has attempts: {detail}");
            for a in attempts_log {
                assert_eq!(a["error_kind"], "timeout", "{a}");
                assert!(a["duration_ms"].as_i64().unwrap() < 2000);
                assert!(
                    a["request_headers"]["x-learnomy-delivery"].is_string(),
                    "{a}"
                );
                assert!(a["response_headers"].is_null(), "no answer came: {a}");
            }
        })
        .await
    }
);

both_backends!(redirects_are_failures_not_followed, |backend| async move {
    with_server(backend, delivery_settings(Plan::Pro), |s| async move {
        let rx = Receiver::start().await;
        rx.always(Answer::Redirect(302));
        let hook = s.create_webhook(&rx.url("/moved"), &["quiz_failed"]).await;
        let id = hook["id"].as_str().unwrap().to_owned();
        emit(&s, "quiz_failed", json!({})).await;
        let d = eventually("failed", || async {
            let page = log(&s, &id, "?status=failed").await;
            page["data"].as_array().and_then(|a| a.first().cloned())
        })
        .await;
        assert_eq!(d["response_code"], 302);
        assert!(d["error"].as_str().unwrap().contains("redirect"));
        let detail = get(
            &s,
            &format!("/api/v1/deliveries/{}", d["id"].as_str().unwrap()),
        )
        .await;
        let first = &detail["data"]["attempts_log"][0];
        assert!(
            first["response_headers"]["location"].is_string(),
            "the redirect's Location is in the attempt details: {first}"
        );
        assert_eq!(
            rx.count(),
            4,
            "each attempt hit the receiver once; nothing followed the Location"
        );
    })
    .await
});

both_backends!(pause_holds_and_resume_releases, |backend| async move {
    with_server(backend, delivery_settings(Plan::Pro), |s| async move {
        let rx = Receiver::start().await;
        let hook = s.create_webhook(&rx.url("/p"), &["lesson_completed"]).await;
        let id = hook["id"].as_str().unwrap().to_owned();
        // An Active webhook on the same event is the barrier: once it got all five, the
        // worker has claimed after every one of them.
        let barrier = Receiver::start().await;
        s.create_webhook(&barrier.url("/b"), &["lesson_completed"])
            .await;
        patch_status(&s, &id, "paused").await;
        for i in 0..5 {
            let accepted = emit(&s, "lesson_completed", json!({"n": i})).await;
            assert_eq!(accepted["deliveries"], 2);
        }
        barrier.wait_for(5, WAIT).await;
        assert_eq!(rx.count(), 0, "nothing is sent while paused");
        let pending = log(&s, &id, "?status=pending").await;
        assert_eq!(pending["data"].as_array().unwrap().len(), 5);
        // The API says how many it holds, as the console's row does.
        let held = get(&s, &format!("/api/v1/webhooks/{id}")).await;
        assert_eq!(held["data"]["activity"]["queued"], 5, "{held}");
        assert_eq!(held["data"]["activity"]["last_attempt_at"], Value::Null);
        patch_status(&s, &id, "active").await;
        let got = rx.wait_for(5, WAIT).await;
        let mut seen: Vec<i64> = got
            .iter()
            .map(|r| r.json()["data"]["n"].as_i64().unwrap())
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, vec![0, 1, 2, 3, 4]);
    })
    .await
});

both_backends!(disable_skips_and_cancels, |backend| async move {
    with_server(backend, delivery_settings(Plan::Pro), |s| async move {
        let rx = Receiver::start().await;
        let hook = s.create_webhook(&rx.url("/d"), &["course_published"]).await;
        let id = hook["id"].as_str().unwrap().to_owned();
        patch_status(&s, &id, "paused").await;
        emit(&s, "course_published", json!({})).await;
        patch_status(&s, &id, "disabled").await;
        let failed = log(&s, &id, "?status=failed").await;
        assert_eq!(failed["data"][0]["error"], "webhook disabled");
        let accepted = emit(&s, "course_published", json!({})).await;
        assert_eq!(
            accepted["deliveries"], 0,
            "no delivery is created for a Disabled webhook"
        );
        patch_status(&s, &id, "active").await;
        // A new event after re-activation is the barrier: it is sent, the cancelled ones not.
        emit(&s, "course_published", json!({"barrier": true})).await;
        let got = rx.wait_for(1, WAIT).await;
        assert_eq!(got[0].json()["data"], json!({"barrier": true}));
        assert_eq!(
            deliveries_stored(&s, &id).await,
            2,
            "one cancelled, one new"
        );
        let failed = log(&s, &id, "?status=failed").await;
        assert_eq!(
            failed["data"].as_array().unwrap().len(),
            1,
            "the cancelled one stays Failed"
        );
        assert_eq!(rx.count(), 1, "cancelled deliveries are never sent");
    })
    .await
});

/// The delivery `id` ends Delivered, its attempts answered `codes` in order (the log's own
/// record, not just what the receiver saw).
async fn assert_held_delivery_delivered(s: &TestServer, id: &str, codes: &[i64]) {
    let detail = eventually("Delivered in the log", || async {
        let d = get(s, &format!("/api/v1/deliveries/{id}")).await;
        (d["data"]["status"] == "delivered").then_some(d)
    })
    .await;
    let got: Vec<i64> = detail["data"]["attempts_log"]
        .as_array()
        .expect("attempts")
        .iter()
        .filter_map(|a| a["status_code"].as_i64())
        .collect();
    assert_eq!(got, codes, "{detail}");
}

both_backends!(
    gone_fails_at_once_holds_and_a_test_releases,
    |backend| async move {
        with_server(backend, delivery_settings(Plan::Pro), |s| async move {
            let rx = Receiver::start().await;
            rx.always(Answer::Status(503));
            rx.script(&[Answer::Status(410)]);
            let hook = s.create_webhook(&rx.url("/g"), &["order_completed"]).await;
            let id = hook["id"].as_str().unwrap().to_owned();
            emit(&s, "order_completed", json!({"order": 1})).await;
            eventually("Failed", || async {
                let w = get(&s, &format!("/api/v1/webhooks/{id}")).await;
                (w["data"]["status"] == "failed").then_some(())
            })
            .await;
            let w = get(&s, &format!("/api/v1/webhooks/{id}")).await;
            assert!(w["data"]["status_reason"].as_str().unwrap().contains("410"));
            let before = rx.count();
            // A healthy webhook on the same event is the barrier: once it has order 2, the
            // worker has claimed after it.
            let healthy = Receiver::start().await;
            s.create_webhook(&healthy.url("/ok"), &["order_completed"])
                .await;
            emit(&s, "order_completed", json!({"order": 2})).await;
            healthy.wait_for(1, WAIT).await;
            // Only probes (ping) may arrive while Failed, never held deliveries.
            assert!(rx.received()[before..]
                .iter()
                .all(|r| r.header("x-learnomy-event") == "ping"));

            rx.always(Answer::Status(200));
            let res = s
                .manage(Method::POST, &format!("/api/v1/webhooks/{id}/test"))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            let outcome: Value = res.json().await.unwrap();
            // The probe may have re-activated it first; either way the Test reached the receiver.
            assert_eq!(outcome["data"]["delivered"], true, "{outcome}");
            assert_eq!(outcome["data"]["status_code"], 200);
            // The held deliveries themselves are sent again after the Test: order 1 (which got
            // the 410) a second time, order 2 for the first time; each ends Delivered with its
            // own attempts in the log.
            let orders_sent = |order: i64| {
                rx.received()
                    .iter()
                    .filter(|r| r.header("x-learnomy-event") == "order_completed")
                    .filter(|r| r.json()["data"]["order"].as_i64() == Some(order))
                    .map(|r| r.header("x-learnomy-delivery"))
                    .collect::<Vec<_>>()
            };
            eventually("held deliveries released", || async {
                (orders_sent(1).len() == 2 && orders_sent(2).len() == 1).then_some(())
            })
            .await;
            let first = orders_sent(1);
            assert_eq!(first[0], first[1], "order 1 is the same delivery, re-sent");
            assert_held_delivery_delivered(&s, &first[0], &[410, 200]).await;
            assert_held_delivery_delivered(&s, &orders_sent(2)[0], &[200]).await;
            let w = get(&s, &format!("/api/v1/webhooks/{id}")).await;
            assert_eq!(w["data"]["status"], "active");
        })
        .await
    }
);

both_backends!(
    a_failed_webhook_recovers_through_the_probe,
    |backend| async move {
        with_server(backend, delivery_settings(Plan::Pro), |s| async move {
            let rx = Receiver::start().await;
            rx.always(Answer::Status(500));
            rx.script(&[Answer::Status(410)]);
            let hook = s
                .create_webhook(&rx.url("/probe"), &["order_refunded"])
                .await;
            let id = hook["id"].as_str().unwrap().to_owned();
            emit(&s, "order_refunded", json!({})).await;
            eventually("Failed", || async {
                let w = get(&s, &format!("/api/v1/webhooks/{id}")).await;
                (w["data"]["status"] == "failed").then_some(())
            })
            .await;
            rx.always(Answer::Status(204));
            eventually("Active again by probe", || async {
                let w = get(&s, &format!("/api/v1/webhooks/{id}")).await;
                (w["data"]["status"] == "active").then_some(())
            })
            .await;
            // The delivery that got the 410 is itself sent again after the probe, and Delivered.
            let refunds = || {
                rx.received()
                    .into_iter()
                    .filter(|r| r.header("x-learnomy-event") == "order_refunded")
                    .collect::<Vec<_>>()
            };
            eventually("held delivery sent again", || async {
                (refunds().len() == 2).then_some(())
            })
            .await;
            let sent = refunds();
            let delivery = sent[0].header("x-learnomy-delivery");
            assert_eq!(sent[1].header("x-learnomy-delivery"), delivery);
            let probe_at = rx
                .received()
                .iter()
                .filter(|r| r.header("x-learnomy-event") == "ping")
                .map(|r| r.at)
                .min()
                .expect("a probe ran");
            assert!(sent[1].at > probe_at, "re-sent after the probe, not before");
            assert_held_delivery_delivered(&s, &delivery, &[410, 204]).await;
        })
        .await
    }
);

both_backends!(delete_stops_everything, |backend| async move {
    with_server(backend, delivery_settings(Plan::Free), |s| async move {
        let rx = Receiver::start().await;
        let hook = s.create_webhook(&rx.url("/x"), &["review_submitted"]).await;
        let id = hook["id"].as_str().unwrap().to_owned();
        patch_status(&s, &id, "paused").await;
        emit(&s, "review_submitted", json!({})).await;
        let res = s
            .manage(Method::DELETE, &format!("/api/v1/webhooks/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 204);
        let accepted = emit(&s, "review_submitted", json!({})).await;
        assert_eq!(accepted["deliveries"], 0);
        // Its held delivery went with it; a new webhook on the same receiver is the barrier:
        // its event arrives, and it is the only request the receiver ever got.
        assert_eq!(deliveries_stored(&s, &id).await, 0);
        s.create_webhook(&rx.url("/y"), &["review_submitted"]).await;
        emit(&s, "review_submitted", json!({"barrier": true})).await;
        let got = rx.wait_for(1, WAIT).await;
        assert_eq!(got[0].json()["data"], json!({"barrier": true}));
        assert_eq!(rx.count(), 1, "nothing of the deleted webhook was sent");
    })
    .await
});

both_backends!(ingestion_rules, |backend| async move {
    with_server(backend, delivery_settings(Plan::Free), |s| async move {
        let rx = Receiver::start().await;
        let hook = s.create_webhook(&rx.url("/i"), &["student_enrolled"]).await;
        let hook = hook["id"].as_str().unwrap().to_owned();
        // Nobody subscribes: accepted with 0 deliveries.
        assert_eq!(emit(&s, "course_deleted", json!({})).await["deliveries"], 0);
        // Idempotency: the same key returns the first event and creates nothing.
        let send = |key: &'static str| {
            s.client
                .post(s.url("/api/v1/events"))
                .bearer_auth(&s.events_token)
                .json(&json!({"event": "student_enrolled", "data": {"user_id": 1}, "idempotency_key": key}))
                .send()
        };
        let first: Value = send("enrol-1").await.unwrap().json().await.unwrap();
        let again: Value = send("enrol-1").await.unwrap().json().await.unwrap();
        assert_eq!(first["data"]["id"], again["data"]["id"]);
        assert_eq!(again["data"]["deliveries"], 1);
        assert_eq!(deliveries_stored(&s, &hook).await, 1, "the repeated key created no second delivery");
        rx.wait_for(1, WAIT).await;

        // Unknown and Pro events are refused on Free; nothing is stored.
        for (event, code) in [("made_up", "unknown_event"), ("gift_redeemed", "unknown_event")] {
            let res = s.client.post(s.url("/api/v1/events")).bearer_auth(&s.events_token)
                .json(&json!({"event": event, "data": {}})).send().await.unwrap();
            assert_eq!(res.status(), 422);
            let p: Value = res.json().await.unwrap();
            assert_eq!(p["code"], code);
            assert_eq!(p["errors"][0]["field"], "event");
        }
        for body in [json!({"event": "student_enrolled", "data": [1]}), json!({"event": "student_enrolled", "extra": 1}), json!({"data": {}})] {
            let res = s.client.post(s.url("/api/v1/events")).bearer_auth(&s.events_token).json(&body).send().await.unwrap();
            assert_eq!(res.status(), 422, "{body}");
        }

        // A batch is all or nothing, and the problem names the index.
        let batch = json!({"events": [
            {"event": "student_enrolled", "data": {"n": 1}},
            {"event": "student_enrolled", "data": {"n": 2}},
            {"event": "nope", "data": {}}
        ]});
        let res = s.client.post(s.url("/api/v1/events/batch")).bearer_auth(&s.events_token).json(&batch).send().await.unwrap();
        assert_eq!(res.status(), 422);
        let p: Value = res.json().await.unwrap();
        assert_eq!(p["errors"][0]["field"], "events[2].event");
        let ok = json!({"events": [
            {"event": "student_enrolled", "data": {"n": 1}},
            {"event": "course_deleted", "data": {}},
            {"event": "student_enrolled", "data": {"n": 2}}
        ]});
        let res = s.client.post(s.url("/api/v1/events/batch")).bearer_auth(&s.events_token).json(&ok).send().await.unwrap();
        assert_eq!(res.status(), 202);
        let accepted: Value = res.json().await.unwrap();
        let counts: Vec<i64> = accepted["data"].as_array().unwrap().iter().map(|a| a["deliveries"].as_i64().unwrap()).collect();
        assert_eq!(counts, vec![1, 0, 1]);
        rx.wait_for(3, WAIT).await;
        // The same key twice within one batch: one event.
        let twice = json!({"events": [
            {"event": "student_enrolled", "data": {"n": 3}, "idempotency_key": "same-batch"},
            {"event": "student_enrolled", "data": {"n": 3}, "idempotency_key": "same-batch"}
        ]});
        let res = s.client.post(s.url("/api/v1/events/batch")).bearer_auth(&s.events_token).json(&twice).send().await.unwrap();
        assert_eq!(res.status(), 202);
        let accepted: Value = res.json().await.unwrap();
        assert_eq!(accepted["data"][0]["id"], accepted["data"][1]["id"]);
        rx.wait_for(4, WAIT).await;
        // A replayed key beside a new event of the same kind: the replay creates nothing, the
        // new one its delivery.
        let mixed = json!({"events": [
            {"event": "student_enrolled", "data": {"user_id": 1}, "idempotency_key": "enrol-1"},
            {"event": "student_enrolled", "data": {"n": 5}}
        ]});
        let res = s.client.post(s.url("/api/v1/events/batch")).bearer_auth(&s.events_token).json(&mixed).send().await.unwrap();
        assert_eq!(res.status(), 202);
        let accepted: Value = res.json().await.unwrap();
        assert_eq!(accepted["data"][0]["id"], first["data"]["id"]);
        assert_eq!(accepted["data"][1]["deliveries"], 1);
        assert_eq!(deliveries_stored(&s, &hook).await, 5, "the replay in the batch created no delivery");
        rx.wait_for(5, WAIT).await;
        let too_many = json!({"events": (0..501).map(|_| json!({"event": "course_deleted"})).collect::<Vec<_>>()});
        let res = s.client.post(s.url("/api/v1/events/batch")).bearer_auth(&s.events_token).json(&too_many).send().await.unwrap();
        assert_eq!(res.status(), 422);
    })
    .await
});

both_backends!(
    a_dead_endpoint_does_not_slow_a_healthy_one,
    |backend| async move {
        let mut settings = delivery_settings(Plan::Pro);
        settings.request_timeout = lwh_app::Dur(Duration::from_secs(5));
        settings.max_in_flight_per_webhook = 8;
        with_server(backend, settings, |s| async move {
        let dead = Receiver::start().await;
        dead.always(Answer::Hang);
        let healthy = Receiver::start().await;
        s.create_webhook(&dead.url("/dead"), &["lesson_completed"]).await;
        s.create_webhook(&healthy.url("/ok"), &["lesson_completed"]).await;
        let started = Instant::now();
        let batch = json!({"events": (0..200).map(|i| json!({"event": "lesson_completed", "data": {"i": i}})).collect::<Vec<_>>()});
        let res = s.client.post(s.url("/api/v1/events/batch")).bearer_auth(&s.events_token).json(&batch).send().await.unwrap();
        assert_eq!(res.status(), 202);
        healthy.wait_for(200, Duration::from_secs(4)).await;
        let took = started.elapsed();
        assert!(took < Duration::from_secs(4), "healthy deliveries took {took:?} beside a dead endpoint");
        assert!(dead.count() <= 8, "the dead endpoint never gets more than its in-flight cap: {}", dead.count());
    })
    .await
    }
);

both_backends!(
    a_name_that_turns_private_after_save_is_never_sent,
    |backend| async move {
        let mut settings = delivery_settings(Plan::Pro);
        settings.allowed_networks = vec![];
        settings.retry_schedule = vec![lwh_app::Dur(Duration::from_millis(50))];
        with_server(backend, settings, |s| async move {
            let rx = Receiver::start().await;
            s.resolver.set("rebind.example.com", &["93.184.216.34"]);
            let hook = s
                .create_webhook(
                    &format!("http://rebind.example.com:{}/hook", rx.addr.port()),
                    &["quiz_passed"],
                )
                .await;
            let id = hook["id"].as_str().unwrap().to_owned();
            // DNS now answers the loopback address: the guard must refuse to connect.
            s.resolver.set("rebind.example.com", &["127.0.0.1"]);
            emit(&s, "quiz_passed", json!({})).await;
            let d = eventually("failed", || async {
                let page = log(&s, &id, "?status=failed").await;
                page["data"].as_array().and_then(|a| a.first().cloned())
            })
            .await;
            let detail = get(
                &s,
                &format!("/api/v1/deliveries/{}", d["id"].as_str().unwrap()),
            )
            .await;
            let attempts_log = detail["data"]["attempts_log"].as_array().unwrap();
            assert!(!attempts_log.is_empty(), "the log has attempts: {detail}");
            for a in attempts_log {
                assert_eq!(a["error_kind"], "blocked", "{a}");
            }
            // One public and one private address: refused too.
            s.resolver
                .set("rebind.example.com", &["93.184.216.34", "10.1.2.3"]);
            let res = s
                .manage(Method::POST, &format!("/api/v1/webhooks/{id}/test"))
                .send()
                .await
                .unwrap();
            let outcome: Value = res.json().await.unwrap();
            assert_eq!(outcome["data"]["delivered"], false);
            assert!(
                outcome["data"]["error"]
                    .as_str()
                    .unwrap()
                    .contains("10.0.0.0/8"),
                "{outcome}"
            );
            assert_eq!(rx.count(), 0, "nothing ever reached the receiver");
        })
        .await
    }
);

// DNS pinning: the address checked is the address connected to. A DNS server that answers a
// loopback (allowed here) address once and a private one afterwards gets exactly one lookup per
// attempt, so the delivery connects to the checked address; a second lookup (a check, then a
// connect that resolves again) would get the private answer and be refused.
both_backends!(
    each_attempt_resolves_once_and_connects_to_the_address_it_checked,
    |backend| async move {
        with_server(backend, delivery_settings(Plan::Pro), |s| async move {
            let rx = Receiver::start().await;
            let host = "pinned.example.com";
            s.resolver.set(host, &["127.0.0.1"]);
            let hook = s
                .create_webhook(
                    &format!("http://{host}:{}/hook", rx.addr.port()),
                    &["quiz_passed"],
                )
                .await;
            let id = hook["id"].as_str().unwrap().to_owned();
            s.resolver
                .set_sequence(host, &[&["127.0.0.1"], &["10.1.2.3"]]);
            let before = s.resolver.lookups(host);
            emit(&s, "quiz_passed", json!({})).await;
            rx.wait_for(1, WAIT).await;
            eventually("delivered", || async {
                let page = log(&s, &id, "?status=delivered").await;
                (!page["data"].as_array().unwrap().is_empty()).then_some(())
            })
            .await;
            assert_eq!(
                s.resolver.lookups(host) - before,
                1,
                "one lookup for the attempt, checked and connected to"
            );
            assert_eq!(rx.count(), 1);
        })
        .await
    }
);

both_backends!(
    delivery_log_pages_filters_and_redelivers,
    |backend| async move {
        let mut settings = delivery_settings(Plan::Pro);
        settings.retry_schedule = vec![lwh_app::Dur(Duration::from_millis(50))];
        with_server(backend, settings, |s| async move {
            let rx = Receiver::start().await;
            let hook = s
                .create_webhook(&rx.url("/log"), &["quiz_passed", "quiz_failed"])
                .await;
            let id = hook["id"].as_str().unwrap().to_owned();
            for i in 0..12 {
                emit(&s, "quiz_passed", json!({"i": i})).await;
            }
            rx.wait_for(12, WAIT).await;
            rx.always(Answer::Status(500));
            for i in 0..3 {
                emit(&s, "quiz_failed", json!({"i": i})).await;
            }
            eventually("3 failed", || async {
                let page = log(&s, &id, "?status=failed").await;
                (page["data"].as_array().unwrap().len() == 3).then_some(())
            })
            .await;
            // Pages of 5, newest first, through the whole log.
            let mut seen = Vec::new();
            let mut cursor = String::new();
            loop {
                let page = log(&s, &id, &format!("?limit=5&cursor={cursor}")).await;
                for d in page["data"].as_array().unwrap() {
                    seen.push(d["id"].as_str().unwrap().to_owned());
                }
                match page["next_cursor"].as_str() {
                    Some(c) => cursor = c.to_owned(),
                    None => break,
                }
            }
            assert_eq!(seen.len(), 15);
            let mut sorted = seen.clone();
            sorted.sort_unstable_by(|a, b| b.cmp(a));
            assert_eq!(seen, sorted, "newest first");
            let delivered = log(&s, &id, "?status=delivered").await;
            assert_eq!(delivered["data"].as_array().unwrap().len(), 12);
            let res = s
                .manage(
                    Method::GET,
                    &format!("/api/v1/webhooks/{id}/deliveries?status=lost"),
                )
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 422);

            // Redeliver one failed delivery, then recover the rest.
            rx.always(Answer::Status(200));
            let failed = log(&s, &id, "?status=failed").await;
            let one = failed["data"][0]["id"].as_str().unwrap().to_owned();
            let res = s
                .manage(Method::POST, &format!("/api/v1/deliveries/{one}/redeliver"))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 202);
            let res = s
                .manage(Method::POST, &format!("/api/v1/webhooks/{id}/recover"))
                .json(&json!({"since": "2000-01-01T00:00:00Z"}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 202);
            let recovered: Value = res.json().await.unwrap();
            assert_eq!(recovered["data"]["redelivered"], 2);
            eventually("all delivered", || async {
                let page = log(&s, &id, "?status=delivered").await;
                (page["data"].as_array().unwrap().len() == 15).then_some(())
            })
            .await;
        })
        .await
    }
);

both_backends!(the_delivery_log_is_pro_only, |backend| async move {
    with_server(backend, delivery_settings(Plan::Free), |s| async move {
        let rx = Receiver::start().await;
        let hook = s.create_webhook(&rx.url("/f"), &["quiz_passed"]).await;
        let id = hook["id"].as_str().unwrap().to_owned();
        for path in [
            format!("/api/v1/webhooks/{id}/deliveries"),
            "/api/v1/deliveries/dlv_01JDQ8V3W4X5Y6Z7A8B9C0D1E2".to_owned(),
        ] {
            let res = s.manage(Method::GET, &path).send().await.unwrap();
            assert_eq!(res.status(), 403);
            let p: Value = res.json().await.unwrap();
            assert_eq!(p["code"], "pro_required");
        }
        // Test works on Free and sets Last Triggered.
        let res = s
            .manage(Method::POST, &format!("/api/v1/webhooks/{id}/test"))
            .send()
            .await
            .unwrap();
        let outcome: Value = res.json().await.unwrap();
        assert_eq!(outcome["data"]["delivered"], true);
        let got = rx.wait_for(1, WAIT).await;
        assert_eq!(got[0].header("x-learnomy-event"), "ping");
        assert_eq!(got[0].json()["event"], "ping");
        let w = get(&s, &format!("/api/v1/webhooks/{id}")).await;
        assert!(w["data"]["last_triggered_at"].is_string());
    })
    .await
});

/// A service process of a test's own (its `/metrics` count only its work) on a database of
/// its own, with `vars` added to its environment and a token that manages webhooks and sends
/// events.
struct OwnService {
    serve: common::process::Running,
    port: u16,
    token: String,
    db: common::TestDb,
    _dir: tempfile::TempDir,
}

impl OwnService {
    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops the process, then drops its database.
    async fn finish(self) {
        drop(self.serve);
        self.db.drop_all().await;
    }
}

async fn own_service(backend: lwh_storage::Backend, vars: &[(&str, &str)]) -> OwnService {
    use common::process::{free_port, ProcessEnv};
    let dir = tempfile::tempdir().unwrap();
    let db = common::TestDb::create(backend).await;
    let mut env = ProcessEnv::new(dir.path(), db.postgres_url()).release();
    for (k, v) in vars {
        env.vars.push(((*k).to_owned(), (*v).to_owned()));
    }
    let token = env.run(&[
        "token",
        "create",
        "--scope",
        "webhooks:manage",
        "--scope",
        "events:write",
    ]);
    let port = free_port();
    let serve = env.serve(port).await;
    OwnService {
        serve,
        port,
        token,
        db,
        _dir: dir,
    }
}

// A busy slot is given its webhook's next due delivery by the transaction that records its
// result, rather than freed for a claim round: 60 events at once for a webhook with 2 slots,
// through a service process of this test's own (its metrics count only its work).
both_backends!(
    a_busy_slot_takes_its_next_delivery_with_its_result,
    |backend| async move {
        use common::process::metric_sum;
        let own = own_service(
            backend,
            &[("LEARNOMY_WEBHOOKS_MAX_IN_FLIGHT_PER_WEBHOOK", "2")],
        )
        .await;
        let (token, base) = (own.token.clone(), own.base());
        let rx = Receiver::start().await;
        rx.always(Answer::SlowOk(3));
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        common::process::create_webhook(&client, &base, &token, &rx.url("/busy")).await;
        let batch = json!({"events": (0..60).map(|n| json!({"event": "course_completed", "data": {"n": n}})).collect::<Vec<_>>()});
        let res = client
            .post(format!("{base}/api/v1/events/batch"))
            .bearer_auth(&token)
            .json(&batch)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 202);
        let got = rx.wait_for(60, WAIT).await;
        let mut seen: Vec<i64> = got
            .iter()
            .map(|r| r.json()["data"]["n"].as_i64().unwrap())
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..60).collect::<Vec<_>>(), "each event once");
        let scrape = || common::process::scrape_metrics(own.port);
        let started = Instant::now();
        let mut text = scrape().await;
        while metric_sum(
            &text,
            "learnomy_webhooks_attempts_total{outcome=\"delivered\"}",
        ) < 60.0
        {
            assert!(
                started.elapsed() < WAIT,
                "the attempts were never recorded: {text}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
            text = scrape().await;
        }
        // At most two were sent without waiting in the queue (handed over at ingestion);
        // of the 58 queued, nearly all went from a result straight into its slot. Without
        // the refill every one of them would be claimed by a claim round instead (0 here).
        let refilled = metric_sum(&text, "learnomy_webhooks_deliveries_refilled_total");
        assert!(
            (40.0..=58.0).contains(&refilled),
            "refilled {refilled} of 58 queued: {text}"
        );
        assert_eq!(rx.count(), 60, "nothing sent twice");
        own.finish().await;
    }
);

// Metrics through a service process of this test's own: the test binary's in-process servers
// share one global recorder, where another test's deliveries would satisfy any assertion.
both_backends!(
    metrics_count_this_service_s_own_work,
    |backend| async move {
        use common::process::metric_sum;
        let own = own_service(backend, &[]).await;
        let (token, base) = (own.token.clone(), own.base());
        let rx = Receiver::start().await;
        rx.script(&[Answer::Status(500)]);
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        common::process::create_webhook(&client, &base, &token, &rx.url("/m")).await;
        for i in 0..3 {
            let res = client
                .post(format!("{base}/api/v1/events"))
                .bearer_auth(&token)
                .json(&json!({"event": "course_completed", "data": {"i": i}}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 202);
        }
        // One 500, then the retry and the two others delivered.
        rx.wait_for(4, WAIT).await;
        let scrape = || common::process::scrape_metrics(own.port);
        // The queue is counted in the background (never at scrape time): the first scrape
        // starts a count, a later one shows it; the attempts are counted once recorded.
        let started = Instant::now();
        let mut text = scrape().await;
        while !text.contains("learnomy_webhooks_queue_due")
            || metric_sum(
                &text,
                "learnomy_webhooks_attempts_total{outcome=\"delivered\"}",
            ) < 3.0
        {
            assert!(started.elapsed() < WAIT, "the figures never came: {text}");
            tokio::time::sleep(Duration::from_millis(50)).await;
            text = scrape().await;
        }
        // Scrapes in a row reuse that count: the figures only grow older.
        let age = |text: &str| -> f64 {
            text.lines()
                .find(|l| l.starts_with("learnomy_webhooks_queue_figures_age_seconds "))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .expect("the figures' age")
        };
        let mut last = age(&text);
        for _ in 0..30 {
            let now = age(&scrape().await);
            assert!(
                now >= last,
                "a scrape counted the queue again ({now} < {last})"
            );
            last = now;
        }
        // Exactly this service's work.
        for (series, value) in [
            ("learnomy_webhooks_events_ingested_total", 3.0),
            (
                "learnomy_webhooks_attempts_total{outcome=\"delivered\"}",
                3.0,
            ),
            ("learnomy_webhooks_attempts_total{outcome=\"failed\"}", 1.0),
            (
                "learnomy_webhooks_deliveries_total{outcome=\"delivered\"}",
                3.0,
            ),
            ("learnomy_webhooks_attempt_duration_seconds_count", 4.0),
            ("learnomy_webhooks_webhooks{status=\"active\"}", 1.0),
            ("learnomy_webhooks_queue_due", 0.0),
            ("learnomy_webhooks_queue_waiting", 0.0),
        ] {
            assert!(text.contains(series), "{series} missing from {text}");
            assert_eq!(metric_sum(&text, series), value, "{series} in {text}");
        }
        assert!(text.contains("learnomy_webhooks_oldest_due_age_seconds"));
        assert!(text.contains("learnomy_webhooks_attempt_duration_seconds_bucket"));
        assert!(!text.contains(&rx.url("/m")), "no URLs in metrics");
        own.finish().await;
    }
);

both_backends!(
    concurrent_requests_share_commits_and_keep_their_answers,
    |backend| async move {
        with_server(backend, delivery_settings(Plan::Free), |s| async move {
        let rx = Receiver::start().await;
        let hook = s.create_webhook(&rx.url("/gc"), &["lesson_completed"]).await;
        let hook = hook["id"].as_str().unwrap().to_owned();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..64 {
            let client = s.client.clone();
            let url = s.url("/api/v1/events");
            let token = s.events_token.clone();
            tasks.spawn(async move {
                let key = format!("k-{}", i % 32); // every key is used twice
                let res = client
                    .post(url)
                    .bearer_auth(token)
                    .json(&json!({"event": "lesson_completed", "data": {"i": i % 32}, "idempotency_key": key}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 202);
                let body: Value = res.json().await.unwrap();
                (i % 32, body["data"]["id"].as_str().unwrap().to_owned())
            });
        }
        let mut by_key: std::collections::HashMap<i32, Vec<String>> = Default::default();
        while let Some(done) = tasks.join_next().await {
            let (k, id) = done.unwrap();
            by_key.entry(k).or_default().push(id);
        }
        assert_eq!(by_key.len(), 32);
        for ids in by_key.values() {
            assert_eq!(ids.len(), 2);
            assert_eq!(ids[0], ids[1], "both requests with one key got the same event");
        }
        assert_eq!(deliveries_stored(&s, &hook).await, 32, "one delivery per distinct event");
        rx.wait_for(32, WAIT).await;
    })
    .await
    }
);

both_backends!(
    persistent_failure_turns_a_webhook_failed_after_failed_after,
    |backend| async move {
        let mut settings = delivery_settings(Plan::Pro);
        let ms = |n| lwh_app::Dur(Duration::from_millis(n));
        settings.retry_schedule = vec![ms(40), ms(40), ms(40), ms(40), ms(40), ms(40), ms(40)];
        settings.failed_after = ms(150);
        settings.failed_probe_interval = lwh_app::Dur(Duration::from_secs(3600));
        with_server(backend, settings, |s| async move {
            let rx = Receiver::start().await;
            rx.always(Answer::Status(500));
            let hook = s
                .create_webhook(&rx.url("/down"), &["certificate_issued"])
                .await;
            let id = hook["id"].as_str().unwrap().to_owned();
            emit(&s, "certificate_issued", json!({})).await;
            let w = eventually("Failed", || async {
                let w = get(&s, &format!("/api/v1/webhooks/{id}")).await;
                (w["data"]["status"] == "failed").then_some(w)
            })
            .await;
            let reason = w["data"]["status_reason"].as_str().unwrap();
            assert!(reason.contains("failed attempts"), "{reason}");
            assert!(rx.count() >= 5, "at least 5 failed attempts before Failed");
            // The delivery is held, not failed: it waits for the webhook to come back.
            let d = log(&s, &id, "").await["data"][0].clone();
            assert_eq!(d["status"], "retrying");
            assert_eq!(d["next_attempt_at"], Value::Null);
            // A healthy webhook on the same event is the barrier: its delivery of a new event
            // arrives, and nothing more reached the Failed one's receiver meanwhile.
            let held_at = rx.count();
            let healthy = Receiver::start().await;
            s.create_webhook(&healthy.url("/up"), &["certificate_issued"])
                .await;
            emit(&s, "certificate_issued", json!({"barrier": true})).await;
            healthy.wait_for(1, WAIT).await;
            assert_eq!(rx.count(), held_at, "nothing is sent while Failed");
            // Re-activation by an admin releases it.
            rx.always(Answer::Status(200));
            patch_status(&s, &id, "active").await;
            eventually("delivered after re-activation", || async {
                let d = log(&s, &id, "").await["data"][0].clone();
                (d["status"] == "delivered").then_some(())
            })
            .await;
        })
        .await
    }
);

both_backends!(retention_prunes_old_deliveries, |backend| async move {
    with_server(backend, delivery_settings(Plan::Pro), |s| async move {
        let rx = Receiver::start().await;
        let hook = s.create_webhook(&rx.url("/old"), &["quiz_passed"]).await;
        let id = hook["id"].as_str().unwrap().to_owned();
        for _ in 0..2 {
            emit(&s, "quiz_passed", json!({})).await;
        }
        // The third carries an idempotency key: while its event is stored, the key answers
        // with it; once the event is pruned, the key is free for a new event.
        let keyed = || {
            s.client
                .post(s.url("/api/v1/events"))
                .bearer_auth(&s.events_token)
                .json(&json!({"event": "quiz_passed", "data": {}, "idempotency_key": "pruned-key"}))
                .send()
        };
        let first: Value = keyed().await.unwrap().json().await.unwrap();
        let first_id = first["data"]["id"].as_str().unwrap().to_owned();
        rx.wait_for(3, WAIT).await;
        eventually("3 delivered", || async {
            let page = log(&s, &id, "?status=delivered").await;
            (page["data"].as_array().unwrap().len() == 3).then_some(())
        })
        .await;
        let now = lwh_domain::Timestamp::now();
        // A cutoff in the past keeps everything; one after their creation removes them.
        assert_eq!(
            s.app
                .store()
                .prune(now.plus_millis(-60_000), now)
                .await
                .unwrap(),
            0
        );
        assert_eq!(
            s.app
                .store()
                .prune(now.plus_millis(1_000), now)
                .await
                .unwrap(),
            3
        );
        assert!(log(&s, &id, "").await["data"]
            .as_array()
            .unwrap()
            .is_empty());
        // Events are kept an hour longer than their deliveries, then go by their id alone.
        let again: Value = keyed().await.unwrap().json().await.unwrap();
        assert_eq!(
            again["data"]["id"],
            first_id.as_str(),
            "the event is kept within the margin"
        );
        s.app
            .store()
            .prune(now.plus_millis(lwh_storage::EVENT_MARGIN_MS + 1_000), now)
            .await
            .unwrap();
        let after: Value = keyed().await.unwrap().json().await.unwrap();
        assert_ne!(
            after["data"]["id"],
            first_id.as_str(),
            "the pruned event's key is free"
        );
        assert_eq!(after["data"]["deliveries"], 1);
    })
    .await
});

/// A connection to the database a service process uses (`data_dir` holds SQLite's file).
async fn connect_to(db: &common::TestDb, data_dir: &std::path::Path) -> sqlx::AnyConnection {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let url = match db.postgres_url() {
        Some(url) => url.to_owned(),
        None => format!(
            "sqlite://{}",
            data_dir.join("learnomy-webhooks.db").display()
        ),
    };
    sqlx::AnyConnection::connect(&url).await.expect("connect")
}

/// Runs `statements` on that database.
async fn execute_on(db: &common::TestDb, data_dir: &std::path::Path, statements: &[String]) {
    let mut conn = connect_to(db, data_dir).await;
    for sql in statements {
        sqlx::query(sql).execute(&mut conn).await.expect(sql);
    }
}

/// How many rows `sql` (a `SELECT COUNT(*) AS n …`) counts there.
async fn count_on(db: &common::TestDb, data_dir: &std::path::Path, sql: &str) -> i64 {
    use sqlx::Row;
    let mut conn = connect_to(db, data_dir).await;
    sqlx::query(sql)
        .fetch_one(&mut conn)
        .await
        .expect(sql)
        .get::<i64, _>("n")
}

// Retention end to end: a service started with `retention_days = 2` prunes, on its own, what is
// older than two days — delivered and held deliveries, their attempts and events — and expired
// sessions, and keeps the rest.
both_backends!(
    retention_days_prune_old_data_end_to_end,
    |backend| async move {
        use common::process::{free_port, kill9, ProcessEnv};
        let dir = tempfile::tempdir().unwrap();
        let db = common::TestDb::create(backend).await;
        let mut env = ProcessEnv::new(dir.path(), db.postgres_url());
        env.vars
            .push(("LEARNOMY_WEBHOOKS_RETENTION_DAYS".into(), "2".into()));
        let token = env.run(&["token", "create", "--scope", "webhooks:manage"]);
        let rx = Receiver::start().await;
        let port = free_port();
        let mut serve = env.serve(port).await;
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let webhook =
            common::process::create_webhook(&client, &base, &token, &rx.url("/kept")).await;
        // Paused, so the pending deliveries below stay held rather than sent.
        let paused = client
            .patch(format!("{base}/api/v1/webhooks/{webhook}"))
            .bearer_auth(&token)
            .json(&json!({"status": "paused"}))
            .send()
            .await
            .unwrap();
        assert_eq!(paused.status(), 200);
        kill9(&mut serve);

        // Rows as an older run left them: three days old (past retention) and one day old, each
        // a delivered delivery with its attempt and a held (pending) one.
        let day = 24 * 3600 * 1000_i64;
        let now = lwh_domain::Timestamp::now().millis();
        let blob = match backend {
            lwh_storage::Backend::Sqlite => "x'7b7d'",
            lwh_storage::Backend::Postgres => "decode('7b7d', 'hex')",
        };
        let mut statements = vec![
            "INSERT INTO users (id, name, password_hash, created_at, updated_at) \
         VALUES ('usr_01JDZ0000000000000000000AA', 'old', 'x', 0, 0)"
                .to_owned(),
        ];
        for (name, expires) in [("expired", now - 1000), ("valid", now + 3_600_000)] {
            statements.push(format!(
                "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, expires_at) \
             VALUES ('{name}', 'usr_01JDZ0000000000000000000AA', 'c', 0, {expires})"
            ));
        }
        for (age, tag) in [(3 * day, "old"), (day, "new")] {
            let at = (now - age) as u64;
            let id = |prefix: &str, n: u128| format!("{prefix}_{}", ulid::Ulid::from_parts(at, n));
            let (event, delivered, held) = (id("evt", 1), id("dlv", 2), id("dlv", 3));
            statements.push(format!(
                "INSERT INTO events (id, event, payload, deliveries, created_at) \
             VALUES ('{event}', 'course_completed', {blob}, 2, {at})"
            ));
            statements.push(format!(
            "INSERT INTO deliveries (id, webhook_id, event_id, status, attempts, last_status_code, created_at, updated_at) \
             VALUES ('{delivered}', '{webhook}', '{event}', 'delivered', 1, 200, {at}, {at})"
        ));
            statements.push(format!(
            "INSERT INTO attempts (delivery_id, number, started_at, duration_ms, status_code, error) \
             VALUES ('{delivered}', 1, {at}, 5, 200, '{tag}')"
        ));
            // Held: pending on the Paused webhook.
            statements.push(format!(
            "INSERT INTO deliveries (id, webhook_id, event_id, status, attempts, due_at, created_at, updated_at) \
             VALUES ('{held}', '{webhook}', '{event}', 'pending', 0, NULL, {at}, {at})"
        ));
        }
        execute_on(&db, dir.path(), &statements).await;
        let count = |sql: &'static str| count_on(&db, dir.path(), sql);
        assert_eq!(count("SELECT COUNT(*) AS n FROM deliveries").await, 4);

        // The restarted service prunes at start, then hourly.
        let mut serve = env.serve(port).await;
        let deadline = Instant::now() + WAIT;
        while count("SELECT COUNT(*) AS n FROM deliveries").await != 2 {
            assert!(
                Instant::now() < deadline,
                "retention did not prune the old deliveries"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        kill9(&mut serve);
        assert_eq!(
            count("SELECT COUNT(*) AS n FROM attempts WHERE error = 'old'").await,
            0,
            "old attempts go"
        );
        assert_eq!(
            count("SELECT COUNT(*) AS n FROM attempts WHERE error = 'new'").await,
            1
        );
        assert_eq!(
            count("SELECT COUNT(*) AS n FROM deliveries WHERE status = 'pending'").await,
            1,
            "a held delivery waits within retention only"
        );
        assert_eq!(
            count("SELECT COUNT(*) AS n FROM events").await,
            1,
            "old events go"
        );
        assert_eq!(
            count("SELECT COUNT(*) AS n FROM sessions WHERE token_hash = 'expired'").await,
            0
        );
        assert_eq!(
            count("SELECT COUNT(*) AS n FROM sessions WHERE token_hash = 'valid'").await,
            1
        );
        db.drop_all().await;
    }
);

both_backends!(
    an_edited_url_takes_effect_for_the_next_event,
    |backend| async move {
        with_server(backend, delivery_settings(Plan::Pro), |s| async move {
            let old = Receiver::start().await;
            let new = Receiver::start().await;
            let hook = s.create_webhook(&old.url("/old"), &["quiz_passed"]).await;
            let id = hook["id"].as_str().unwrap().to_owned();
            // Several events, so the worker is handing deliveries over by the end.
            for i in 0..5 {
                emit(&s, "quiz_passed", json!({"i": i})).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            old.wait_for(5, WAIT).await;
            let res = s
                .manage(Method::PATCH, &format!("/api/v1/webhooks/{id}"))
                .json(&json!({"url": new.url("/new")}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            emit(&s, "quiz_passed", json!({"i": "after the edit"})).await;
            let deadline = Instant::now() + WAIT;
            while new.count() == 0 {
                assert!(
                    Instant::now() < deadline,
                    "the new URL got nothing; the old one got {} (5 before the edit)",
                    old.count()
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let got = new.received();
            assert_eq!(got[0].json()["data"]["i"], "after the edit");
            tokio::time::sleep(Duration::from_millis(200)).await;
            assert_eq!(old.count(), 5, "nothing after the edit went to the old URL");
        })
        .await
    }
);

/// How late after its due time a retry may start, in seconds: the worker's once-a-second look
/// at queues it has seen drained, its 200 ms poll, and slack for a loaded test machine.
const PICKUP: f64 = 1.0 + 0.2 + 0.4;

/// The gaps between consecutive requests a receiver got, in seconds.
fn gaps(got: &[common::receiver::Received]) -> Vec<f64> {
    got.windows(2)
        .map(|w| w[1].at.duration_since(w[0].at).as_secs_f64())
        .collect()
}

both_backends!(
    retries_are_spaced_by_the_schedule_its_jitter_and_retry_after,
    |backend| async move {
        let secs = |n| lwh_app::Dur(Duration::from_secs(n));
        let settings = lwh_app::Settings {
            retry_schedule: vec![secs(1), secs(3)],
            ..delivery_settings(Plan::Free)
        };
        with_server(backend, settings, |s| async move {
            // A plain 500: each wait is the schedule's delay ±15 %, and a retry that has come due
            // is attempted within PICKUP (the worker looks again at a queue it has seen drained
            // once a second, and polls every 200 ms). Retry-After on a 500 is not honoured.
            let rx = Receiver::start().await;
            // (Retry-After: 3 would make the first wait at least 3 s, outside the range below.)
            rx.always(Answer::StatusRetryAfter(500, 3));
            s.create_webhook(&rx.url("/spacing"), &["quiz_passed"])
                .await;
            emit(&s, "quiz_passed", json!({})).await;
            let got = rx.wait_for(3, WAIT).await;
            tokio::time::sleep(Duration::from_millis(4_000)).await;
            assert_eq!(rx.count(), 3, "1 + 2 delays: three attempts, then none");
            let g = gaps(&got);
            assert!(
                (0.85..1.15 + PICKUP).contains(&g[0]),
                "1 s ±15 % (+ pick-up), Retry-After ignored on 500: {g:?}"
            );
            assert!(
                (2.55..3.45 + PICKUP).contains(&g[1]),
                "3 s ±15 % (+ pick-up): {g:?}"
            );

            // 503 with Retry-After: 2 lengthens the 1 s wait to 2 s (capped by the next
            // step's 3 s), never shortening it.
            let rx = Receiver::start().await;
            rx.script(&[Answer::StatusRetryAfter(503, 2)]);
            s.create_webhook(&rx.url("/retry-after"), &["quiz_failed"])
                .await;
            emit(&s, "quiz_failed", json!({})).await;
            let got = rx.wait_for(2, WAIT).await;
            let g = gaps(&got);
            assert!(
                (2.0..2.0 + PICKUP).contains(&g[0]),
                "Retry-After: 2 on a 503 is honoured: {g:?}"
            );

            // 429 likewise.
            let rx = Receiver::start().await;
            rx.script(&[Answer::StatusRetryAfter(429, 2)]);
            s.create_webhook(&rx.url("/too-many"), &["quiz_passed"])
                .await;
            emit(&s, "quiz_passed", json!({"again": true})).await;
            let got = rx.wait_for(2, WAIT).await;
            let g = gaps(&got);
            assert!(
                (2.0..2.0 + PICKUP).contains(&g[0]),
                "Retry-After: 2 on a 429 is honoured: {g:?}"
            );
        })
        .await
    }
);

both_backends!(
    replay_by_window_redelivers_exactly_the_failed_inside_it,
    |backend| async move {
        let mut settings = delivery_settings(Plan::Pro);
        settings.retry_schedule = vec![lwh_app::Dur(Duration::from_millis(10))];
        with_server(backend, settings, |s| async move {
            let rx = Receiver::start().await;
            rx.always(Answer::Status(500));
            let hook = s.create_webhook(&rx.url("/w"), &["quiz_failed"]).await;
            let id = hook["id"].as_str().unwrap().to_owned();
            let failed = |n: usize| {
                let s = &s;
                let id = id.clone();
                async move {
                    eventually("failed", || async {
                        let page = log(s, &id, "?status=failed").await;
                        (page["data"].as_array().unwrap().len() >= n).then_some(())
                    })
                    .await
                }
            };
            // A before the window, B and C inside it, D after it.
            let a = emit(&s, "quiz_failed", json!({"n": "a"})).await;
            failed(1).await;
            tokio::time::sleep(Duration::from_millis(30)).await;
            let since = lwh_domain::Timestamp::now();
            let b = emit(&s, "quiz_failed", json!({"n": "b"})).await;
            let c = emit(&s, "quiz_failed", json!({"n": "c"})).await;
            failed(3).await;
            tokio::time::sleep(Duration::from_millis(30)).await;
            let until = lwh_domain::Timestamp::now();
            let d = emit(&s, "quiz_failed", json!({"n": "d"})).await;
            failed(4).await;
            rx.always(Answer::Status(200));

            // Refused windows name the field.
            for (body, field) in [
                (
                    json!({"since": until.to_rfc3339(), "until": since.to_rfc3339()}),
                    "until",
                ),
                (
                    json!({"since": since.to_rfc3339(), "until": "tomorrow"}),
                    "until",
                ),
            ] {
                let res = s.webhook_action(&id, "recover", Some(body.clone())).await;
                assert_eq!(res.status(), 422, "{body}");
                let problem: Value = res.json().await.unwrap();
                assert_eq!(problem["errors"][0]["field"], field, "{problem}");
            }

            // The console says how many first, then replays them.
            let console = s.console_session().await;
            let local = |t: lwh_domain::Timestamp| t.to_rfc3339();
            let window = [("since", local(since)), ("until", local(until))];
            let page = console
                .page(&format!(
                    "/admin/webhooks/{id}/replay?since={}&until={}",
                    window[0].1, window[1].1
                ))
                .await;
            assert!(
                page.contains("2</strong> failed deliveries will be sent again"),
                "{page}"
            );
            let csrf = common::form_csrf(&page);
            let res = console
                .post(
                    &format!("/admin/webhooks/{id}/replay"),
                    &[
                        ("_csrf", csrf.as_str()),
                        ("since", window[0].1.as_str()),
                        ("until", window[1].1.as_str()),
                    ],
                )
                .await;
            assert_eq!(res.status(), 303);
            assert!(res.headers()["location"]
                .to_str()
                .unwrap()
                .ends_with("replayed=2"));

            // Exactly B and C are delivered; A and D stay Failed.
            let delivered = eventually("two delivered", || async {
                let page = log(&s, &id, "?status=delivered").await;
                let rows = page["data"].as_array().unwrap().clone();
                (rows.len() == 2).then_some(rows)
            })
            .await;
            let mut events: Vec<&str> = delivered
                .iter()
                .map(|d| d["event_id"].as_str().unwrap())
                .collect();
            events.sort_unstable();
            let mut inside = vec![b["id"].as_str().unwrap(), c["id"].as_str().unwrap()];
            inside.sort_unstable();
            assert_eq!(events, inside);
            let still: Vec<String> = log(&s, &id, "?status=failed").await["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["event_id"].as_str().unwrap().to_owned())
                .collect();
            assert_eq!(still.len(), 2);
            for outside in [&a, &d] {
                assert!(still.contains(&outside["id"].as_str().unwrap().to_owned()));
            }
            // The API on the same window: nothing left to replay.
            let res = s
                .webhook_action(
                    &id,
                    "recover",
                    Some(json!({"since": since.to_rfc3339(), "until": until.to_rfc3339()})),
                )
                .await;
            assert_eq!(res.status(), 202);
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["data"]["redelivered"], 0);
        })
        .await
    }
);
