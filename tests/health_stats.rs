//! Health at a glance: `GET /api/v1/webhooks/{id}/stats` must agree with the attempts the
//! log shows, recomputed here from scratch (per hour, success rate, nearest-rank percentiles
//! mapped to the documented buckets) after real deliveries to a loopback receiver that
//! answers slowly, with errors, and well; the hourly counters behind it are written within a
//! second, kept per hour, pruned after eight days and deleted with their webhook — on SQLite
//! and on PostgreSQL.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::receiver::{Answer, Receiver};
use common::{delivery_settings, with_server, TestDb, TestServer};
use lwh_domain::stats::HOUR_MS;
use lwh_domain::{
    AttemptOutcome, DeliveryId, ErrorKind, NextStep, Plan, Timestamp, WebhookId, WebhookStatus,
};
use lwh_storage::{AttemptRecord, FailureRules, NewWebhook, Store};
use serde_json::{json, Value};

/// The documented bucket bounds (API reference, `p50_ms`), written out again here so a change
/// to them is a visible change to the contract.
const BOUNDS: [i64; 28] = [
    1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100, 150, 200, 300, 500, 700, 1_000, 1_500, 2_000,
    3_000, 5_000, 7_000, 10_000, 15_000, 20_000, 30_000, 60_000,
];

/// The bound a true percentile of `ms` is reported as.
fn reported_as(ms: i64) -> i64 {
    BOUNDS.iter().copied().find(|b| ms <= *b).unwrap_or(60_000)
}

/// Nearest-rank percentile of raw durations.
fn nearest_rank(sorted: &[i64], percent: usize) -> i64 {
    let rank = (sorted.len() * percent).div_ceil(100).max(1);
    sorted[rank - 1]
}

/// Every attempt of the webhook as the log shows it: (started_at ms, delivered, duration ms).
async fn logged_attempts(s: &TestServer, webhook: &str) -> Vec<(i64, bool, i64)> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = s
            .get_json(&format!(
                "/api/v1/webhooks/{webhook}/deliveries?limit=100&cursor={cursor}"
            ))
            .await;
        for d in page["data"].as_array().expect("deliveries") {
            let id = d["id"].as_str().expect("id");
            let detail = s.get_json(&format!("/api/v1/deliveries/{id}")).await;
            for a in detail["data"]["attempts_log"].as_array().expect("attempts") {
                let started = Timestamp::parse_rfc3339(a["started_at"].as_str().expect("time"))
                    .expect("rfc3339")
                    .millis();
                let code = a["status_code"].as_i64();
                let delivered =
                    a["error_kind"].is_null() && code.is_some_and(|c| (200..300).contains(&c));
                out.push((started, delivered, a["duration_ms"].as_i64().expect("ms")));
            }
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => return out,
        }
    }
}

