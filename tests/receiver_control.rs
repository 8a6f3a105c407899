//! Receiver control: rotating a webhook's secret with events flowing the whole time, against a
//! real receiver that verifies every request with the secrets it holds — first the old one,
//! then both, then only the new one — and a Standard Webhooks library checking both secrets
//! during the overlap.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::receiver::{Answer, Receiver};
use common::{delivery_settings, with_server, TestServer};
use lwh_domain::signing::verify_learnomy_signature;
use lwh_domain::Plan;
use serde_json::{json, Value};

const OLD: &str = "rotation-old-k3F9mQ2xV7pL0sT4wZ8c";
const NEW: &str = "rotation-new-R1bN6yH5dJ2aK3F9mQ2x";

fn standard(secret: &str) -> standardwebhooks::Webhook {
    let whsec = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(secret)
    );
    standardwebhooks::Webhook::new(&whsec).expect("whsec")
}

async fn webhook(s: &TestServer, id: &str) -> Value {
    s.get_json(&format!("/api/v1/webhooks/{id}")).await["data"].clone()
}

/// Reports events until `stop`, collecting their ids.
fn emit_until(s: &TestServer, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<Vec<String>> {
    let client = s.client.clone();
    let url = s.url("/api/v1/events");
    let token = s.events_token.clone();
    tokio::spawn(async move {
        let mut ids = Vec::new();
        let mut n = 0;
        while !stop.load(Ordering::SeqCst) {
            let res = client
                .post(&url)
                .bearer_auth(&token)
                .json(&json!({"event": "course_completed", "data": {"n": n}}))
                .send()
                .await
                .expect("emit");
            assert_eq!(res.status(), 202);
            let body: Value = res.json().await.expect("json");
            ids.push(body["data"]["id"].as_str().expect("id").to_owned());
            n += 1;
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        ids
    })
}

both_backends!(
    a_rotation_with_events_flowing_fails_no_delivery,
    |backend| async move {
        with_server(backend, delivery_settings(Plan::Pro), |s| async move {
            common::logs::remember(OLD);
            common::logs::remember(NEW);
            let rx = Receiver::start().await;
            rx.always(Answer::Verify(vec![OLD.into()]));
            let id = s.create_webhook_with_secret(&rx.url("/r"), OLD).await;

            let stop = Arc::new(AtomicBool::new(false));
            let emitting = emit_until(&s, stop.clone());
            rx.wait_for(5, Duration::from_secs(10)).await;

            // Rotate with a 3 s overlap; the receiver still holds only the old secret.
            let res = s
                .webhook_action(
                    &id,
                    "rotate-secret",
                    Some(json!({"secret": NEW, "overlap": "3s"})),
                )
                .await;
            assert_eq!(res.status(), 200);
            let rotated: Value = res.json().await.unwrap();
            assert_eq!(rotated["data"]["secret"], NEW, "shown this once");
            assert!(rotated["data"]["rotation_ends_at"].is_string(), "{rotated}");
            let shown = webhook(&s, &id).await;
            assert!(shown.get("secret").is_none(), "never shown again: {shown}");
            let again = s
                .webhook_action(&id, "rotate-secret", Some(json!({})))
                .await;
            assert_eq!(again.status(), 409, "one rotation at a time");

            tokio::time::sleep(Duration::from_millis(700)).await;
            rx.always(Answer::Verify(vec![OLD.into(), NEW.into()]));
            tokio::time::sleep(Duration::from_millis(700)).await;
            rx.always(Answer::Verify(vec![NEW.into()]));

            // The overlap ends by itself; the previous secret is then destroyed.
            let deadline = Instant::now() + Duration::from_secs(10);
            while !webhook(&s, &id).await["rotation_ends_at"].is_null() {
                assert!(Instant::now() < deadline, "the rotation never ended");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let ended = Instant::now();
            let stored = s.stored_webhook(&id).await;
            assert!(
                stored.previous_secret_ciphertext.is_none(),
                "the previous secret is gone from the row"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
            stop.store(true, Ordering::SeqCst);
            let ids = emitting.await.unwrap();
            let (seen, _) = rx.wait_for_events(&ids, Duration::from_secs(20)).await;
            assert_eq!(seen, ids.len());

            let got = rx.received();
            assert_eq!(
                got.iter().filter(|r| r.refused).count(),
                0,
                "the receiver refused a delivery during the rotation"
            );
            for status in ["failed", "retrying"] {
                let page = s
                    .get_json(&format!("/api/v1/webhooks/{id}/deliveries?status={status}"))
                    .await;
                assert_eq!(page["data"], json!([]), "no failed attempt: {page}");
            }

            let (old, new) = (standard(OLD), standard(NEW));
            let mut overlap = 0;
            let mut after = 0;
            for r in &got {
                let learnomy = r.header("x-learnomy-signature");
                if !r.header("x-learnomy-signature-next").is_empty() {
                    overlap += 1;
                    assert!(verify_learnomy_signature(OLD, &r.body, &learnomy));
                    assert!(verify_learnomy_signature(
                        NEW,
                        &r.body,
                        &r.header("x-learnomy-signature-next")
                    ));
                    assert!(
                        old.verify(&r.body, &r.headers).is_ok(),
                        "the old secret verifies"
                    );
                    assert!(
                        new.verify(&r.body, &r.headers).is_ok(),
                        "the new secret verifies"
                    );
                } else if r.at > ended {
                    after += 1;
                    assert!(verify_learnomy_signature(NEW, &r.body, &learnomy));
                    assert!(
                        !verify_learnomy_signature(OLD, &r.body, &learnomy),
                        "after the overlap the old secret verifies nothing"
                    );
                    assert!(old.verify(&r.body, &r.headers).is_err());
                    assert!(new.verify(&r.body, &r.headers).is_ok());
                }
            }
            assert!(overlap > 10, "deliveries during the overlap: {overlap}");
            assert!(after > 3, "deliveries after it: {after}");
        })
        .await
    }
);

both_backends!(
    rotation_requests_are_checked_and_complete_ends_it_at_once,
    |backend| async move {
        with_server(backend, delivery_settings(Plan::Pro), |s| async move {
            let rx = Receiver::start().await;
            let id = s.create_webhook(&rx.url("/c"), &["course_completed"]).await["id"]
                .as_str()
                .unwrap()
                .to_owned();
            for (body, field) in [
                (json!({"overlap": "8d"}), "overlap"),
                (json!({"overlap": "soon"}), "overlap"),
                (json!({"secret": "short"}), "secret"),
            ] {
                let res = s
                    .webhook_action(&id, "rotate-secret", Some(body.clone()))
                    .await;
                assert_eq!(res.status(), 422, "{body}");
                let problem: Value = res.json().await.unwrap();
                assert_eq!(problem["errors"][0]["field"], field, "{problem}");
            }
            let res = s
                .webhook_action(
                    "wh_01JDQ8V3W4X5Y6Z7A8B9C0D1E2",
                    "rotate-secret",
                    Some(json!({})),
                )
                .await;
            assert_eq!(res.status(), 404);

            // A generated secret, the default overlap of 24 h, then Complete.
            let res = s
                .webhook_action(&id, "rotate-secret", Some(json!({})))
                .await;
            assert_eq!(res.status(), 200);
            let rotated: Value = res.json().await.unwrap();
            let secret = rotated["data"]["secret"].as_str().unwrap().to_owned();
            common::logs::remember(&secret);
            assert_eq!(secret.len(), 32);
            let ends = lwh_domain::Timestamp::parse_rfc3339(
                rotated["data"]["rotation_ends_at"].as_str().unwrap(),
            )
            .unwrap();
            let hours = (ends.millis() - lwh_domain::Timestamp::now().millis()) / 3_600_000;
            assert_eq!(hours, 23, "24 h from now, less the moment since");
            let res = s.webhook_action(&id, "rotate-secret/complete", None).await;
            assert_eq!(res.status(), 200);
            let done: Value = res.json().await.unwrap();
            assert!(done["data"]["rotation_ends_at"].is_null(), "{done}");
            let stored = s.stored_webhook(&id).await;
            assert!(stored.previous_secret_ciphertext.is_none());
            // Only the new secret signs now.
            let res = s.webhook_action(&id, "test", None).await;
            assert_eq!(res.status(), 200);
            let last = rx.received().pop().expect("the test delivery");
            assert!(last.header("x-learnomy-signature-next").is_empty());
            assert!(verify_learnomy_signature(
                &secret,
                &last.body,
                &last.header("x-learnomy-signature")
            ));
        })
        .await
    }
);

/// A header value that must never come back: not in an API answer, a console page, a log line
/// (the log check looks for it) or the database in clear.
const HEADER_VALUE: &str = "Bearer hdr-3f9mQ2xV7pL0sT4wZ8cR1b";

both_backends!(
    custom_headers_reach_the_receiver_and_never_come_back,
    |backend| async move {
        let mut settings = delivery_settings(Plan::Pro);
        settings.retry_schedule = vec![lwh_app::Dur(Duration::from_millis(100))];
        with_server(backend, settings, |s| async move {
            common::logs::remember(HEADER_VALUE);
            let rx = Receiver::start().await;
            rx.script(&[Answer::Status(500)]);
            let res = s
                .manage(reqwest::Method::POST, "/api/v1/webhooks")
                .json(&json!({"url": rx.url("/h"), "events": ["course_completed"],
                    "headers": {"Authorization": HEADER_VALUE, "X-Team": "lms"}}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 201);
            let text = res.text().await.unwrap();
            assert!(!text.contains(HEADER_VALUE), "{text}");
            let created: Value = serde_json::from_str(&text).unwrap();
            if let Some(secret) = created["data"]["secret"].as_str() {
                common::logs::remember(secret);
            }
            let id = created["data"]["id"].as_str().unwrap().to_owned();
            assert_eq!(
                created["data"]["headers"],
                json!({"Authorization": "••••••••", "X-Team": "••••••••"})
            );

            // A delivery that fails once, its retry, and Test all carry the headers.
            let accepted = s
                .client
                .post(s.url("/api/v1/events"))
                .bearer_auth(&s.events_token)
                .json(&json!({"event": "course_completed", "data": {}}))
                .send()
                .await
                .unwrap();
            assert_eq!(accepted.status(), 202);
            rx.wait_for(2, Duration::from_secs(10)).await;
            s.webhook_action(&id, "test", None).await;
            let got = rx.wait_for(3, Duration::from_secs(10)).await;
            for r in &got {
                assert_eq!(r.header("authorization"), HEADER_VALUE);
                assert_eq!(r.header("x-team"), "lms");
            }

            // An edit that removes one and adds one keeps the rest.
            let res = s
                .manage(reqwest::Method::PATCH, &format!("/api/v1/webhooks/{id}"))
                .json(&json!({"headers": {"X-Team": null, "X-Region": "eu"}}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            let edited: Value = res.json().await.unwrap();
            assert_eq!(
                edited["data"]["headers"],
                json!({"Authorization": "••••••••", "X-Region": "••••••••"})
            );
            s.webhook_action(&id, "test", None).await;
            let last = rx.wait_for(4, Duration::from_secs(10)).await.pop().unwrap();
            assert_eq!(last.header("authorization"), HEADER_VALUE);
            assert_eq!(last.header("x-region"), "eu");
            assert!(last.header("x-team").is_empty());

            // Nowhere in clear: the API's views, the attempt details, the console, the row.
            for path in [
                format!("/api/v1/webhooks/{id}"),
                "/api/v1/webhooks".to_owned(),
                format!("/api/v1/webhooks/{id}/deliveries"),
            ] {
                let text = s.api_text(&path).await;
                assert!(!text.contains(HEADER_VALUE), "{path}: {text}");
            }
            let log = s
                .get_json(&format!("/api/v1/webhooks/{id}/deliveries"))
                .await;
            for d in log["data"].as_array().unwrap() {
                let path = format!("/api/v1/deliveries/{}", d["id"].as_str().unwrap());
                let text = s.api_text(&path).await;
                assert!(
                    !text.contains(HEADER_VALUE) && !text.contains("hdr-3f9m"),
                    "{path}"
                );
            }
            let stored = s.stored_webhook(&id).await;
            let sealed = stored.headers_ciphertext.expect("sealed headers");
            assert!(
                !sealed
                    .windows(8)
                    .any(|w| w == &HEADER_VALUE.as_bytes()[7..15]),
                "the value is not in the row in clear"
            );
            let console = s.console_session().await;
            let page = console.page(&format!("/admin/webhooks?edit={id}")).await;
            assert!(
                page.contains("Authorization") && page.contains("X-Region"),
                "names shown"
            );
            assert!(!page.contains(HEADER_VALUE), "values never shown");
        })
        .await
    }
);

both_backends!(
    reserved_or_malformed_header_names_are_refused_naming_the_header,
    |backend| async move {
        with_server(backend, delivery_settings(Plan::Pro), |s| async move {
            let rx = Receiver::start().await;
            for (headers, field) in [
                (json!({"Host": "x"}), "headers.Host"),
                (json!({"X-Learnomy-Event": "x"}), "headers.X-Learnomy-Event"),
                (json!({"webhook-id": "x"}), "headers.webhook-id"),
                (json!({"Bad Name": "x"}), "headers.Bad Name"),
                (json!({"X-Ok": "a\r\nInjected: 1"}), "headers.X-Ok"),
                (
                    serde_json::Value::Object((0..11).map(|i| (format!("X-H{i}"), json!("v"))).collect()),
                    "headers",
                ),
            ] {
                let res = s
                    .manage(reqwest::Method::POST, "/api/v1/webhooks")
                    .json(&json!({"url": rx.url("/r"), "events": ["course_completed"], "headers": headers}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 422, "{headers}");
                let problem: Value = res.json().await.unwrap();
                assert_eq!(problem["errors"][0]["field"], field, "{problem}");
            }
            let id = s.create_webhook(&rx.url("/r"), &["course_completed"]).await["id"]
                .as_str()
                .unwrap()
                .to_owned();
            let res = s
                .manage(reqwest::Method::PATCH, &format!("/api/v1/webhooks/{id}"))
                .json(&json!({"headers": {"Content-Type": "text/plain"}}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 422);
            let problem: Value = res.json().await.unwrap();
            assert_eq!(problem["errors"][0]["field"], "headers.Content-Type", "{problem}");
        })
        .await
    }
);

both_backends!(
    a_throttle_is_set_shown_changed_and_removed_and_bad_limits_are_refused,
    |backend| async move {
        with_server(backend, delivery_settings(Plan::Pro), |s| async move {
            let rx = Receiver::start().await;
            for bad in [json!(0), json!(-5), json!(10_001), json!("fast"), json!(2.5)] {
                let res = s
                    .manage(reqwest::Method::POST, "/api/v1/webhooks")
                    .json(&json!({"url": rx.url("/t"), "events": ["course_completed"], "max_per_second": bad}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 422, "{bad}");
                let problem: Value = res.json().await.unwrap();
                let field = problem["errors"][0]["field"].as_str().unwrap_or_default();
                assert!(field.starts_with("max_per_second"), "{bad}: {problem}");
            }
            let created = s
                .post_webhook(json!({"url": rx.url("/t"), "events": ["course_completed"], "max_per_second": 20}))
                .await;
            assert_eq!(created["max_per_second"], 20, "{created}");
            let id = created["id"].as_str().unwrap().to_owned();
            let patch = |body: Value| {
                s.manage(reqwest::Method::PATCH, &format!("/api/v1/webhooks/{id}"))
                    .json(&body)
                    .send()
            };
            // An edit that does not name it keeps it; a number changes it; null removes it.
            let kept: Value = patch(json!({"events": ["quiz_passed"]})).await.unwrap().json().await.unwrap();
            assert_eq!(kept["data"]["max_per_second"], 20, "{kept}");
            let changed: Value = patch(json!({"max_per_second": 7})).await.unwrap().json().await.unwrap();
            assert_eq!(changed["data"]["max_per_second"], 7, "{changed}");
            let refused = patch(json!({"max_per_second": 0})).await.unwrap();
            assert_eq!(refused.status(), 422);
            let removed: Value = patch(json!({"max_per_second": null})).await.unwrap().json().await.unwrap();
            assert!(removed["data"]["max_per_second"].is_null(), "{removed}");
            assert!(webhook(&s, &id).await["max_per_second"].is_null());
        })
        .await
    }
);

/// A webhook throttled to 50/s receives 500 events at 50/s ± 10 % (as its receiver measures),
/// none lost or sent twice, while an unthrottled webhook on the same events gets them all at
/// once; on SQLite with `serve`, on PostgreSQL with `serve` and two `worker` processes sharing
/// the pace. (The benchmark runs the issue's full 5,000 events and measures the neighbour's
/// rate: docs/benchmarks.md.)
async fn throttle_holds_across_processes(backend: lwh_storage::Backend) {
    use common::process::{free_port, kill9, ProcessEnv};
    const EVENTS: usize = 500;
    const RATE: f64 = 50.0;
    let dir = tempfile::tempdir().expect("temp dir");
    let db = common::TestDb::create(backend).await;
    let env = ProcessEnv::new(dir.path(), db.postgres_url());
    let token = env.run(&["token", "create", "--scope", "webhooks:manage"]);
    let events_token = env.run(&["token", "create", "--scope", "events:write"]);
    let port = free_port();
    let mut serve = env.serve(port).await;
    let mut workers: Vec<_> = match backend {
        lwh_storage::Backend::Postgres => vec![env.worker(), env.worker()],
        lwh_storage::Backend::Sqlite => Vec::new(),
    };
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let (paced, free) = (Receiver::start().await, Receiver::start().await);
    for (rx, limit) in [(&paced, json!(50)), (&free, Value::Null)] {
        let res = client
            .post(format!("{base}/api/v1/webhooks"))
            .bearer_auth(&token)
            .json(&json!({"url": rx.url("/t"), "events": ["course_completed"], "max_per_second": limit}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        let body: Value = res.json().await.unwrap();
        common::logs::remember(body["data"]["secret"].as_str().unwrap());
    }
    let events: Vec<Value> = (0..EVENTS)
        .map(|n| json!({"event": "course_completed", "data": {"n": n}}))
        .collect();
    let res = client
        .post(format!("{base}/api/v1/events/batch"))
        .bearer_auth(&events_token)
        .json(&json!({ "events": events }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);

    let unthrottled = free.wait_for(EVENTS, Duration::from_secs(30)).await;
    let got = paced.wait_for(EVENTS, Duration::from_secs(30)).await;
    // Nothing more comes: none was sent twice.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got_all = paced.received();
    assert_eq!(got_all.len(), EVENTS, "each event once");
    let ids: std::collections::HashSet<String> =
        got_all.iter().map(|r| r.header("webhook-id")).collect();
    assert_eq!(ids.len(), EVENTS, "no event lost or repeated");

    let arrivals: Vec<Instant> = got.iter().map(|r| r.at).collect();
    let span = arrivals[EVENTS - 1]
        .duration_since(arrivals[0])
        .as_secs_f64();
    let rate = (EVENTS - 1) as f64 / span;
    assert!(
        (RATE * 0.9..=RATE * 1.1).contains(&rate),
        "{rate:.1}/s over {span:.2} s"
    );
    let busiest = lwh_domain::throttle::most_within_a_second(&arrivals);
    let busiest_two = lwh_domain::throttle::most_within(&arrivals, Duration::from_secs(2));
    eprintln!(
        "{backend:?}: {rate:.2}/s over {span:.2} s, at most {busiest} in one second, \
         {busiest_two} in two"
    );
    // No burst: the busiest two seconds stay within the 10 % the design allows (over a
    // minute). Over one second, a stall of ~100 ms on a loaded 2-core machine (the sender's or
    // the receiver's) delivers five or six late ones beside the next on-time ones: seen at
    // 56-57 in one second with 50.6-50.8/s overall. A throttle that let 50 go at once would
    // still show here (150 in two seconds).
    assert!(
        busiest_two as f64 <= 2.0 * RATE * 1.1,
        "{busiest_two} in two seconds ({busiest} in one)"
    );
    // The neighbour was not held back: it had everything long before the throttled one.
    let neighbour_done = unthrottled[EVENTS - 1].at;
    assert!(
        arrivals[EVENTS - 1].duration_since(neighbour_done) > Duration::from_secs(5),
        "the unthrottled webhook finished late"
    );
    for worker in &mut workers {
        common::process::assert_alive(worker, "worker");
        kill9(worker);
    }
    kill9(&mut serve);
    db.drop_all().await;
}

both_backends!(a_throttle_holds_across_processes, |backend| async move {
    throttle_holds_across_processes(backend).await
});

both_backends!(a_throttle_in_the_console_form, |backend| async move {
    with_server(backend, delivery_settings(Plan::Pro), |s| async move {
        let rx = Receiver::start().await;
        let console = s.console_session().await;
        let page = console.page("/admin/webhooks").await;
        assert!(page.contains("Max deliveries per second"), "the field");
        let csrf = common::form_csrf(&page);
        let add = |limit: &'static str| {
            let csrf = csrf.clone();
            let url = rx.url("/console");
            let console = &console;
            async move {
                console
                    .post(
                        "/admin/webhooks",
                        &[
                            ("_csrf", csrf.as_str()),
                            ("url", url.as_str()),
                            ("events", "course_completed"),
                            ("max_per_second", limit),
                        ],
                    )
                    .await
            }
        };
        // Not a whole number, or out of range: the form again, saying why, with what was typed.
        for bad in ["fast", "0", "20000"] {
            let res = add(bad).await;
            assert_eq!(res.status(), 422, "{bad}");
            let form = res.text().await.unwrap();
            assert!(
                form.contains("must be a whole number from 1 to 10000"),
                "{bad}"
            );
            assert!(form.contains(&format!("value=\"{bad}\"")), "{bad} kept");
        }
        assert_eq!(add("25").await.status(), 303);
        let page = console.page("/admin/webhooks").await;
        assert!(
            page.contains("At most 25 deliveries a second"),
            "the row says it"
        );
        let id = s.get_json("/api/v1/webhooks").await["data"][0]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(webhook(&s, &id).await["max_per_second"], 25);
        let edit = console.page(&format!("/admin/webhooks?edit={id}")).await;
        assert!(edit.contains("value=\"25\""), "the form shows it");
        // Emptied on Edit: unlimited again.
        let res = console
            .post(
                &format!("/admin/webhooks/{id}/edit"),
                &[
                    ("_csrf", common::form_csrf(&edit).as_str()),
                    ("url", rx.url("/console").as_str()),
                    ("events", "course_completed"),
                    ("max_per_second", ""),
                ],
            )
            .await;
        assert_eq!(res.status(), 303);
        assert!(webhook(&s, &id).await["max_per_second"].is_null());
        assert!(!console
            .page("/admin/webhooks")
            .await
            .contains("deliveries a second"));
    })
    .await
});
