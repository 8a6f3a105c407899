//! Service events end to end: a receiver that breaks makes its webhook Failed and a second
//! webhook subscribed to `webhook_failed` is told, signed like any delivery; the probe brings
//! it back and `webhook_recovered` follows; an exhausted delivery is reported once; a webhook
//! is never told about itself; and an LMS cannot send service events — on SQLite and on
//! PostgreSQL, with real receivers on 127.0.0.1.

mod common;

use std::time::{Duration, Instant};

use common::receiver::{Answer, Received, Receiver};
use common::{delivery_settings, with_server, TestServer};
use lwh_domain::Plan;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(15);
const WATCHER_SECRET: &str = "service-watcher-Zq8mK2xV7pL0sT4w";
const SERVICE: [&str; 3] = ["webhook_failed", "webhook_recovered", "delivery_exhausted"];

fn ms(n: u64) -> lwh_app::Dur {
    lwh_app::Dur(Duration::from_millis(n))
}

/// Settings under which a failing endpoint becomes Failed within a second, probed every
/// `probe`.
fn failing_fast(plan: Plan, probe: Duration) -> lwh_app::Settings {
    let mut settings = delivery_settings(plan);
    settings.retry_schedule = vec![ms(40); 7];
    settings.failed_after = ms(150);
    settings.failed_probe_interval = lwh_app::Dur(probe);
    settings
}

