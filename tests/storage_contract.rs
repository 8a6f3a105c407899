//! The two storage backends against one contract: the same fixture — webhooks in every status,
//! ingestion with idempotency keys and a hand-over, claims, a batch of attempt results that
//! delivers, retries, gives up and makes a webhook Failed, status changes that hold, cancel and
//! release — runs through SQLite and through PostgreSQL, and the rows each leaves behind must be
//! the same. The backends' hot paths are separate code (SQLite's writer thread, PostgreSQL's
//! statements); this is what says they agree.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use common::TestDb;
use lwh_domain::throttle::Throttle;
use lwh_domain::{
    AttemptOutcome, ErrorKind, EventId, NextStep, Timestamp, WebhookId, WebhookStatus,
};
use lwh_storage::{
    AttemptRecord, Backend, DatabaseTarget, FailureRules, IngestClaim, NewEvent, NewWebhook,
    PacedClaim, Store, WebhookChanges,
};
use sqlx::{Connection, Row};

/// Fixed ids, so the two runs can be compared row for row.
fn webhook_id(n: u128) -> WebhookId {
    format!("wh_{}", ulid::Ulid::from_parts(1_700_000_000_000, n))
        .parse()
        .expect("webhook id")
}

fn event_id(n: u128) -> EventId {
    format!("evt_{}", ulid::Ulid::from_parts(1_700_000_000_000, n))
        .parse()
        .expect("event id")
}

fn at(ms: i64) -> Timestamp {
    Timestamp::from_millis(1_700_000_000_000 + ms)
}

fn event(n: u128, slug: &str, key: Option<&str>) -> NewEvent {
    NewEvent {
        id: event_id(n),
        slug: slug.to_owned(),
        payload: Arc::from(format!("{{\"n\":{n}}}").into_bytes()),
        idempotency_key: key.map(str::to_owned),
        about: None,
        ordering_key: None,
    }
}

fn outcome(code: Option<u16>, kind: Option<ErrorKind>, retry_after: Option<u64>) -> AttemptOutcome {
    AttemptOutcome {
        status_code: code,
        error_kind: kind,
        error: kind.map(|k| format!("failed: {}", k.as_str())),
        response_excerpt: code.map(|c| format!("answer {c}")),
        retry_after_secs: retry_after,
        duration_ms: 7,
        request_headers: Some("content-type: application/json\nwebhook-id: evt_1".into()),
        response_headers: code.map(|c| format!("content-length: 0\nx-answer: {c}")),
    }
}

async fn set_status(store: &Store, id: WebhookId, status: WebhookStatus, now: Timestamp) {
    let changes = WebhookChanges {
        status: Some(status),
        ..WebhookChanges::default()
    };
    store
        .update_webhook(id, &changes, now)
        .await
        .expect("status");
}

