//! The durable queue: claiming due deliveries and recording attempts.
//!
//! A delivery is due when `due_at <= now` and its webhook is Active (Paused and Failed
//! webhooks hold their deliveries by status alone). Claiming moves `due_at` to the end of a lease, so a
//! claimed row leaves the due range; if its worker dies, it becomes due again when the lease
//! ends and another worker picks it up. On PostgreSQL, `FOR UPDATE SKIP LOCKED` lets any
//! number of processes claim side by side without waiting on each other.
//!
//! Claims are made per webhook, at most as many as that webhook has free in-flight slots: a
//! dead endpoint's backlog is never scanned past, so it cannot slow the others, and the cost
//! of a claim does not grow with any backlog.
//!
//! PostgreSQL finds due deliveries through `(webhook_id, due_at)`. SQLite keeps a queued
//! delivery in two B-trees instead of three: pending ones are read in creation order through
//! the log index `(webhook_id, status, id)`, passing over the few in flight (leased, due
//! later), and only retries have a due-time index, `(webhook_id, due_at) WHERE status =
//! 'retrying'`. PostgreSQL cannot do the same: an update leaves the row's old index entry
//! behind until vacuum, so the pending range of the log index also holds an entry for every
//! delivery finished since, and each claim walked them all (tried: 20,000 such entries made a
//! claim take 10 ms, and the healthy rate fell from 4,000 to 2,700/s over five isolation runs;
//! docs/performance.md).

use std::collections::HashMap;
use std::sync::Arc;

use lwh_domain::{EventId, Timestamp, WebhookId};

use crate::connect::{Durability, Store};
use crate::decode;
use crate::dialect::{keep_prepared, placeholders, Backend};
use crate::error::StoreError;
use crate::model::{ClaimedDelivery, QueueStats};
use crate::payload_cache::Payload;

/// Claims a webhook's due deliveries, earliest due first, through `(webhook_id, due_at)`
/// (PostgreSQL: rows another process is claiming are skipped, not waited for).
const CLAIM_POSTGRES: &str = "WITH due AS (SELECT id FROM deliveries WHERE webhook_id = $1 \
       AND due_at IS NOT NULL AND due_at <= $2 AND EXISTS (SELECT 1 FROM webhooks \
       WHERE id = $1 AND status = 'active') ORDER BY due_at LIMIT $3 \
       FOR UPDATE SKIP LOCKED) \
     UPDATE deliveries d SET due_at = $4, claimed_by = $5 FROM due WHERE d.id = due.id \
     RETURNING d.id, d.event_id, d.attempts, d.series_start";

/// The same on SQLite, where the writer holds the only write lock and a queued delivery is in
/// two B-trees: pending ones are found in id (creation) order through the log index, passing
/// over the few in flight (leased, due later); retries through their partial due-time index.
/// Of the two candidate lists, the earliest due are claimed.
const CLAIM_SQLITE: &str = "UPDATE deliveries SET due_at = $4, claimed_by = $5 WHERE id IN ( \
       SELECT id FROM ( \
         SELECT id, due_at FROM (SELECT id, due_at FROM deliveries WHERE webhook_id = $1 \
           AND status = 'pending' AND due_at <= $2 ORDER BY id LIMIT $3) \
         UNION ALL \
         SELECT id, due_at FROM (SELECT id, due_at FROM deliveries WHERE webhook_id = $1 \
           AND status = 'retrying' AND due_at <= $2 ORDER BY due_at LIMIT $3)) \
       WHERE EXISTS (SELECT 1 FROM webhooks WHERE id = $1 AND status = 'active') \
       ORDER BY due_at LIMIT $3) \
     RETURNING id, event_id, attempts, series_start";

/// A claimed delivery as the claim statement returns it.
struct ClaimedRow {
    id: lwh_domain::DeliveryId,
    event_id: EventId,
    attempts: i64,
    series_start: i64,
}

