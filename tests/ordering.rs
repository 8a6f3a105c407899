//! Ordered delivery per key (§15), on SQLite and on PostgreSQL: a `by_key` webhook gets 100
//! keys × 50 events through a loopback receiver that fails one request in five at random —
//! every key's events arrive in acceptance order (a retried one before the next of its key),
//! none is lost; a waiting delivery shows as waiting in the API and the console's log; leaving
//! `by_key` releases the line; keys are checked on input; and with the real binary, a
//! `kill -9` mid-run keeps every key's order.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::process::{free_port, kill9, ProcessEnv};
use common::receiver::{Answer, Received, Receiver};
use common::{delivery_settings, with_server, TestDb, TestServer};
use lwh_domain::Plan;
use lwh_storage::Backend;
use serde_json::{json, Value};

const KEYS: usize = 100;
const PER_KEY: usize = 50;

/// Delivery settings with retries quick and many enough that one in five failing never
/// exhausts a delivery (0.2^13).
fn settings() -> lwh_app::Settings {
    let ms = |n| lwh_app::Dur(Duration::from_millis(n));
    lwh_app::Settings {
        retry_schedule: vec![ms(20); 12],
        ..delivery_settings(Plan::Pro)
    }
}

/// Delivery settings whose first retry comes after 5 s: a failing head holds its line.
fn slow_retries() -> lwh_app::Settings {
    lwh_app::Settings {
        retry_schedule: vec![lwh_app::Dur(Duration::from_secs(5)); 2],
        ..delivery_settings(Plan::Pro)
    }
}

/// `rounds` rounds of one event per key (`n` is the round), keys interleaved as a busy LMS
/// would send them, in batches of at most 500; returns the accepted event ids.
async fn send_rounds(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    keys: usize,
    rounds: usize,
) -> Vec<String> {
    let all: Vec<Value> = (0..rounds)
        .flat_map(|n| {
            (0..keys).map(move |k| {
                json!({"event": "course_completed", "data": {"key": k, "n": n},
                       "ordering_key": format!("user:{k}")})
            })
        })
        .collect();
    let mut ids = Vec::with_capacity(all.len());
    for batch in all.chunks(500) {
        let res = client
            .post(url)
            .bearer_auth(token)
            .json(&json!({ "events": batch }))
            .send()
            .await
            .expect("batch");
        assert_eq!(res.status(), 202);
        let body: Value = res.json().await.expect("json");
        for accepted in body["data"].as_array().expect("accepted") {
            ids.push(accepted["id"].as_str().expect("id").to_owned());
        }
    }
    ids
}

/// (key, n) of a received request.
fn key_and_n(r: &Received) -> (u64, u64) {
    let body = r.json();
    let data = &body["data"];
    (
        data["key"].as_u64().expect("key"),
        data["n"].as_u64().expect("n"),
    )
}

/// Checks every key's requests, in arrival order: `n` never goes back (a failed one is tried
/// again before the next is sent; a duplicate after a crash repeats the last one), and each
/// of `0..rounds` was answered 200 at least once. Returns how many requests failed.
fn assert_in_order(received: &[Received], keys: usize, rounds: usize) -> usize {
    let mut by_key: HashMap<u64, Vec<(u64, bool)>> = HashMap::new();
    for r in received {
        let (k, n) = key_and_n(r);
        by_key.entry(k).or_default().push((n, !r.refused));
    }
    assert_eq!(by_key.len(), keys, "every key was delivered");
    let mut failures = 0;
    for (k, seen) in &by_key {
        let arrivals: Vec<u64> = seen.iter().map(|(n, _)| *n).collect();
        assert!(
            arrivals.windows(2).all(|w| w[0] <= w[1]),
            "key {k} arrived out of order: {arrivals:?}"
        );
        let mut delivered: Vec<u64> = seen.iter().filter(|(_, ok)| *ok).map(|(n, _)| *n).collect();
        delivered.dedup();
        assert_eq!(
            delivered,
            (0..rounds as u64).collect::<Vec<_>>(),
            "key {k}: each event delivered, in order"
        );
        // Every failed request was followed by the same event again.
        for (i, (n, ok)) in seen.iter().enumerate() {
            if !ok {
                failures += 1;
                assert_eq!(
                    seen.get(i + 1).map(|(m, _)| m),
                    Some(n),
                    "key {k}: {n} retried next"
                );
            }
        }
    }
    failures
}