/// The fixture, run on one backend; returns every row it left, as text.
async fn run(backend: Backend) -> Vec<String> {
    let db = TestDb::create(backend).await;
    let store = Store::open(&db.target).await.expect("open");
    store.migrate().await.expect("migrate");
    let rules = FailureRules {
        failed_after_ms: 60_000,
        probe_interval_ms: 5_000,
    };

    // Four webhooks: two active, one held then released, one held then disabled.
    let (active, gone, paused, disabled) =
        (webhook_id(1), webhook_id(2), webhook_id(3), webhook_id(4));
    for (n, id) in [active, gone, paused, disabled].into_iter().enumerate() {
        store
            .insert_webhook(
                &NewWebhook {
                    id,
                    url: format!("https://receiver-{n}.example/hook"),
                    events: vec!["course_completed".into(), "quiz_passed".into()],
                    secret_ciphertext: vec![n as u8; 8],
                    headers_ciphertext: None,
                    throttle: None,
                    format: Default::default(),
                    template: None,
                    ordering: Default::default(),
                    now: at(0),
                },
                Some(10),
            )
            .await
            .expect("insert webhook");
    }
    // Both held from the start; the second is disabled once it holds deliveries.
    for id in [paused, disabled] {
        set_status(&store, id, WebhookStatus::Paused, at(10)).await;
    }

    // Ingestion: two events, a repeat of the first one's key, an event nobody wants; then one
    // handed over to a worker with a free slot for `active`.
    let outcomes = store
        .ingest_claiming(
            &[
                event(1, "course_completed", Some("key-1")),
                event(2, "quiz_passed", None),
                event(3, "course_completed", Some("key-1")),
                event(4, "course_deleted", None),
            ],
            at(20),
            None,
        )
        .await
        .expect("ingest");
    let said: Vec<(String, u64, bool)> = outcomes
        .outcomes
        .iter()
        .map(|o| (o.event_id.to_string(), o.deliveries, o.duplicate))
        .collect();
    let claim = IngestClaim {
        owner: "wrk_handover".into(),
        lease_until: at(90_000),
        // A worker reserved one slot, for `active`.
        slots: HashMap::from([(active, 1)]),
    };
    let handed = store
        .ingest_claiming(&[event(5, "quiz_passed", None)], at(30), Some(&claim))
        .await
        .expect("ingest with a hand-over");
    assert_eq!(handed.claimed.len(), 1, "one slot, one hand-over");
    assert_eq!(handed.claimed[0].webhook_id, active);
    assert_eq!(
        handed.queued,
        vec![gone],
        "the other Active subscriber had no slot: its delivery waits in the queue"
    );

    // Claims: everything due for the two active webhooks (paused and disabled give nothing).
    let mut claimed = Vec::new();
    for id in [active, gone, paused, disabled] {
        claimed.extend(
            store
                .claim_due(id, 10, "wrk_claims", at(40), at(60_000))
                .await
                .expect("claim"),
        );
    }
    claimed.extend(handed.claimed.iter().cloned());
    claimed.sort_by_key(|d| (d.webhook_id, d.event_id));

    // One batch of results: for `active`, delivered / retry after a 503 / given up; for `gone`,
    // a 410 on its first delivery (it becomes Failed at once) and a timeout on its second.
    let mut records = Vec::new();
    let mut active_seen = 0;
    for d in &claimed {
        let (result, next) = if d.webhook_id == active {
            active_seen += 1;
            match active_seen {
                1 => (outcome(Some(204), None, None), NextStep::Delivered),
                2 => (
                    outcome(Some(503), Some(ErrorKind::HttpStatus), Some(30)),
                    NextStep::RetryAt(at(70_000)),
                ),
                _ => (
                    outcome(None, Some(ErrorKind::Connect), None),
                    NextStep::GiveUp,
                ),
            }
        } else if d.event_id == event_id(1) {
            (
                outcome(Some(410), Some(ErrorKind::HttpStatus), None),
                NextStep::RetryAt(at(65_000)),
            )
        } else {
            (
                outcome(None, Some(ErrorKind::Timeout), None),
                NextStep::RetryAt(at(66_000)),
            )
        };
        records.push(AttemptRecord {
            delivery_id: d.id,
            webhook_id: d.webhook_id,
            number: d.attempts + 1,
            started_at: at(50),
            outcome: result,
            next,
            ordering_key: None,
            take_next: false,
            refill: false,
        });
    }
    let became_failed = store
        .record_attempts(&records, rules, at(100), None)
        .await
        .expect("record")
        .became_failed;

    // Status changes after: one held webhook is released, the other disabled (its held
    // deliveries are cancelled) and then re-activated (they stay cancelled).
    for (id, status) in [
        (paused, WebhookStatus::Active),
        (disabled, WebhookStatus::Disabled),
        (disabled, WebhookStatus::Active),
    ] {
        set_status(&store, id, status, at(200)).await;
    }

    let mut rows = vec![
        format!("ingest said {said:?}"),
        format!(
            "handed over {:?}",
            handed
                .claimed
                .iter()
                .map(|d| (d.webhook_id.to_string(), d.event_id.to_string()))
                .collect::<Vec<_>>()
        ),
        format!("became failed {became_failed:?}"),
    ];
    store.close().await;
    rows.extend(dump(&db.target).await);
    db.drop_all().await;
    rows
}