impl Store {
    /// Active webhooks with the time of their last change (workers refresh cached targets
    /// when it moves).
    pub async fn active_webhooks(&self) -> Result<Vec<(WebhookId, Timestamp)>, StoreError> {
        let found = sqlx::query("SELECT id, updated_at FROM webhooks WHERE status = 'active'")
            .fetch_all(&self.pool)
            .await?;
        found
            .iter()
            .map(|r| Ok((decode::parsed(r, "id")?, decode::time(r, "updated_at")?)))
            .collect()
    }

    /// Claims up to `limit` due deliveries of one webhook, leased to `owner` until
    /// `lease_until`: pending ones in creation order (a redelivered one takes its original
    /// place), retries by due time, the earliest due of both first.
    pub async fn claim_due(
        &self,
        webhook: WebhookId,
        limit: usize,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let claimed: Vec<ClaimedRow> = match &self.sqlite {
            Some(writer) => {
                let owner = owner.to_owned();
                writer
                    .transaction(Durability::Relaxed, move |tx| {
                        let mut claim = tx.prepare_cached(Backend::Sqlite.sql(CLAIM_SQLITE))?;
                        let mut cursor = claim.query(rusqlite::params![
                            webhook.to_string(),
                            now.millis(),
                            limit as i64,
                            lease_until.millis(),
                            owner,
                        ])?;
                        let mut claimed = Vec::with_capacity(limit);
                        while let Some(row) = cursor.next()? {
                            claimed.push(ClaimedRow {
                                id: decode::sqlite_parsed(row, 0)?,
                                event_id: decode::sqlite_parsed(row, 1)?,
                                attempts: row.get(2)?,
                                series_start: row.get(3)?,
                            });
                        }
                        Ok(claimed)
                    })
                    .await?
            }
            None => {
                let mut tx = self.begin_write_with(Durability::Relaxed).await?;
                let found = sqlx::query(CLAIM_POSTGRES)
                    .bind(webhook.to_string())
                    .bind(now.millis())
                    .bind(limit as i64)
                    .bind(lease_until.millis())
                    .bind(owner)
                    .fetch_all(&mut *tx)
                    .await?;
                tx.commit().await?;
                found
                    .iter()
                    .map(|row| {
                        Ok(ClaimedRow {
                            id: decode::parsed(row, "id")?,
                            event_id: decode::parsed(row, "event_id")?,
                            attempts: decode::int(row, "attempts")?,
                            series_start: decode::int(row, "series_start")?,
                        })
                    })
                    .collect::<Result<_, StoreError>>()?
            }
        };
        if claimed.is_empty() {
            return Ok(Vec::new());
        }
        // Payloads of events ingested lately come from memory; the others are read.
        let mut events: HashMap<EventId, Payload> = HashMap::new();
        let mut event_ids: Vec<String> = Vec::new();
        for row in &claimed {
            if events.contains_key(&row.event_id) {
                continue;
            }
            match self.payloads.get(&row.event_id) {
                Some(cached) => {
                    events.insert(row.event_id, cached);
                }
                None => {
                    let id = row.event_id.to_string();
                    if !event_ids.contains(&id) {
                        event_ids.push(id);
                    }
                }
            }
        }
        if !event_ids.is_empty() {
            events.extend(self.event_payloads(&event_ids).await?);
        }
        Ok(claimed
            .into_iter()
            .filter_map(|row| {
                // The event was pruned under the delivery: nothing to send.
                let (slug, payload) = events.get(&row.event_id)?;
                Some(ClaimedDelivery {
                    id: row.id,
                    webhook_id: webhook,
                    event_id: row.event_id,
                    event: slug.clone(),
                    payload: payload.clone(),
                    attempts: row.attempts,
                    series_start: row.series_start,
                })
            })
            .collect())
    }

