//! SQLite's claims, on the writer thread (which holds the only write lock).

use std::time::Duration;

use lwh_domain::{Timestamp, WebhookId};
use rusqlite::OptionalExtension;

use crate::connect::Durability;
use crate::decode;
use crate::dialect::Backend;
use crate::error::StoreError;
use crate::queue::{ClaimedRow, PaceStep, PacedRows, MOVE_CLOCK, PACE};
use crate::sqlite::writer::SqliteWriter;

/// The same on SQLite, where the writer holds the only write lock and a queued delivery is in
/// two B-trees: pending ones are found in id (creation) order through the log index, passing
/// over the few in flight (leased, due later); retries through their partial due-time index.
/// Of the two candidate lists, the earliest due are claimed. `$throttle` tells which claim it
/// is: the ordinary one takes nothing of a throttled webhook (a cached target may not know yet
/// that it was throttled), the paced one nothing of an unthrottled one.
macro_rules! claim_sqlite {
    ($throttle:literal) => {
        concat!(
            "UPDATE deliveries SET due_at = $4, claimed_by = $5 WHERE id IN ( \
       SELECT id FROM ( \
         SELECT id, due_at FROM (SELECT id, due_at FROM deliveries WHERE webhook_id = $1 \
           AND status = 'pending' AND due_at <= $2 ORDER BY id LIMIT $3) \
         UNION ALL \
         SELECT id, due_at FROM (SELECT id, due_at FROM deliveries WHERE webhook_id = $1 \
           AND status = 'retrying' AND due_at <= $2 ORDER BY due_at LIMIT $3)) \
       WHERE EXISTS (SELECT 1 FROM webhooks WHERE id = $1 AND status = 'active' \
         AND max_per_second ",
            $throttle,
            ") ORDER BY due_at LIMIT $3) \
     RETURNING id, event_id, attempts, series_start, ordering_key"
        )
    };
}

/// The claim of an unthrottled webhook.
const CLAIM_SQLITE: &str = claim_sqlite!("IS NULL");
/// The claim of a throttled webhook, within its paced claim.
const CLAIM_PACED_SQLITE: &str = claim_sqlite!("IS NOT NULL");

/// Leases up to `limit` of `webhook`'s due deliveries to `owner` until `lease_until`.
pub(crate) async fn claim(
    writer: &SqliteWriter,
    webhook: WebhookId,
    limit: usize,
    owner: &str,
    now: Timestamp,
    lease_until: Timestamp,
) -> Result<Vec<ClaimedRow>, StoreError> {
    let owner = owner.to_owned();
    writer
        .transaction(Durability::Relaxed, move |tx| {
            claim_due_in(tx, webhook, limit, &owner, now, lease_until)
        })
        .await
}

/// The ordinary claim within a transaction: its own ([`claim`]), or a recording one that
/// refills the slots its results free ([`crate::model::AttemptRecord::refill`]).
pub(crate) fn claim_due_in(
    tx: &rusqlite::Transaction<'_>,
    webhook: WebhookId,
    limit: usize,
    owner: &str,
    now: Timestamp,
    lease_until: Timestamp,
) -> Result<Vec<ClaimedRow>, StoreError> {
    claim_in(tx, CLAIM_SQLITE, webhook, limit, owner, now, lease_until)
}

/// The claim statement within a transaction.
fn claim_in(
    tx: &rusqlite::Transaction<'_>,
    sql: &'static str,
    webhook: WebhookId,
    limit: usize,
    owner: &str,
    now: Timestamp,
    lease_until: Timestamp,
) -> Result<Vec<ClaimedRow>, StoreError> {
    let mut claim = tx.prepare_cached(Backend::Sqlite.sql(sql))?;
    let mut cursor = claim.query(rusqlite::params![
        webhook.to_string(),
        now.millis(),
        limit as i64,
        lease_until.millis(),
        owner,
    ])?;
    let mut claimed = Vec::with_capacity(limit);
    while let Some(row) = cursor.next()? {
        claimed.push(claimed_row(row)?);
    }
    Ok(claimed)
}

/// A claimed delivery from a row that starts `id, event_id, attempts, series_start,
/// ordering_key` (a claim's, or a line's next one claimed as its predecessor is recorded).
pub(crate) fn claimed_row(row: &rusqlite::Row<'_>) -> Result<ClaimedRow, StoreError> {
    Ok(ClaimedRow {
        id: decode::sqlite_parsed(row, 0)?,
        event_id: decode::sqlite_parsed(row, 1)?,
        attempts: row.get(2)?,
        series_start: row.get(3)?,
        send_at: None,
        ordering_key: row.get(4)?,
    })
}