/// Waits until the webhook has `want` status.
async fn wait_status(s: &TestServer, id: &str, want: &str) {
    let deadline = Instant::now() + WAIT;
    while status(s, id).await != want {
        assert!(Instant::now() < deadline, "{id} never became {want}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn emit(s: &TestServer, event: &str) -> reqwest::Response {
    s.client
        .post(s.url("/api/v1/events"))
        .bearer_auth(&s.events_token)
        .json(&json!({"event": event, "data": {"user_id": 7}}))
        .send()
        .await
        .unwrap()
}

/// A webhook subscribed to `events` with our own secret; returns its id.
async fn subscribe(s: &TestServer, url: &str, events: &[&str], secret: Option<&str>) -> String {
    let mut body = json!({"url": url, "events": events});
    if let Some(secret) = secret {
        common::logs::remember(secret);
        body["secret"] = json!(secret);
    }
    s.post_webhook(body).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn status(s: &TestServer, id: &str) -> String {
    s.get_json(&format!("/api/v1/webhooks/{id}")).await["data"]["status"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Waits until `rx` has a request for `event`; returns it.
async fn wait_for_event(rx: &Receiver, event: &str) -> Received {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(r) = rx
            .received()
            .into_iter()
            .find(|r| r.header("x-learnomy-event") == event)
        {
            return r;
        }
        assert!(Instant::now() < deadline, "no {event} arrived");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

both_backends!(
    a_broken_endpoint_is_reported_failed_then_recovered,
    |backend| async move {
        // On Free: service events are not a Pro feature.
        let settings = failing_fast(Plan::Free, Duration::from_millis(300));
        with_server(backend, settings, |s| async move {
            let watcher = Receiver::start().await;
            let watcher_id =
                subscribe(&s, &watcher.url("/watch"), &SERVICE, Some(WATCHER_SECRET)).await;
            let broken = Receiver::start().await;
            broken.always(Answer::Status(503));
            let broken_id = subscribe(&s, &broken.url("/crm"), &["course_completed"], None).await;
            assert_eq!(emit(&s, "course_completed").await.status(), 202);

            let failed = wait_for_event(&watcher, "webhook_failed").await;
            assert_eq!(status(&s, &broken_id).await, "failed");
            failed.assert_signed(WATCHER_SECRET);
            let body = failed.json();
            assert_eq!(body["event"], "webhook_failed");
            let data = &body["data"];
            assert_eq!(data["webhook_id"], broken_id.as_str(), "{body}");
            assert_eq!(data["url"], broken.url("/crm"));
            assert!(
                data["reason"].as_str().unwrap().contains("failed attempts"),
                "{data}"
            );
            assert!(
                lwh_domain::Timestamp::parse_rfc3339(data["since"].as_str().unwrap()).is_some(),
                "{data}"
            );

            // The receiver comes back; the next probe succeeds and says so.
            broken.always(Answer::Status(200));
            let recovered = wait_for_event(&watcher, "webhook_recovered").await;
            recovered.assert_signed(WATCHER_SECRET);
            let data = recovered.json()["data"].clone();
            assert_eq!(data["webhook_id"], broken_id.as_str());
            assert_eq!(data["how"], "probe");
            assert_eq!(status(&s, &broken_id).await, "active");

            // Each said once; none was about the watcher itself.
            tokio::time::sleep(Duration::from_millis(500)).await;
            let got = watcher.received();
            for event in ["webhook_failed", "webhook_recovered"] {
                assert_eq!(
                    got.iter()
                        .filter(|r| r.header("x-learnomy-event") == event)
                        .count(),
                    1,
                    "{event}"
                );
            }
            assert!(got
                .iter()
                .all(|r| r.json()["data"]["webhook_id"] != watcher_id.as_str()));
        })
        .await
    }
);

both_backends!(
    an_admin_re_activation_is_reported_as_such,
    |backend| async move {
        let settings = failing_fast(Plan::Free, Duration::from_secs(3600));
        with_server(backend, settings, |s| async move {
            let watcher = Receiver::start().await;
            subscribe(&s, &watcher.url("/watch"), &["webhook_recovered"], None).await;
            let broken = Receiver::start().await;
            broken.always(Answer::Status(500));
            let id = subscribe(&s, &broken.url("/down"), &["course_completed"], None).await;
            emit(&s, "course_completed").await;
            wait_status(&s, &id, "failed").await;
            assert!(
                watcher.received().is_empty(),
                "not subscribed to webhook_failed"
            );
            // The Webhooks page names it in a banner, with why.
            let console = s.console_session().await;
            let page = console.page("/admin/webhooks").await;
            let banner = page
                .split("id=\"failed-banner\"")
                .nth(1)
                .expect("the Failed banner")
                .split("</section>")
                .next()
                .unwrap()
                .to_owned();
            let reason = s.get_json(&format!("/api/v1/webhooks/{id}")).await["data"]
                ["status_reason"]
                .as_str()
                .unwrap()
                .to_owned();
            assert!(banner.contains("1 webhook is Failed"), "{banner}");
            assert!(banner.contains(&broken.url("/down")), "{banner}");
            assert!(banner.contains(&reason), "{banner}");
            assert!(banner.contains("failing since"), "{banner}");
            let res = s
                .manage(reqwest::Method::PATCH, &format!("/api/v1/webhooks/{id}"))
                .json(&json!({"status": "active"}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            let recovered = wait_for_event(&watcher, "webhook_recovered").await;
            assert_eq!(recovered.json()["data"]["how"], "admin");
            assert!(
                !console
                    .page("/admin/webhooks")
                    .await
                    .contains("failed-banner"),
                "no banner once it is Active"
            );
            assert_eq!(recovered.json()["data"]["webhook_id"], id.as_str());
        })
        .await
    }
);

both_backends!(
    an_exhausted_delivery_is_reported_and_a_service_event_s_own_exhaustion_is_not,
    |backend| async move {
        let mut settings = delivery_settings(Plan::Pro);
        settings.retry_schedule = vec![ms(50), ms(50), ms(50)];
        // Long enough that the failing webhooks exhaust their deliveries, never become Failed.
        settings.failed_after = lwh_app::Dur(Duration::from_secs(3600));
        with_server(backend, settings, |s| async move {
            let watcher = Receiver::start().await;
            subscribe(
                &s,
                &watcher.url("/watch"),
                &["delivery_exhausted"],
                Some(WATCHER_SECRET),
            )
            .await;
            // A second watcher that is down: its copy of the report exhausts too, and that is
            // not reported (or two dead watchers would report each other forever).
            let dead_watcher = Receiver::start().await;
            dead_watcher.always(Answer::Status(500));
            subscribe(
                &s,
                &dead_watcher.url("/watch"),
                &["delivery_exhausted"],
                None,
            )
            .await;
            let broken = Receiver::start().await;
            broken.always(Answer::Status(500));
            let broken_id = subscribe(&s, &broken.url("/crm"), &["quiz_passed"], None).await;
            let accepted: Value = emit(&s, "quiz_passed").await.json().await.unwrap();
            let event_id = accepted["data"]["id"].as_str().unwrap().to_owned();

            let report = wait_for_event(&watcher, "delivery_exhausted").await;
            report.assert_signed(WATCHER_SECRET);
            let data = report.json()["data"].clone();
            assert_eq!(data["webhook_id"], broken_id.as_str());
            assert_eq!(data["url"], broken.url("/crm"));
            assert_eq!(data["event"], "quiz_passed");
            assert_eq!(data["event_id"], event_id.as_str());
            assert_eq!(data["attempts"], 4);
            assert_eq!(data["last_status_code"], 500);
            let log = s
                .get_json(&format!("/api/v1/webhooks/{broken_id}/deliveries"))
                .await;
            assert_eq!(data["delivery_id"], log["data"][0]["id"], "{log}");
            assert_eq!(log["data"][0]["status"], "failed");

            // The dead watcher used its four attempts on the report…
            let deadline = Instant::now() + WAIT;
            while dead_watcher.count() < 4 {
                assert!(Instant::now() < deadline, "the dead watcher was not tried");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            // …and nothing more is reported: one report in all.
            tokio::time::sleep(Duration::from_millis(800)).await;
            assert_eq!(watcher.count(), 1, "only the LMS event's exhaustion");
            assert_eq!(dead_watcher.count(), 4);
        })
        .await
    }
);

both_backends!(
    a_watcher_that_fails_itself_is_never_told_about_itself,
    |backend| async move {
        let settings = failing_fast(Plan::Pro, Duration::from_secs(3600));
        with_server(backend, settings, |s| async move {
            // The only webhook subscribed to service events, on an endpoint that is down, and
            // subscribed to an LMS event too, so it fails by itself.
            let watcher = Receiver::start().await;
            watcher.always(Answer::Status(500));
            let mut events = SERVICE.to_vec();
            events.push("course_completed");
            let watcher_id = subscribe(&s, &watcher.url("/watch"), &events, None).await;
            emit(&s, "course_completed").await;
            wait_status(&s, &watcher_id, "failed").await;
            tokio::time::sleep(Duration::from_millis(500)).await;
            // Everything it was sent is the LMS event; no report of its own failure exists.
            let got = watcher.received();
            assert!(!got.is_empty());
            assert!(
                got.iter()
                    .all(|r| r.header("x-learnomy-event") == "course_completed"),
                "{:?}",
                got.iter()
                    .map(|r| r.header("x-learnomy-event"))
                    .collect::<Vec<_>>()
            );
            let log = s
                .get_json(&format!("/api/v1/webhooks/{watcher_id}/deliveries"))
                .await;
            let logged = log["data"].as_array().unwrap();
            assert!(
                !logged.is_empty() && logged.iter().all(|d| d["event"] == "course_completed"),
                "no delivery about itself: {log}"
            );
        })
        .await
    }
);

both_backends!(an_lms_cannot_send_service_events, |backend| async move {
    with_server(backend, delivery_settings(Plan::Free), |s| async move {
        for event in SERVICE {
            let res = emit(&s, event).await;
            assert_eq!(res.status(), 422, "{event}");
            let problem: Value = res.json().await.unwrap();
            assert_eq!(problem["errors"][0]["field"], "event", "{problem}");
            assert!(
                problem["errors"][0]["message"]
                    .as_str()
                    .unwrap()
                    .contains("only the service sends it"),
                "{problem}"
            );
        }
    })
    .await
});
