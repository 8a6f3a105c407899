//! Upgrading an existing SQLite database: what an older release stored survives the
//! migrations added since (0002 rebuilds events, deliveries and attempts).

use lwh_domain::Timestamp;
use lwh_storage::{DatabaseTarget, Store};
use sqlx::Connection;

/// A database as release 0.1 left it (migration 0001 only): an event, a queued delivery and a
/// finished one with its attempt.
async fn database_at_0001(path: &std::path::Path) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/crates/storage/migrations/sqlite/0001_initial.sql"
        ),
        dir.path().join("0001_initial.sql"),
    )
    .expect("copy 0001");
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let mut conn = sqlx::SqliteConnection::connect(&url)
        .await
        .expect("connect");
    let first = sqlx::migrate::Migrator::new(dir.path())
        .await
        .expect("migrator");
    first.run(&mut conn).await.expect("0001");
    for sql in [
        "INSERT INTO webhooks (id, url, secret_ciphertext, status, status_changed_at, created_at, updated_at) \
         VALUES ('wh_01JDZ0000000000000000000AA', 'https://example.org/hook', x'00', 'active', 1, 1, 1)",
        "INSERT INTO events (id, event, payload, deliveries, created_at) \
         VALUES ('evt_01JDZ0000000000000000000AA', 'course_completed', x'7b7d', 2, 1)",
        "INSERT INTO deliveries (id, webhook_id, event_id, status, due_at, created_at, updated_at) \
         VALUES ('dlv_01JDZ0000000000000000000AA', 'wh_01JDZ0000000000000000000AA', 'evt_01JDZ0000000000000000000AA', 'pending', 5, 1, 1)",
        "INSERT INTO deliveries (id, webhook_id, event_id, status, attempts, due_at, last_status_code, created_at, updated_at) \
         VALUES ('dlv_01JDZ0000000000000000000AB', 'wh_01JDZ0000000000000000000AA', 'evt_01JDZ0000000000000000000AA', 'delivered', 1, NULL, 204, 1, 2)",
        "INSERT INTO attempts (delivery_id, number, started_at, duration_ms, status_code) \
         VALUES ('dlv_01JDZ0000000000000000000AB', 1, 2, 3, 204)",
    ] {
        sqlx::query(sql).execute(&mut conn).await.expect(sql);
    }
    conn.close().await.expect("close");
}

#[tokio::test]
async fn deliveries_stored_by_an_older_release_survive_the_upgrade() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("old.db");
    database_at_0001(&path).await;

    let store = Store::open(&DatabaseTarget::Sqlite(path))
        .await
        .expect("open");
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
    store.close().await;
}