/// Waits until none of the webhook's deliveries is pending or retrying.
async fn wait_settled(s: &TestServer, webhook: &str, deliveries: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let page = s
            .get_json(&format!("/api/v1/webhooks/{webhook}/deliveries?limit=100"))
            .await;
        let all = page["data"].as_array().expect("deliveries");
        let open = all
            .iter()
            .filter(|d| matches!(d["status"].as_str(), Some("pending" | "retrying")))
            .count();
        if all.len() == deliveries && open == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "deliveries never settled: {page}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What the endpoint must say, recomputed from the log.
fn expected(attempts: &[(i64, bool, i64)], now: i64, hours: i64) -> Value {
    let first = now.div_euclid(HOUR_MS) * HOUR_MS - (hours - 1) * HOUR_MS;
    let inside: Vec<&(i64, bool, i64)> = attempts.iter().filter(|a| a.0 >= first).collect();
    let succeeded = inside.iter().filter(|a| a.1).count() as i64;
    let mut per_hour: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    for (at, delivered, _) in &inside {
        let e = per_hour
            .entry(at.div_euclid(HOUR_MS) * HOUR_MS)
            .or_default();
        if *delivered {
            e.0 += 1;
        } else {
            e.1 += 1;
        }
    }
    let mut durations: Vec<i64> = inside.iter().map(|a| a.2).collect();
    durations.sort_unstable();
    json!({
        "attempts": inside.len(),
        "succeeded": succeeded,
        "failed": inside.len() as i64 - succeeded,
        "success_rate": succeeded as f64 / inside.len() as f64,
        "p50_ms": reported_as(nearest_rank(&durations, 50)),
        "p95_ms": reported_as(nearest_rank(&durations, 95)),
        "busy_hours": per_hour
            .iter()
            .map(|(h, (ok, bad))| json!([Timestamp::from_millis(*h).to_rfc3339(), ok, bad]))
            .collect::<Vec<_>>(),
    })
}

/// The endpoint's answer in the same shape.
fn observed(stats: &Value) -> Value {
    json!({
        "attempts": stats["attempts"],
        "succeeded": stats["succeeded"],
        "failed": stats["failed"],
        "success_rate": stats["success_rate"],
        "p50_ms": stats["p50_ms"],
        "p95_ms": stats["p95_ms"],
        "busy_hours": stats["hours"]
            .as_array()
            .expect("hours")
            .iter()
            .filter(|h| h["succeeded"].as_i64() != Some(0) || h["failed"].as_i64() != Some(0))
            .map(|h| json!([h["hour"], h["succeeded"], h["failed"]]))
            .collect::<Vec<_>>(),
    })
}

both_backends!(
    stats_match_the_attempts_the_log_shows,
    |backend| async move {
        with_server(backend, delivery_settings(Plan::Pro), |s| async move {
            let rx = Receiver::start().await;
            // Fast and slow successes, errors that are retried (100 ms apart, three times).
            let mut answers = Vec::new();
            for i in 0..30 {
                answers.push(match i % 6 {
                    0 => Answer::SlowOk(40),
                    1 => Answer::Status(500),
                    2 => Answer::SlowOk(180),
                    3 => Answer::Status(404),
                    _ => Answer::Status(200),
                });
            }
            rx.script(&answers);
            let webhook = s
                .create_webhook(&rx.url("/crm"), &["course_completed"])
                .await;
            let id = webhook["id"].as_str().expect("id").to_owned();
            let events = 20;
            for n in 0..events {
                let res = s
                    .client
                    .post(s.url("/api/v1/events"))
                    .bearer_auth(&s.events_token)
                    .json(&json!({"event": "course_completed", "data": {"user_id": n}}))
                    .send()
                    .await
                    .expect("event");
                assert_eq!(res.status(), 202);
            }
            // The Test button's ping counts too.
            let test = s
                .manage(
                    reqwest::Method::POST,
                    &format!("/api/v1/webhooks/{id}/test"),
                )
                .send()
                .await
                .expect("test");
            assert!(
                test.status().is_success(),
                "{}",
                test.text().await.unwrap_or_default()
            );
            wait_settled(&s, &id, events + 1).await;

            let attempts = logged_attempts(&s, &id).await;
            assert!(attempts.len() > events, "retries happened: {attempts:?}");
            assert!(attempts.iter().any(|a| !a.1) && attempts.iter().any(|a| a.2 >= 180));
            // The counters are written within a second of the attempts.
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                let day = s.get_json(&format!("/api/v1/webhooks/{id}/stats")).await;
                if day["data"]["attempts"].as_u64() == Some(attempts.len() as u64) {
                    break;
                }
                assert!(Instant::now() < deadline, "stats never caught up: {day}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            for (window, hours) in [("24h", 24), ("7d", 168)] {
                let now = Timestamp::now().millis();
                let body = s
                    .get_json(&format!("/api/v1/webhooks/{id}/stats?window={window}"))
                    .await;
                let stats = &body["data"];
                assert_eq!(stats["window"], window);
                assert_eq!(stats["webhook_id"], id.as_str());
                assert_eq!(
                    stats["hours"].as_array().map(Vec::len),
                    Some(hours as usize)
                );
                assert_eq!(
                    observed(stats),
                    expected(&attempts, now, hours),
                    "{window}: {body}"
                );
            }
            // The default window is the day.
            let default = s.get_json(&format!("/api/v1/webhooks/{id}/stats")).await;
            assert_eq!(default["data"]["window"], "24h");
        })
        .await;
    }
);

both_backends!(stats_refuse_what_they_cannot_answer, |backend| async move {
    with_server(backend, delivery_settings(Plan::Free), |s| async move {
        let rx = Receiver::start().await;
        let webhook = s.create_webhook(&rx.url("/x"), &["course_completed"]).await;
        let id = webhook["id"].as_str().expect("id").to_owned();
        // On Free too, and an idle webhook has an empty window, not an error.
        let idle = s.get_json(&format!("/api/v1/webhooks/{id}/stats")).await;
        assert_eq!(idle["data"]["attempts"], 0);
        assert_eq!(idle["data"]["success_rate"], Value::Null);
        assert_eq!(idle["data"]["p95_ms"], Value::Null);

        let bad = s
            .manage(
                reqwest::Method::GET,
                &format!("/api/v1/webhooks/{id}/stats?window=30d"),
            )
            .send()
            .await
            .expect("request");
        assert_eq!(bad.status(), 422);
        let problem: Value = bad.json().await.expect("problem");
        assert_eq!(problem["errors"][0]["field"], "window", "{problem}");

        let missing = s
            .manage(
                reqwest::Method::GET,
                "/api/v1/webhooks/wh_01HZZZZZZZZZZZZZZZZZZZZZZZ/stats",
            )
            .send()
            .await
            .expect("request");
        assert_eq!(missing.status(), 404);

        let narrow = s
            .client
            .get(s.url(&format!("/api/v1/webhooks/{id}/stats")))
            .bearer_auth(&s.events_token)
            .send()
            .await
            .expect("request");
        assert_eq!(narrow.status(), 403);
        let anonymous = s
            .client
            .get(s.url(&format!("/api/v1/webhooks/{id}/stats")))
            .send()
            .await
            .expect("request");
        assert_eq!(anonymous.status(), 401);
    })
    .await;
});

fn record(webhook: WebhookId, at: i64, delivered: bool, duration_ms: i64) -> AttemptRecord {
    AttemptRecord {
        delivery_id: DeliveryId::generate(),
        webhook_id: webhook,
        number: 1,
        started_at: Timestamp::from_millis(at),
        outcome: AttemptOutcome {
            status_code: Some(if delivered { 200 } else { 503 }),
            error_kind: (!delivered).then_some(ErrorKind::HttpStatus),
            error: None,
            response_excerpt: None,
            retry_after_secs: None,
            duration_ms,
            request_headers: None,
            response_headers: None,
        },
        next: if delivered {
            NextStep::Delivered
        } else {
            NextStep::GiveUp
        },
        ordering_key: None,
        take_next: false,
        refill: false,
    }
}

/// An hour's counters as (hour − base, attempts, failures, [(bucket, count)]).
type HourShape = (i64, i64, i64, Vec<(usize, i64)>);

both_backends!(
    counters_are_kept_per_hour_pruned_and_deleted,
    |backend| async move {
        let db = TestDb::create(backend).await;
        let store = Store::open(&db.target).await.expect("open");
        store.migrate().await.expect("migrate");
        let rules = FailureRules {
            failed_after_ms: 24 * HOUR_MS,
            probe_interval_ms: 60_000,
        };
        let base = 1_800_000_000_000_i64.div_euclid(HOUR_MS) * HOUR_MS;
        let (a, b) = (WebhookId::generate(), WebhookId::generate());
        for id in [a, b] {
            store
                .insert_webhook(
                    &NewWebhook {
                        id,
                        url: "https://receiver.example/hook".into(),
                        events: vec!["course_completed".into()],
                        secret_ciphertext: vec![1; 8],
                        headers_ciphertext: None,
                        throttle: None,
                        format: Default::default(),
                        template: None,
                        ordering: Default::default(),
                        now: Timestamp::from_millis(base),
                    },
                    None,
                )
                .await
                .expect("insert");
        }
        // Two batches into the same hours add up; one batch spans three hours and two webhooks.
        let batches = [
            vec![
                record(a, base - 3 * HOUR_MS + 5, true, 4),
                record(a, base + 10, false, 900),
                record(b, base + 20, true, 1),
            ],
            vec![
                record(a, base + 30, true, 4),
                record(a, base + HOUR_MS - 1, true, 12),
            ],
        ];
        for batch in &batches {
            store
                .record_attempts(batch, rules, Timestamp::from_millis(base + 60), None)
                .await
                .expect("record");
        }
        // Counted in memory until flushed (every second by the engine); one write for both.
        assert!(store
            .webhook_stats(a, base - 10 * HOUR_MS)
            .await
            .expect("stats")
            .is_empty());
        assert_eq!(store.flush_stats().await.expect("flush"), 3);
        assert_eq!(store.flush_stats().await.expect("nothing left"), 0);
        let rows = store
            .webhook_stats(a, base - 10 * HOUR_MS)
            .await
            .expect("stats");
        let mut shape: Vec<HourShape> = rows
            .iter()
            .map(|c| {
                let buckets = c
                    .durations
                    .iter()
                    .enumerate()
                    .filter(|(_, n)| **n > 0)
                    .map(|(i, n)| (i, *n))
                    .collect();
                (c.hour - base, c.attempts, c.failures, buckets)
            })
            .collect();
        shape.sort();
        // 4 ms → bucket 3 (≤ 5), 12 ms → bucket 6 (≤ 15), 900 ms → bucket 17 (≤ 1 s).
        assert_eq!(
            shape,
            vec![
                (-3 * HOUR_MS, 1, 0, vec![(3, 1)]),
                (0, 3, 1, vec![(3, 1), (6, 1), (17, 1)]),
            ]
        );
        // Only the hours asked for.
        assert_eq!(store.webhook_stats(a, base).await.expect("stats").len(), 1);
        let all = store
            .all_webhook_stats(base - 10 * HOUR_MS)
            .await
            .expect("all");
        assert_eq!(all.len(), 2);
        assert_eq!(all[&b].iter().map(|c| c.attempts).sum::<i64>(), 1);

        // Eight days later the older hour goes, the other stays until its own eight days pass.
        let pruned = store
            .prune_stats(Timestamp::from_millis(base + 8 * 24 * HOUR_MS - HOUR_MS))
            .await
            .expect("prune");
        assert!(pruned >= 1, "pruned {pruned}");
        let left = store.webhook_stats(a, 0).await.expect("stats");
        assert_eq!(left.iter().map(|c| c.hour).collect::<Vec<_>>(), vec![base]);

        // A deleted webhook's counters go with it.
        store
            .update_webhook(
                b,
                &lwh_storage::WebhookChanges {
                    status: Some(WebhookStatus::Disabled),
                    ..Default::default()
                },
                Timestamp::from_millis(base),
            )
            .await
            .expect("disable");
        assert!(store.delete_webhook(b).await.expect("delete"));
        assert!(store.webhook_stats(b, 0).await.expect("stats").is_empty());
        store.close().await;
        db.drop_all().await;
    }
);