    async fn event_payloads(
        &self,
        ids: &[String],
    ) -> Result<HashMap<EventId, Payload>, StoreError> {
        let sql = format!(
            "SELECT id, event, payload FROM events WHERE id IN ({})",
            placeholders(ids.len(), 1)
        );
        let mut query =
            sqlx::query(self.backend.sql_owned(sql)).persistent(keep_prepared(ids.len()));
        for id in ids {
            query = query.bind(id);
        }
        let found = query.fetch_all(&self.pool).await?;
        found
            .iter()
            .map(|r| {
                Ok((
                    decode::parsed(r, "id")?,
                    (
                        decode::text(r, "event")?,
                        Arc::from(decode::bytes(r, "payload")?),
                    ),
                ))
            })
            .collect()
    }

    /// Makes every claimed delivery due now. Only for SQLite at start-up: one process owns the
    /// file, so any claim found then belongs to a process that died.
    pub async fn release_all_claims(&self, now: Timestamp) -> Result<u64, StoreError> {
        let done = sqlx::query(self.backend.sql(
            "UPDATE deliveries SET due_at = $1, claimed_by = NULL \
             WHERE claimed_by IS NOT NULL AND due_at IS NOT NULL AND due_at > $1",
        ))
        .bind(now.millis())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Hands a claimed delivery back unsent (shutdown): due again at once.
    pub async fn release_claims(
        &self,
        ids: &[lwh_domain::DeliveryId],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        for chunk in ids.chunks(500) {
            let sql = format!(
                "UPDATE deliveries SET due_at = $1, claimed_by = NULL \
                 WHERE due_at IS NOT NULL AND id IN ({})",
                placeholders(chunk.len(), 2)
            );
            let mut query = sqlx::query(self.backend.sql_owned(sql))
                .persistent(keep_prepared(chunk.len()))
                .bind(now.millis());
            for id in chunk {
                query = query.bind(id.to_string());
            }
            query.execute(&self.pool).await?;
        }
        Ok(())
    }

    /// Failed webhooks whose next `ping` probe is due.
    pub async fn webhooks_due_for_probe(
        &self,
        now: Timestamp,
    ) -> Result<Vec<WebhookId>, StoreError> {
        let found = sqlx::query(self.backend.sql(
            "SELECT id FROM webhooks WHERE status = 'failed' \
             AND (next_probe_at IS NULL OR next_probe_at <= $1)",
        ))
        .bind(now.millis())
        .fetch_all(&self.pool)
        .await?;
        found.iter().map(|r| decode::parsed(r, "id")).collect()
    }

    /// Schedules a Failed webhook's next probe.
    pub async fn set_next_probe(&self, id: WebhookId, at: Timestamp) -> Result<(), StoreError> {
        sqlx::query(
            self.backend
                .sql("UPDATE webhooks SET next_probe_at = $2 WHERE id = $1"),
        )
        .bind(id.to_string())
        .bind(at.millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Queue figures for `/metrics`.
    pub async fn queue_stats(&self, now: Timestamp) -> Result<QueueStats, StoreError> {
        let row = sqlx::query(self.backend.sql(
            "SELECT COUNT(*) AS scheduled, \
             COALESCE(SUM(CASE WHEN d.due_at <= $1 THEN 1 ELSE 0 END), 0) AS due_now, \
             MIN(d.due_at) AS oldest FROM webhooks w \
             JOIN deliveries d ON d.webhook_id = w.id AND d.status IN ('pending', 'retrying') \
             WHERE w.status = 'active' AND d.due_at IS NOT NULL",
        ))
        .bind(now.millis())
        .fetch_one(&self.pool)
        .await?;
        let oldest = decode::opt_int(&row, "oldest")?;
        let by_status = sqlx::query("SELECT status, COUNT(*) AS n FROM webhooks GROUP BY status")
            .fetch_all(&self.pool)
            .await?;
        Ok(QueueStats {
            scheduled: decode::int(&row, "scheduled")?,
            due_now: decode::int(&row, "due_now")?,
            oldest_due_age_ms: oldest.map_or(0, |o| (now.millis() - o).max(0)),
            webhooks_by_status: by_status
                .iter()
                .map(|r| Ok((decode::text(r, "status")?, decode::int(r, "n")?)))
                .collect::<Result<_, StoreError>>()?,
        })
    }
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