/// Every row the fixture touches, as text, with delivery ids (generated at ingestion) replaced
/// by their (webhook, event) pair.
async fn dump(target: &DatabaseTarget) -> Vec<String> {
    const QUERIES: [&str; 6] = [
        "SELECT id, url, status, COALESCE(status_reason, '-') AS a, status_changed_at AS b, \
         COALESCE(failing_since, -1) AS c, failures_since_success AS d, \
         COALESCE(next_probe_at, -1) AS e, COALESCE(last_triggered_at, -1) AS f \
         FROM webhooks ORDER BY id",
        "SELECT event, webhook_id, position FROM webhook_events ORDER BY webhook_id, position",
        "SELECT id, event, COALESCE(idempotency_key, '-') AS a, deliveries, created_at \
         FROM events ORDER BY id",
        "SELECT d.webhook_id || ' ' || d.event_id AS id, d.status, d.attempts, d.series_start, \
         COALESCE(d.due_at, -1) AS a, COALESCE(d.claimed_by, '-') AS b, \
         COALESCE(d.last_status_code, -1) AS c, COALESCE(d.last_error, '-') AS e, \
         d.created_at, d.updated_at FROM deliveries d ORDER BY d.webhook_id, d.event_id",
        "SELECT d.webhook_id || ' ' || d.event_id AS id, a.number, a.started_at, a.duration_ms, \
         COALESCE(a.status_code, -1) AS c, COALESCE(a.error_kind, '-') AS k, \
         COALESCE(a.error, '-') AS e, COALESCE(a.response_excerpt, '-') AS x, \
         COALESCE(a.request_headers, '-') AS q, COALESCE(a.response_headers, '-') AS r \
         FROM attempts a JOIN deliveries d ON d.id = a.delivery_id \
         ORDER BY d.webhook_id, d.event_id, a.number",
        "SELECT 'stats ' || webhook_id AS id, hour, CAST(SUM(attempts) AS BIGINT) AS a, \
         CAST(SUM(failures) AS BIGINT) AS f, CAST(SUM(d04) AS BIGINT) AS d \
         FROM webhook_stats GROUP BY webhook_id, hour ORDER BY webhook_id, hour",
    ];
    let mut out = Vec::new();
    match target {
        DatabaseTarget::Sqlite(path) => {
            let url = format!("sqlite://{}", path.display());
            let mut conn = sqlx::SqliteConnection::connect(&url)
                .await
                .expect("connect");
            for sql in QUERIES {
                for row in sqlx::query(sql).fetch_all(&mut conn).await.expect(sql) {
                    out.push(
                        (0..row.len())
                            .map(|i| sqlite_text(&row, i))
                            .collect::<Vec<_>>()
                            .join(" | "),
                    );
                }
            }
        }
        DatabaseTarget::Postgres(url) => {
            let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
            for sql in QUERIES {
                for row in sqlx::query(sql).fetch_all(&mut conn).await.expect(sql) {
                    out.push(
                        (0..row.len())
                            .map(|i| pg_text(&row, i))
                            .collect::<Vec<_>>()
                            .join(" | "),
                    );
                }
            }
        }
    }
    out
}

fn sqlite_text(row: &sqlx::sqlite::SqliteRow, i: usize) -> String {
    row.try_get::<i64, _>(i)
        .map(|v| v.to_string())
        .or_else(|_| row.try_get::<String, _>(i))
        .unwrap_or_else(|e| panic!("column {i}: {e}"))
}

