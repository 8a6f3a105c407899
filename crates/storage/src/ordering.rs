//! Ordered delivery per key ([`lwh_domain::ordering`]): the statements that place a keyed
//! delivery in its key's line at ingestion, make the next one due when one finishes, and
//! release a webhook's lines when it stops being `by_key`.
//!
//! A waiting delivery has the stored status `waiting` and no due time (claims never see it,
//! nor scan past it) and an `ordering_key`; `deliveries_by_key` indexes only unfinished keyed
//! deliveries. Placing and
//! releasing must not interleave for one key: on SQLite the writer thread runs one
//! transaction at a time; on PostgreSQL both take a transaction-scoped advisory lock per
//! (webhook, key) first, in ascending order so they cannot deadlock ([`lock_keys_sql`]).

use lwh_domain::ordering::DeliveryOrder;
use lwh_domain::{Timestamp, WebhookId};

use crate::connect::{Store, WriteTx};
use crate::error::StoreError;

/// The stored status of a delivery waiting behind an earlier one of its line (shown as
/// `pending`, with `waiting`).
pub(crate) const WAITING: &str = "waiting";

/// The condition of `deliveries_by_key` after `ordering_key IS NOT NULL`: the delivery is
/// unfinished. SQLite uses a partial index only for a statement that repeats its condition
/// in the same form, and builds a temporary B-tree for an `IN` list of three values each
/// time it evaluates one (for the old and the new row of every write of a keyed delivery):
/// ORs are compared in place (migration 0014). PostgreSQL proves its own index (`IN`) from
/// them.
macro_rules! unfinished {
    () => {
        "(status = 'pending' OR status = 'retrying' OR status = 'waiting')"
    };
    ($alias:literal) => {
        concat!(
            "(",
            $alias,
            ".status = 'pending' OR ",
            $alias,
            ".status = 'retrying' OR ",
            $alias,
            ".status = 'waiting')"
        )
    };
}

/// The highest number among key $2's unfinished deliveries at webhook $1 (NULL: the key is
/// free).
pub(crate) const LAST_OF_KEY: &str = concat!(
    "SELECT MAX(ordering_seq) AS last FROM deliveries \
     WHERE webhook_id = $1 AND ordering_key = $2 AND ordering_key IS NOT NULL AND ",
    unfinished!()
);

/// Makes the first unfinished delivery of key $2 at webhook $1 pending if it is waiting (run
/// after one of the key finished; a no-op when the first is already due or in flight): claimed
/// at once by worker $4 until $5 when one is named and the webhook is Active and unthrottled —
/// the worker that sent its predecessor sends it next, with no claim — else due at $3.
pub(crate) const RELEASE_NEXT: &str = concat!(
    "UPDATE deliveries SET status = 'pending', \
     due_at = CASE WHEN $4 IS NOT NULL AND EXISTS (SELECT 1 FROM webhooks WHERE id = $1 \
       AND status = 'active' AND max_per_second IS NULL) THEN $5 ELSE $3 END, \
     claimed_by = CASE WHEN $4 IS NOT NULL AND EXISTS (SELECT 1 FROM webhooks WHERE id = $1 \
       AND status = 'active' AND max_per_second IS NULL) THEN $4 ELSE NULL END, \
     updated_at = $3 \
     WHERE id = (SELECT id FROM deliveries WHERE webhook_id = $1 AND ordering_key = $2 \
       AND ordering_key IS NOT NULL AND ",
    unfinished!(),
    " ORDER BY ordering_seq LIMIT 1) \
     AND status = 'waiting' \
     RETURNING id, event_id, attempts, series_start, ordering_key, claimed_by"
);

/// How many deliveries wait behind an earlier one of their line, everywhere (the partial
/// index holds them, among the unfinished keyed ones only).
pub(crate) const COUNT_WAITING: &str = concat!(
    "SELECT COUNT(*) AS n FROM deliveries WHERE ordering_key IS NOT NULL AND ",
    unfinished!(),
    " AND status = 'waiting'"
);

/// Who takes the deliveries a recorded batch releases from their lines: the recording
/// process's worker, until the end of a lease.
#[derive(Debug, Clone)]
pub struct SuccessorClaim {
    /// The worker's claim owner id.
    pub owner: String,
    /// End of the lease.
    pub lease_until: Timestamp,
}

/// Webhook $1 is no longer `by_key`: every waiting delivery is pending and due at $2, and no
/// delivery of it belongs to a line any more.
const LEAVE_LINES: &str = concat!(
    "UPDATE deliveries SET \
     due_at = CASE WHEN status = 'waiting' THEN $2 ELSE due_at END, \
     status = CASE WHEN status = 'waiting' THEN 'pending' ELSE status END, \
     ordering_key = NULL, ordering_seq = NULL \
     WHERE webhook_id = $1 AND ordering_key IS NOT NULL AND ",
    unfinished!()
);