/// Waits until every one of `ids` got a 200 (by `webhook-id`).
async fn wait_delivered(rx: &Receiver, ids: &[String], timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let ok: std::collections::HashSet<String> = rx
            .received()
            .iter()
            .filter(|r| !r.refused)
            .map(|r| r.header("webhook-id"))
            .collect();
        let missing = ids.iter().filter(|id| !ok.contains(*id)).count();
        if missing == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} of {} events never delivered",
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn ordered_webhook(s: &TestServer, url: &str) -> String {
    let created = s
        .post_webhook(json!({"url": url, "events": ["course_completed"], "ordering": "by_key"}))
        .await;
    assert_eq!(created["ordering"], "by_key", "{created}");
    created["id"].as_str().expect("id").to_owned()
}

both_backends!(
    each_keys_events_arrive_in_order_through_random_failures,
    |backend| async move {
        with_server(backend, settings(), |s| async move {
        let rx = Receiver::start().await;
        rx.always(Answer::Flaky(20));
        let id = ordered_webhook(&s, &rx.url("/ordered")).await;
        let started = Instant::now();
        let ids = send_rounds(&s.client, &s.url("/api/v1/events/batch"), &s.events_token, KEYS, PER_KEY).await;
        assert_eq!(ids.len(), KEYS * PER_KEY);
        wait_delivered(&rx, &ids, Duration::from_secs(240)).await;
        let elapsed = started.elapsed();
        let received = rx.received();
        let failures = assert_in_order(&received, KEYS, PER_KEY);
        eprintln!(
            "{backend:?}: {} events in order over {KEYS} keys in {elapsed:?}, {failures} failed attempts retried",
            ids.len()
        );
        assert!(failures > KEYS * PER_KEY / 10, "the receiver failed about one in five ({failures})");
        // Nothing is left waiting or queued, and none failed for good.
        for status in ["pending", "retrying", "failed"] {
            let page = s
                .get_json(&format!("/api/v1/webhooks/{id}/deliveries?status={status}"))
                .await;
            assert_eq!(page["data"], json!([]), "{status}: {page}");
        }
    })
    .await
    }
);

