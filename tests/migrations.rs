//! Upgrading an existing database, on SQLite and on PostgreSQL: what an older release stored
//! survives the migrations added since.

mod common;

use common::TestDb;
use lwh_domain::stats::HOUR_MS;
use lwh_domain::Timestamp;
use lwh_storage::{Backend, DatabaseTarget, Store};
use sqlx::Connection;

/// A database as release 0.1 left it (migration 0001 only): an event, a queued delivery, a
/// finished one with its attempt long ago, and a failed one whose attempt was two hours ago.
async fn database_at_0001(backend: Backend) -> TestDb {
    let db = TestDb::create(backend).await;
    let folder = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    let blob = |hex: &str| match backend {
        Backend::Sqlite => format!("x'{hex}'"),
        Backend::Postgres => format!("decode('{hex}', 'hex')"),
    };
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        format!(
            "{}/crates/storage/migrations/{folder}/0001_initial.sql",
            env!("CARGO_MANIFEST_DIR")
        ),
        dir.path().join("0001_initial.sql"),
    )
    .expect("copy 0001");
    let first = sqlx::migrate::Migrator::new(dir.path())
        .await
        .expect("migrator");
    let rows = [
        format!("INSERT INTO webhooks (id, url, secret_ciphertext, status, status_changed_at, created_at, updated_at) \
         VALUES ('wh_01JDZ0000000000000000000AA', 'https://example.org/hook', {}, 'active', 1, 1, 1)", blob("00")),
        format!("INSERT INTO events (id, event, payload, deliveries, created_at) \
         VALUES ('evt_01JDZ0000000000000000000AA', 'course_completed', {}, 2, 1)", blob("7b7d")),
        "INSERT INTO deliveries (id, webhook_id, event_id, status, due_at, created_at, updated_at) \
         VALUES ('dlv_01JDZ0000000000000000000AA', 'wh_01JDZ0000000000000000000AA', 'evt_01JDZ0000000000000000000AA', 'pending', 5, 1, 1)".to_owned(),
        "INSERT INTO deliveries (id, webhook_id, event_id, status, attempts, due_at, last_status_code, created_at, updated_at) \
         VALUES ('dlv_01JDZ0000000000000000000AB', 'wh_01JDZ0000000000000000000AA', 'evt_01JDZ0000000000000000000AA', 'delivered', 1, NULL, 204, 1, 2)".to_owned(),
        "INSERT INTO attempts (delivery_id, number, started_at, duration_ms, status_code) \
         VALUES ('dlv_01JDZ0000000000000000000AB', 1, 2, 3, 204)".to_owned(),
        "INSERT INTO deliveries (id, webhook_id, event_id, status, attempts, due_at, last_status_code, created_at, updated_at) \
         VALUES ('dlv_01JDZ0000000000000000000AC', 'wh_01JDZ0000000000000000000AA', 'evt_01JDZ0000000000000000000AA', 'failed', 1, NULL, 503, 1, 2)".to_owned(),
        format!("INSERT INTO attempts (delivery_id, number, started_at, duration_ms, status_code, error_kind) \
         VALUES ('dlv_01JDZ0000000000000000000AC', 1, {}, 40, 503, 'http_status')", two_hours_ago()),
    ];
    match &db.target {
        DatabaseTarget::Sqlite(path) => {
            let url = format!("sqlite://{}?mode=rwc", path.display());
            let mut conn = sqlx::SqliteConnection::connect(&url)
                .await
                .expect("connect");
            first.run(&mut conn).await.expect("0001");
            for sql in &rows {
                sqlx::query(sql).execute(&mut conn).await.expect(sql);
            }
            conn.close().await.expect("close");
        }
        DatabaseTarget::Postgres(url) => {
            let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
            first.run(&mut conn).await.expect("0001");
            for sql in &rows {
                sqlx::query(sql).execute(&mut conn).await.expect(sql);
            }
            conn.close().await.expect("close");
        }
    }
    db
}

fn two_hours_ago() -> i64 {
    Timestamp::now().millis() - 2 * HOUR_MS
}

// Every migration since 0001 runs over existing data (SQLite's 0002 rebuilds events,
// deliveries and attempts; PostgreSQL's 0002 drops an index the log used).
both_backends!(
    deliveries_stored_by_an_older_release_survive_the_upgrade,
    |backend| async move {
        let db = database_at_0001(backend).await;
        let store = Store::open(&db.target).await.expect("open");
        store.migrate().await.expect("migrate");
        let (applied, known) = store.migration_status().await.expect("status");
        assert_eq!(applied as usize, known, "every migration applied");
        assert!(known >= 2);

        // The queued delivery is still claimable, the finished one is not.
        let webhook = "wh_01JDZ0000000000000000000AA".parse().expect("id");
        let claimed = store
            .claim_due(
                webhook,
                10,
                "wrk_test",
                Timestamp::from_millis(10),
                Timestamp::from_millis(1_000),
            )
            .await
            .expect("claim");
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].id.to_string(), "dlv_01JDZ0000000000000000000AA");
        assert_eq!(&*claimed[0].payload, b"{}");
        let finished = store
            .get_delivery("dlv_01JDZ0000000000000000000AB".parse().expect("id"))
            .await
            .expect("get")
            .expect("the finished delivery is kept");
        assert_eq!(finished.0.attempts, 1);
        assert_eq!(finished.2.len(), 1, "its attempt is kept");
        assert_eq!(finished.2[0].status_code, Some(204));
        // The log still lists both, newest first, unfiltered and filtered.
        let listed = store
            .list_deliveries(webhook, None, None, 10)
            .await
            .expect("log");
        assert_eq!(listed.len(), 3);
        let delivered = store
            .list_deliveries(
                webhook,
                Some(lwh_domain::DeliveryStatus::Delivered),
                None,
                10,
            )
            .await
            .expect("filtered log");
        assert_eq!(delivered.len(), 1);
        // The health counters were filled from the recent attempt (the old one is past the
        // longest window): one failed attempt of 40 ms (bucket ≤ 50 ms).
        let stats = store.webhook_stats(webhook, 0).await.expect("stats");
        assert_eq!(stats.len(), 1, "{stats:?}");
        assert_eq!(stats[0].hour, two_hours_ago().div_euclid(HOUR_MS) * HOUR_MS);
        assert_eq!((stats[0].attempts, stats[0].failures), (1, 1));
        assert_eq!(stats[0].durations[9], 1);
        store.close().await;
        db.drop_all().await;
    }
);