fn pg_text(row: &sqlx::postgres::PgRow, i: usize) -> String {
    row.try_get::<i64, _>(i)
        .map(|v| v.to_string())
        .or_else(|_| row.try_get::<String, _>(i))
        .unwrap_or_else(|e| panic!("column {i}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_and_postgresql_leave_the_same_rows() {
    let sqlite = run(Backend::Sqlite).await;
    let postgres = run(Backend::Postgres).await;
    // The fixture did what it is about, on SQLite (and so, by the comparison, on both).
    let all = sqlite.join("\n");
    for expected in [
        "became failed [",
        "| failed | the endpoint answered 410 Gone |",
        "| delivered | 1 |",
        "| retrying | 1 |",
        "webhook disabled",
        "| key-1 |",
        "stats wh_",
    ] {
        assert!(all.contains(expected), "{expected:?} not in:\n{all}");
    }
    let first_difference = sqlite
        .iter()
        .zip(&postgres)
        .position(|(a, b)| a != b)
        .map(|i| {
            format!(
                "row {i}:\n  sqlite:   {}\n  postgres: {}",
                sqlite[i], postgres[i]
            )
        });
    assert!(
        first_difference.is_none() && sqlite.len() == postgres.len(),
        "the backends differ ({} and {} rows); first difference: {}\nsqlite:\n{}\npostgres:\n{}",
        sqlite.len(),
        postgres.len(),
        first_difference.unwrap_or_default(),
        sqlite.join("\n"),
        postgres.join("\n")
    );
}

/// A throttled webhook's claims on one backend: the turns each claim gives out, what the
/// unpaced claim finds (nothing), and what two stores — two processes — sharing the database
/// claim side by side.
async fn paced_claims(backend: Backend) {
    let db = TestDb::create(backend).await;
    let store = Store::open(&db.target).await.expect("open");
    store.migrate().await.expect("migrate");
    let throttled = webhook_id(9);
    store
        .insert_webhook(
            &NewWebhook {
                id: throttled,
                url: "https://paced.example/hook".into(),
                events: vec!["quiz_passed".into()],
                secret_ciphertext: vec![9; 8],
                headers_ciphertext: None,
                throttle: Some(Throttle::new(10).expect("10/s")),
                format: Default::default(),
                template: None,
                ordering: Default::default(),
                now: at(0),
            },
            None,
        )
        .await
        .expect("insert webhook");
    let events: Vec<NewEvent> = (1..=15).map(|n| event(n, "quiz_passed", None)).collect();
    store
        .ingest_claiming(&events, at(0), None)
        .await
        .expect("ingest");
    let lease = Duration::from_secs(60);
    let turns = |claim: &PacedClaim| -> Vec<i64> {
        claim
            .claimed
            .iter()
            .map(|d| d.send_at.expect("a turn").millis() - at(0).millis())
            .collect()
    };

    // The unpaced claim takes nothing of a throttled webhook (a stale cached target).
    let unpaced = store
        .claim_due(throttled, 100, "wrk_a", at(0), at(60_000))
        .await
        .expect("claim");
    assert!(unpaced.is_empty(), "{unpaced:?}");

    // 10/s: the turns within a second, one every 100 ms, in creation order.
    let first = store
        .claim_paced(throttled, 100, "wrk_a", at(0), lease)
        .await
        .expect("paced claim");
    assert_eq!(turns(&first), (0..=10).map(|i| i * 100).collect::<Vec<_>>());
    assert_eq!(first.allowed, 11);
    assert_eq!(first.next_turn, at(1_100));
    // Turns go in delivery id (creation) order.
    let mut ids: Vec<_> = first.claimed.iter().map(|d| d.id).collect();
    ids.sort();
    assert_eq!(first.claimed.iter().map(|d| d.id).collect::<Vec<_>>(), ids);

    // At the same instant another process finds every turn within the horizon taken.
    let other = Store::open(&db.target).await.expect("second store");
    let none = other
        .claim_paced(throttled, 100, "wrk_b", at(0), lease)
        .await
        .expect("paced claim");
    assert_eq!((none.claimed.len(), none.allowed), (0, 0));
    // 200 ms later, two more turns are near: 1.1 s and 1.2 s.
    let next = other
        .claim_paced(throttled, 100, "wrk_b", at(200), lease)
        .await
        .expect("paced claim");
    assert_eq!(turns(&next), [1_100, 1_200]);
    // Free slots bound a claim too.
    let bounded = store
        .claim_paced(throttled, 1, "wrk_a", at(1_000), lease)
        .await
        .expect("paced claim");
    assert_eq!(turns(&bounded), [1_300]);
    // The last one; then the queue is dry: fewer claimed than allowed, the clock unmoved.
    let last = store
        .claim_paced(throttled, 100, "wrk_a", at(5_000), lease)
        .await
        .expect("paced claim");
    assert_eq!(turns(&last), [5_000]);
    let dry = store
        .claim_paced(throttled, 100, "wrk_a", at(5_000), lease)
        .await
        .expect("paced claim");
    assert!(dry.claimed.is_empty() && dry.allowed > 0, "{dry:?}");
    assert_eq!(dry.next_turn, at(5_100));

    // Processes claiming side by side never share a turn nor come closer than 100 ms.
    store
        .ingest_claiming(
            &(100..140)
                .map(|n| event(n, "quiz_passed", None))
                .collect::<Vec<_>>(),
            at(6_000),
            None,
        )
        .await
        .expect("ingest");
    let mut all_turns = Vec::new();
    for step in 0..5 {
        let now = at(6_000 + step * 250);
        let (a, b) = tokio::join!(
            store.claim_paced(throttled, 8, "wrk_a", now, lease),
            other.claim_paced(throttled, 8, "wrk_b", now, lease)
        );
        all_turns.extend(turns(&a.expect("a")));
        all_turns.extend(turns(&b.expect("b")));
    }
    all_turns.sort();
    assert!(all_turns.len() >= 20, "{all_turns:?}");
    assert!(
        all_turns.windows(2).all(|w| w[1] - w[0] >= 100),
        "{all_turns:?}"
    );

    // Removing the throttle makes the webhook's claims ordinary again.
    let changes = WebhookChanges {
        throttle: Some(None),
        ..WebhookChanges::default()
    };
    store
        .update_webhook(throttled, &changes, at(8_000))
        .await
        .expect("unthrottle");
    let freed = store
        .claim_due(throttled, 100, "wrk_a", at(8_000), at(60_000))
        .await
        .expect("claim");
    assert_eq!(freed.len(), 40 - all_turns.len());
    assert!(freed.iter().all(|d| d.send_at.is_none()));
    other.close().await;
    store.close().await;
    db.drop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_claims_share_one_clock_on_sqlite() {
    paced_claims(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_claims_share_one_clock_on_postgresql() {
    paced_claims(Backend::Postgres).await;
}

/// A webhook on `student_enrolled` with a made-up https URL, unthrottled, in this order.
async fn insert_plain_webhook(
    store: &Store,
    id: WebhookId,
    ordering: lwh_domain::ordering::DeliveryOrder,
) {
    store
        .insert_webhook(
            &NewWebhook {
                id,
                url: format!("https://hook-{id}.example/hook"),
                events: vec!["student_enrolled".into()],
                secret_ciphertext: vec![2; 8],
                headers_ciphertext: None,
                throttle: None,
                format: Default::default(),
                template: None,
                ordering,
                now: at(0),
            },
            None,
        )
        .await
        .expect("insert webhook");
}

/// Each claimed delivery's first attempt, delivered at 40 ms; `flags` gives each one's
/// (take_next, refill).
fn delivered(
    claimed: &[lwh_storage::ClaimedDelivery],
    flags: impl Fn(usize) -> (bool, bool),
) -> Vec<AttemptRecord> {
    claimed
        .iter()
        .enumerate()
        .map(|(i, d)| AttemptRecord {
            delivery_id: d.id,
            webhook_id: d.webhook_id,
            number: d.attempts + 1,
            started_at: at(40),
            outcome: outcome(Some(204), None, None),
            next: NextStep::Delivered,
            ordering_key: d.ordering_key.clone(),
            take_next: flags(i).0,
            refill: flags(i).1,
        })
        .collect()
}

/// Records `records` at 50 ms, what they release or refill claimed for worker `owner`.
async fn record_for(
    store: &Store,
    records: &[AttemptRecord],
    owner: &str,
) -> lwh_storage::Recorded {
    let worker = lwh_storage::SuccessorClaim {
        owner: owner.into(),
        lease_until: at(90_000),
    };
    store
        .record_attempts(
            records,
            FailureRules {
                failed_after_ms: 60_000,
                probe_interval_ms: 5_000,
            },
            at(50),
            Some(&worker),
        )
        .await
        .expect("record")
}

/// One batch of results at three webhooks with queued deliveries, on one backend, the results
/// asking for their slots to be refilled except one: the Active webhook's results get its next
/// due deliveries, oldest first, one per result that asked, claimed for the recording worker
/// in the same transaction; the Paused and the throttled webhooks' results get none. Returns
/// (refills as "webhook event claimed_by", the rows of deliveries not yet delivered).
async fn slots_refilled_by_one_batch(backend: Backend) -> (Vec<String>, Vec<String>) {
    let db = TestDb::create(backend).await;
    let store = Store::open(&db.target).await.expect("open");
    store.migrate().await.expect("migrate");
    let (active, paused, throttled) = (webhook_id(41), webhook_id(42), webhook_id(43));
    for id in [active, paused, throttled] {
        insert_plain_webhook(&store, id, Default::default()).await;
    }
    // Five events, each queued for all three webhooks, ingested milliseconds apart both in the
    // stored times and on the clock that orders delivery ids (so "oldest first" has one
    // answer); the first two of each webhook are claimed.
    for n in 1..=5 {
        store
            .ingest_claiming(
                &[event(50 + n, "student_enrolled", None)],
                at(10 + n as i64),
                None,
            )
            .await
            .expect("ingest");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let mut sent = Vec::new();
    for id in [active, paused, throttled] {
        sent.extend(
            store
                .claim_due(id, 2, "wrk_first", at(20), at(60_000))
                .await
                .expect("claim"),
        );
    }
    assert_eq!(sent.len(), 6, "{backend:?}: two claimed per webhook");
    set_status(&store, paused, WebhookStatus::Paused, at(30)).await;
    let changes = WebhookChanges {
        throttle: Some(Some(Throttle::new(5).expect("throttle"))),
        ..WebhookChanges::default()
    };
    store
        .update_webhook(throttled, &changes, at(30))
        .await
        .expect("throttle");
    // Every result asks for a refill but the Active webhook's second one.
    let records = delivered(&sent, |i| (false, i != 1));
    let recorded = record_for(&store, &records, "wrk_refill").await;
    assert!(recorded.successors.is_empty(), "no line in this batch");
    let refills: Vec<String> = recorded
        .refills
        .iter()
        .map(|d| {
            format!(
                "{} {} {}",
                d.webhook_id,
                d.event_id,
                String::from_utf8_lossy(&d.payload)
            )
        })
        .collect();
    store.close().await;
    let rows = dump(&db.target)
        .await
        .into_iter()
        .filter(|row| row.contains("| pending |"))
        .collect();
    db.drop_all().await;
    (refills, rows)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_refills_its_slot_from_its_webhooks_queue_on_both_backends() {
    let sqlite = slots_refilled_by_one_batch(Backend::Sqlite).await;
    let postgres = slots_refilled_by_one_batch(Backend::Postgres).await;
    let active = webhook_id(41);
    // One result of the Active webhook asked: it gets the oldest due delivery (event 53),
    // with its payload.
    assert_eq!(
        sqlite.0,
        vec![format!("{active} {} {{\"n\":53}}", event_id(53))],
        "refills"
    );
    // Event 53 of the Active webhook is leased to the recording worker; 54 and 55 stay due
    // and unclaimed, as do the three queued of the Paused and of the throttled webhook.
    let count = |needle: &str| sqlite.1.iter().filter(|r| r.contains(needle)).count();
    assert_eq!(count("| wrk_refill |"), 1, "{:#?}", sqlite.1);
    assert!(
        sqlite
            .1
            .iter()
            .any(|r| r.contains(&format!("{active} {}", event_id(53)))
                && r.contains("| wrk_refill |")),
        "{:#?}",
        sqlite.1
    );
    assert_eq!(count("| pending |"), 3 + 3 + 3, "{:#?}", sqlite.1);
    assert_eq!(sqlite, postgres, "the backends agree");
}

/// One batch of results finishing several key lines at two `by_key` webhooks, on one backend:
/// each line's next delivery is released — claimed for the recording worker where its webhook
/// is Active, made due where it is Paused — and the rest of each line keeps waiting. Returns
/// (claimed successors, webhooks reported released, the rows of unfinished deliveries).
async fn lines_released_by_one_batch(backend: Backend) -> (Vec<String>, Vec<String>, Vec<String>) {
    let db = TestDb::create(backend).await;
    let store = Store::open(&db.target).await.expect("open");
    store.migrate().await.expect("migrate");
    let (sending, paused) = (webhook_id(21), webhook_id(22));
    for id in [sending, paused] {
        let by_key = lwh_domain::ordering::DeliveryOrder::ByKey;
        insert_plain_webhook(&store, id, by_key).await;
    }
    // Three events for each of keys a and b, interleaved: each webhook gets two lines of three.
    let events: Vec<NewEvent> = (1..=6)
        .map(|n| NewEvent {
            ordering_key: Some(if n % 2 == 1 { "a" } else { "b" }.to_owned()),
            ..event(30 + n, "student_enrolled", None)
        })
        .collect();
    store
        .ingest_claiming(&events, at(10), None)
        .await
        .expect("ingest");
    // The heads are due: one claim per webhook takes both.
    let mut heads = Vec::new();
    for id in [sending, paused] {
        heads.extend(
            store
                .claim_due(id, 10, "wrk_first", at(20), at(60_000))
                .await
                .expect("claim"),
        );
    }
    assert_eq!(heads.len(), 4, "{backend:?}: one head per line: {heads:?}");
    set_status(&store, paused, WebhookStatus::Paused, at(30)).await;
    let records = delivered(&heads, |_| (true, false));
    let recorded = record_for(&store, &records, "wrk_lines").await;
    let mut successors: Vec<String> = recorded
        .successors
        .iter()
        .map(|d| format!("{} {} {:?}", d.webhook_id, d.event_id, d.ordering_key))
        .collect();
    successors.sort();
    let mut released: Vec<String> = recorded.released.iter().map(|w| w.to_string()).collect();
    released.sort();
    store.close().await;
    let lines = dump(&db.target)
        .await
        .into_iter()
        .filter(|row| row.contains("| pending |") || row.contains("| waiting |"))
        .collect();
    db.drop_all().await;
    (successors, released, lines)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_batch_releases_the_next_of_every_line_it_finishes_on_both_backends() {
    let sqlite = lines_released_by_one_batch(Backend::Sqlite).await;
    let postgres = lines_released_by_one_batch(Backend::Postgres).await;
    let (sending, paused) = (webhook_id(21).to_string(), webhook_id(22).to_string());
    // The Active webhook's two lines each hand their second event to the recording worker.
    assert_eq!(
        sqlite.0,
        vec![
            format!("{sending} {} Some(\"a\")", event_id(33)),
            format!("{sending} {} Some(\"b\")", event_id(34)),
        ],
        "successors"
    );
    // The Paused webhook's seconds are made due instead: its queue has work again.
    assert_eq!(sqlite.1, vec![paused], "released");
    // Every line's third event still waits; the seconds are pending, claimed (Active) or due
    // at the recording time (Paused).
    let count = |needle: &str| sqlite.2.iter().filter(|r| r.contains(needle)).count();
    assert_eq!(count("| waiting |"), 4, "{:#?}", sqlite.2);
    assert_eq!(count("| wrk_lines |"), 2, "{:#?}", sqlite.2);
    assert_eq!(
        count(&format!("| pending | 0 | 0 | {} | - |", at(50).millis())),
        2,
        "{:#?}",
        sqlite.2
    );
    assert_eq!(sqlite, postgres, "the backends agree");
}