both_backends!(
    a_waiting_delivery_shows_and_leaving_by_key_releases_it,
    |backend| async move {
        with_server(backend, slow_retries(), |s| async move {
            let rx = Receiver::start().await;
            // The first of the key fails until told otherwise.
            rx.always(Answer::Status(503));
            let id = ordered_webhook(&s, &rx.url("/held")).await;
            let ids = send_rounds(
                &s.client,
                &s.url("/api/v1/events/batch"),
                &s.events_token,
                1,
                3,
            )
            .await;
            assert_eq!(ids.len(), 3);
            rx.wait_for(1, Duration::from_secs(10)).await;
            tokio::time::sleep(Duration::from_millis(500)).await;
            // Only the first event was ever sent: the two behind it wait.
            assert!(rx.received().iter().all(|r| key_and_n(r) == (0, 0)));
            let page = s
                .get_json(&format!("/api/v1/webhooks/{id}/deliveries?status=pending"))
                .await;
            let waiting: Vec<&Value> = page["data"].as_array().expect("page").iter().collect();
            assert_eq!(waiting.len(), 2, "{page}");
            for d in &waiting {
                assert_eq!(d["waiting"], true, "{d}");
                assert_eq!(d["ordering_key"], "user:0");
                assert_eq!(d["next_attempt_at"], Value::Null);
            }
            // Operators see them in /metrics (counted in the background: the first scrape
            // starts the count).
            let started = std::time::Instant::now();
            loop {
                let text = s.api_text("/metrics").await;
                if text
                    .lines()
                    .any(|l| l == "learnomy_webhooks_queue_waiting 2")
                {
                    break;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "the two waiting deliveries never showed: {text}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let console = s.console_session().await;
            let log = console.page(&format!("/admin/webhooks/{id}/log")).await;
            assert_eq!(
                log.matches("Waiting behind an earlier one").count(),
                2,
                "{log}"
            );
            let detail = console
                .page(&format!(
                    "/admin/deliveries/{}",
                    waiting[0]["id"].as_str().expect("id")
                ))
                .await;
            assert!(
                detail.contains("user:0") && detail.contains("behind an earlier delivery"),
                "{detail}"
            );
            // Leaving by_key sends what waited at once, while the first waits for its retry.
            rx.always(Answer::Status(200));
            let res = s
                .manage(reqwest::Method::PATCH, &format!("/api/v1/webhooks/{id}"))
                .json(&json!({"ordering": "none"}))
                .send()
                .await
                .expect("patch");
            assert_eq!(res.status(), 200);
            let body: Value = res.json().await.expect("json");
            assert_eq!(body["data"]["ordering"], "none");
            let got: Vec<(u64, u64)> = rx
                .wait_for(3, Duration::from_secs(10))
                .await
                .iter()
                .map(key_and_n)
                .collect();
            assert_eq!(got[1..].iter().filter(|k| k.1 > 0).count(), 2, "{got:?}");
            assert_eq!(
                got.iter().filter(|k| **k == (0, 0)).count(),
                1,
                "the first is still waiting for its retry: {got:?}"
            );
            let page = s
                .get_json(&format!("/api/v1/webhooks/{id}/deliveries"))
                .await;
            assert!(
                page["data"]
                    .as_array()
                    .expect("page")
                    .iter()
                    .all(|d| d["waiting"] == false && d["ordering_key"].is_null()),
                "{page}"
            );
        })
        .await
    }
);

both_backends!(
    unkeyed_events_and_unordered_webhooks_are_not_held,
    |backend| async move {
        with_server(backend, slow_retries(), |s| async move {
            let rx = Receiver::start().await;
            rx.always(Answer::Status(503));
            let ordered = ordered_webhook(&s, &rx.url("/ordered")).await;
            let unordered = s
                .create_webhook(&rx.url("/unordered"), &["course_completed"])
                .await;
            assert_eq!(unordered["ordering"], "none");
            // Two keyed events and one without a key.
            let events = json!({"events": [
                {"event": "course_completed", "data": {"key": 1, "n": 0}, "ordering_key": "user:1"},
                {"event": "course_completed", "data": {"key": 1, "n": 1}, "ordering_key": "user:1"},
                {"event": "course_completed", "data": {"key": 2, "n": 0}},
            ]});
            let res = s
                .client
                .post(s.url("/api/v1/events/batch"))
                .bearer_auth(&s.events_token)
                .json(&events)
                .send()
                .await
                .expect("batch");
            assert_eq!(res.status(), 202);
            // The unordered webhook gets all three, the ordered one the first and the unkeyed one;
            // its second keyed event waits.
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let got = rx.received();
                let unordered_seen: std::collections::BTreeSet<(u64, u64)> = got
                    .iter()
                    .filter(|r| {
                        r.header("x-learnomy-webhook")
                            == unordered["id"].as_str().unwrap_or_default()
                    })
                    .map(key_and_n)
                    .collect();
                let ordered_seen: std::collections::BTreeSet<(u64, u64)> = got
                    .iter()
                    .filter(|r| r.header("x-learnomy-webhook") == ordered)
                    .map(key_and_n)
                    .collect();
                if unordered_seen.len() == 3 && ordered_seen.len() == 2 {
                    assert!(!ordered_seen.contains(&(1, 1)), "{ordered_seen:?}");
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "unordered {unordered_seen:?}, ordered {ordered_seen:?}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
    }
);

both_backends!(ordering_input_is_checked, |backend| async move {
    with_server(backend, settings(), |s| async move {
        let post = |path: &'static str, body: Value| {
            let token = if path.contains("webhooks") { s.manage_token.clone() } else { s.events_token.clone() };
            let request = s.client.post(s.url(path)).bearer_auth(token).json(&body);
            async move {
                let res = request.send().await.expect("request");
                let status = res.status().as_u16();
                (status, res.json::<Value>().await.expect("json"))
            }
        };
        let (status, body) = post("/api/v1/events", json!({"event": "course_completed", "ordering_key": "k".repeat(129)})).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["errors"][0]["field"], "ordering_key", "{body}");
        let (status, body) = post("/api/v1/events/batch", json!({"events": [
            {"event": "course_completed", "ordering_key": "user:1"},
            {"event": "course_completed", "ordering_key": ""},
        ]})).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["errors"][0]["field"], "events[1].ordering_key", "{body}");
        let (status, body) = post("/api/v1/webhooks", json!({"url": "http://127.0.0.1:9/x", "events": ["course_completed"], "ordering": "fifo"})).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["errors"][0]["field"], "ordering", "{body}");
    })
    .await
});

both_backends!(
    the_console_form_sets_and_shows_the_delivery_order,
    |backend| async move {
        with_server(backend, settings(), |s| async move {
            let console = s.console_session().await;
            let page = console.page("/admin/webhooks").await;
            assert!(
                page.contains("Delivery order") && page.contains("value=\"by_key\""),
                "the field is offered"
            );
            let csrf = common::form_csrf(&page);
            let res = console
                .post(
                    "/admin/webhooks",
                    &[
                        ("_csrf", csrf.as_str()),
                        ("url", "http://127.0.0.1:9/crm"),
                        ("events", "course_completed"),
                        ("secret", "console-ordering-secret-Zq81Lp"),
                        ("ordering", "by_key"),
                    ],
                )
                .await;
            assert_eq!(res.status(), 303);
            let id = s.get_json("/api/v1/webhooks").await["data"][0]["id"]
                .as_str()
                .expect("id")
                .to_owned();
            assert_eq!(
                s.stored_webhook(&id).await.ordering,
                lwh_domain::ordering::DeliveryOrder::ByKey
            );
            let edit = console.page(&format!("/admin/webhooks?edit={id}")).await;
            assert!(
                edit.contains("value=\"by_key\" selected"),
                "the edit form shows it"
            );
            // Saving the edit form with No order.
            let res = console
                .post(
                    &format!("/admin/webhooks/{id}/edit"),
                    &[
                        ("_csrf", common::form_csrf(&edit).as_str()),
                        ("url", "http://127.0.0.1:9/crm"),
                        ("events", "course_completed"),
                        ("ordering", "none"),
                    ],
                )
                .await;
            assert_eq!(res.status(), 303);
            assert_eq!(
                s.stored_webhook(&id).await.ordering,
                lwh_domain::ordering::DeliveryOrder::Unordered
            );
        })
        .await
    }
);

/// The real binary, `kill -9` while keyed deliveries are in flight and waiting, restarted: no
/// key's order is broken and nothing is lost.
async fn kill_mid_run_keeps_the_order(backend: Backend) {
    const KEYS: usize = 40;
    const ROUNDS: usize = 40;
    let dir = tempfile::tempdir().expect("dir");
    let db = TestDb::create(backend).await;
    let mut env = ProcessEnv::new(dir.path(), db.postgres_url());
    env.vars.push((
        "LEARNOMY_WEBHOOKS_RETRY_SCHEDULE".into(),
        serde_json::to_string(&vec!["20ms"; 12]).expect("json"),
    ));
    let manage = env.run(&["token", "create", "--scope", "webhooks:manage"]);
    let events = env.run(&["token", "create", "--scope", "events:write"]);
    let rx = Receiver::start().await;
    rx.always(Answer::Flaky(20));
    let port = free_port();
    let mut service = env.serve(port).await;
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let created: Value = client
        .post(format!("http://127.0.0.1:{port}/api/v1/webhooks"))
        .bearer_auth(&manage)
        .json(
            &json!({"url": rx.url("/kill"), "events": ["course_completed"], "ordering": "by_key"}),
        )
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    assert_eq!(created["data"]["ordering"], "by_key", "{created}");
    let ids = send_rounds(
        &client,
        &format!("http://127.0.0.1:{port}/api/v1/events/batch"),
        &events,
        KEYS,
        ROUNDS,
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while rx.count() < ids.len() / 3 {
        assert!(Instant::now() < deadline, "deliveries did not start");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    kill9(&mut service);
    let at_kill = rx.count();
    let mut service = env.serve(port).await;
    wait_delivered(&rx, &ids, Duration::from_secs(180)).await;
    kill9(&mut service);
    let received = rx.received();
    assert!(at_kill < received.len(), "the kill landed mid-run");
    let failures = assert_in_order(&received, KEYS, ROUNDS);
    eprintln!(
        "{backend:?}: killed after {at_kill} requests; {} requests in all, {failures} failed, every key in order",
        received.len()
    );
    db.drop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_run_keeps_each_keys_order_sqlite() {
    kill_mid_run_keeps_the_order(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_run_keeps_each_keys_order_postgres() {
    kill_mid_run_keeps_the_order(Backend::Postgres).await;
}