/// Waiting deliveries that head their line (the one they waited for was deleted by retention,
/// say) are made pending and due at $1. A safety net run with retention; the recorder's
/// release is the normal path.
const RELEASE_STRANDED: &str = concat!(
    "UPDATE deliveries SET status = 'pending', due_at = $1, \
     updated_at = $1 \
     WHERE id IN (SELECT d.id FROM deliveries d WHERE d.ordering_key IS NOT NULL AND ",
    unfinished!("d"),
    " AND d.status = 'waiting' \
       AND NOT EXISTS (SELECT 1 FROM deliveries e WHERE e.webhook_id = d.webhook_id \
         AND e.ordering_key = d.ordering_key AND e.ordering_key IS NOT NULL AND ",
    unfinished!("e"),
    " AND e.ordering_seq < d.ordering_seq)) \
     AND status = 'waiting'"
);

/// The advisory-lock class of key lines (PostgreSQL), beside webhook creation's 727001.
const KEY_LOCK_CLASS: i32 = 727_002;

/// A stable 32-bit number for (webhook, key), the same in every process and build (FNV-1a):
/// two keys sharing one only take turns, which costs nothing in correctness.
pub(crate) fn key_lock(webhook: WebhookId, key: &str) -> i32 {
    let mut hash: u32 = 0x811c_9dc5;
    let webhook = webhook.to_string();
    for byte in webhook.bytes().chain([0]).chain(key.bytes()) {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash as i32
}

/// One statement taking the advisory locks of `locks` (PostgreSQL), smallest first, each
/// once; `None` when there is none. The numbers are ours (hashes), never client text.
pub(crate) fn lock_keys_sql(mut locks: Vec<i32>) -> Option<String> {
    locks.sort_unstable();
    locks.dedup();
    if locks.is_empty() {
        return None;
    }
    let values = locks
        .iter()
        .map(|l| format!("({l})"))
        .collect::<Vec<_>>()
        .join(", ");
    Some(format!(
        "SELECT pg_advisory_xact_lock({KEY_LOCK_CLASS}, k) FROM \
         (SELECT k FROM (VALUES {values}) AS v(k) ORDER BY k) AS sorted"
    ))
}

impl Store {
    /// Applies a change of a webhook's delivery order inside its edit: leaving `by_key`
    /// releases every waiting delivery at once (nothing waits for an order no longer kept).
    /// Deliveries queued before a webhook became `by_key` stay unordered.
    pub(crate) async fn set_ordering_in(
        &self,
        tx: &mut WriteTx,
        id: WebhookId,
        ordering: DeliveryOrder,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query(
            self.backend
                .sql("UPDATE webhooks SET ordering = $2 WHERE id = $1"),
        )
        .bind(id.to_string())
        .bind(ordering.as_str())
        .execute(&mut **tx)
        .await?;
        if ordering == DeliveryOrder::Unordered {
            sqlx::query(self.backend.sql(LEAVE_LINES))
                .bind(id.to_string())
                .bind(now.millis())
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// Makes due every waiting delivery that nothing is ahead of any more; returns how many.
    /// Run by the retention loop, after pruning.
    pub async fn release_stranded(&self, now: Timestamp) -> Result<u64, StoreError> {
        let done = sqlx::query(self.backend.sql(RELEASE_STRANDED))
            .bind(now.millis())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::Backend;
    use crate::test_schema::sqlite_schema;

    /// SQLite's plan for `sql`, one step per line.
    fn plan(db: &rusqlite::Connection, sql: &'static str, params: impl rusqlite::Params) -> String {
        let mut plan = db
            .prepare(&format!("EXPLAIN QUERY PLAN {}", Backend::Sqlite.sql(sql)))
            .unwrap();
        let steps: Vec<String> = plan
            .query_map(params, |r| r.get(3))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        steps.join("\n")
    }

    #[test]
    fn reading_and_releasing_a_line_search_its_partial_index() {
        let db = sqlite_schema();
        for plan in [
            plan(&db, LAST_OF_KEY, rusqlite::params!["w", "k"]),
            plan(&db, RELEASE_NEXT, rusqlite::params!["w", "k", 0, "me", 1]),
        ] {
            assert!(plan.contains("INDEX deliveries_by_key ("), "{plan}");
            assert!(!plan.contains("SCAN deliveries"), "{plan}");
        }
    }

    #[test]
    fn leaving_repairing_and_counting_lines_search_the_partial_index_too() {
        let db = sqlite_schema();
        let leave = plan(&db, LEAVE_LINES, rusqlite::params!["w", 0]);
        assert!(leave.contains("INDEX deliveries_by_key ("), "{leave}");
        let stranded = plan(&db, RELEASE_STRANDED, rusqlite::params![0]);
        assert!(
            stranded.contains("INDEX deliveries_by_key"),
            "the safety net reads unfinished keyed deliveries only: {stranded}"
        );
        let waiting = plan(&db, COUNT_WAITING, rusqlite::params![]);
        assert!(
            waiting.contains("INDEX deliveries_by_key"),
            "the metrics count reads unfinished keyed deliveries only: {waiting}"
        );
    }

    /// Whether SQLite's program for `sql` builds a temporary B-tree.
    fn opens_ephemeral(
        db: &rusqlite::Connection,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> bool {
        let mut program = db.prepare(&format!("EXPLAIN {sql}")).unwrap();
        let ops: Vec<String> = program
            .query_map(params, |r| r.get(1))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        ops.iter().any(|op| op == "OpenEphemeral")
    }

    #[test]
    fn writing_a_keyed_delivery_checks_the_partial_index_without_a_temporary_btree() {
        // The index's condition is evaluated for every insert and update of a delivery; an
        // `IN` list of three values there cost a temporary B-tree each time (migration 0014).
        let db = sqlite_schema();
        let insert = format!(
            "{}(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            crate::ingest::DELIVERIES_INSERT
        );
        assert!(!opens_ephemeral(
            &db,
            &insert,
            rusqlite::params!["d", "w", "e", 0, "me", 0, 0, "k", 1, "waiting"]
        ));
        let delivered = format!(
            "{} WHERE id = ?3 AND status IN ('pending', 'retrying')",
            Backend::Sqlite.sql(crate::attempts::DELIVERED)
        );
        assert!(!opens_ephemeral(
            &db,
            &delivered,
            rusqlite::params![200, 0, "d"]
        ));
        assert!(!opens_ephemeral(
            &db,
            Backend::Sqlite.sql(crate::attempts::NOT_DELIVERED),
            rusqlite::params!["d", "retrying", 0, 500, "boom", 0]
        ));
    }

    #[test]
    fn a_finished_delivery_releases_the_next_of_its_line_only() {
        let db = sqlite_schema();
        let insert = |id: &str, key: &str, seq: i64, status: &str, due: Option<i64>| {
            db.execute(
                "INSERT INTO deliveries (id, webhook_id, event_id, status, due_at, created_at, \
                 updated_at, ordering_key, ordering_seq) VALUES (?1, 'w', 'e', ?2, ?3, 0, 0, ?4, ?5)",
                rusqlite::params![id, status, due, key, seq],
            )
            .unwrap();
        };
        insert("d1", "a", 1, "delivered", None);
        insert("d2", "a", 2, "waiting", None);
        insert("d3", "a", 3, "waiting", None);
        insert("d4", "b", 1, "retrying", Some(50));
        insert("d5", "b", 2, "waiting", None);
        let release = |key: &str, owner: Option<&str>| -> Vec<(String, Option<String>)> {
            db.prepare(Backend::Sqlite.sql(RELEASE_NEXT))
                .unwrap()
                .query_map(rusqlite::params!["w", key, 100, owner, 900], |r| {
                    Ok((r.get(0)?, r.get(5)?))
                })
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        assert_eq!(
            release("a", None),
            [("d2".to_owned(), None)],
            "d2 heads line a now"
        );
        assert!(
            release("a", Some("me")).is_empty(),
            "d2 is due: d3 still waits"
        );
        assert!(
            release("b", Some("me")).is_empty(),
            "d4 is unfinished: d5 waits"
        );
        db.execute(
            "UPDATE deliveries SET status = 'delivered' WHERE id = 'd4'",
            [],
        )
        .unwrap();
        assert_eq!(
            release("b", Some("me")),
            [("d5".to_owned(), Some("me".to_owned()))],
            "an Active webhook's next delivery is claimed by the worker named"
        );
        let due: Vec<(String, String, Option<i64>)> = db
            .prepare("SELECT id, status, due_at FROM deliveries ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let due: Vec<(&str, &str, Option<i64>)> = due
            .iter()
            .map(|(i, s, d)| (i.as_str(), s.as_str(), *d))
            .collect();
        assert_eq!(
            due,
            [
                ("d1", "delivered", None),
                ("d2", "pending", Some(100)),
                ("d3", "waiting", None),
                ("d4", "delivered", Some(50)),
                ("d5", "pending", Some(900))
            ]
        );
        let last: Option<i64> = db
            .query_row(Backend::Sqlite.sql(LAST_OF_KEY), ["w", "a"], |r| r.get(0))
            .unwrap();
        assert_eq!(last, Some(3), "the line's end, finished ones left out");
    }

    #[test]
    fn key_locks_are_stable_and_taken_in_ascending_order_once() {
        let w: WebhookId = "wh_01JDQ8V3W4X5Y6Z7A8B9C0D1E2".parse().unwrap();
        assert_eq!(key_lock(w, "user:7"), key_lock(w, "user:7"));
        assert_ne!(key_lock(w, "user:7"), key_lock(w, "user:8"));
        let sql = lock_keys_sql(vec![5, -3, 5, 2]).unwrap();
        assert!(sql.contains("VALUES (-3), (2), (5)"), "{sql}");
        assert!(lock_keys_sql(Vec::new()).is_none());
    }
}