/// A throttled webhook's claim: its limit and clock are read, the deliveries whose turn
/// comes within the horizon are claimed and given their turns, and the clock is moved past
/// them — one transaction on the writer thread, which holds the only write lock.
pub(crate) async fn claim_paced(
    writer: &SqliteWriter,
    webhook: WebhookId,
    limit: usize,
    owner: &str,
    now: Timestamp,
    lease: Duration,
) -> Result<PacedRows, StoreError> {
    let owner = owner.to_owned();
    writer
        .transaction(Durability::Relaxed, move |tx| {
            let found: Option<(Option<i64>, Option<i64>)> = tx
                .prepare_cached(Backend::Sqlite.sql(PACE))?
                .query_row(rusqlite::params![webhook.to_string()], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?;
            let step = PaceStep::new(found, now, limit, lease)?;
            let rows = match step.claim(limit) {
                Some((paced, count, lease_until)) => {
                    let sql = if paced {
                        CLAIM_PACED_SQLITE
                    } else {
                        CLAIM_SQLITE
                    };
                    claim_in(tx, sql, webhook, count, &owner, now, lease_until)?
                }
                None => Vec::new(),
            };
            let paced = step.finish(rows, now, limit);
            if let Some(clock) = paced.store_clock {
                tx.prepare_cached(Backend::Sqlite.sql(MOVE_CLOCK))?
                    .execute(rusqlite::params![webhook.to_string(), clock])?;
            }
            Ok(paced)
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_schema::sqlite_schema;

    fn delivery(
        db: &rusqlite::Connection,
        id: &str,
        webhook: &str,
        status: &str,
        due: Option<i64>,
    ) {
        db.execute(
            "INSERT INTO deliveries (id, webhook_id, event_id, status, due_at, created_at, \
             updated_at) VALUES (?1, ?2, 'e', ?3, ?4, 0, 0)",
            rusqlite::params![id, webhook, status, due],
        )
        .unwrap();
    }

    fn claim(db: &rusqlite::Connection, webhook: &str, now: i64, limit: i64) -> Vec<String> {
        let mut claim = db.prepare(Backend::Sqlite.sql(CLAIM_SQLITE)).unwrap();
        let mut ids: Vec<String> = claim
            .query_map(
                rusqlite::params![webhook, now, limit, now + 1000, "me"],
                |r| r.get(0),
            )
            .unwrap()
            .map(Result::unwrap)
            .collect();
        ids.sort();
        ids
    }

    #[test]
    fn sqlite_claims_due_pending_and_retries_earliest_first_and_nothing_else() {
        let db = sqlite_schema();
        delivery(&db, "d1", "w", "pending", Some(500)); // in flight: leased until 500
        delivery(&db, "d2", "w", "pending", Some(20));
        delivery(&db, "d3", "w", "retrying", Some(10));
        delivery(&db, "d4", "w", "retrying", Some(300)); // a retry not due yet
        delivery(&db, "d5", "w", "pending", Some(30));
        delivery(&db, "d6", "w", "delivered", None);
        delivery(&db, "d7", "w", "pending", None); // a Test ping being sent
        delivery(&db, "d8", "p", "pending", Some(5)); // held: its webhook is paused
                                                      // Two slots: the retry due at 10 and the pending delivery due at 20.
        assert_eq!(claim(&db, "w", 100, 2), ["d2", "d3"]);
        // Claimed rows are leased (due at 1100 now): only d5 is left to claim.
        assert_eq!(claim(&db, "w", 100, 10), ["d5"]);
        assert!(claim(&db, "w", 100, 10).is_empty());
        assert!(claim(&db, "p", 100, 10).is_empty());
        // A lease that ran out makes its delivery due again; the later retry is due by now.
        assert_eq!(claim(&db, "w", 600, 10), ["d1", "d4"]);
    }

    #[test]
    fn sqlite_claims_search_indexes_and_never_scan_deliveries() {
        let db = sqlite_schema();
        let sql = Backend::Sqlite.sql(CLAIM_SQLITE);
        let mut plan = db.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let steps: Vec<String> = plan
            .query_map(rusqlite::params!["w", 0, 1, 0, "me"], |r| r.get(3))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let plan = steps.join("\n");
        assert!(plan.contains("INDEX deliveries_log_by_status ("), "{plan}");
        assert!(plan.contains("INDEX deliveries_retry_due ("), "{plan}");
        assert!(!plan.contains("SCAN deliveries"), "{plan}");
    }
}
