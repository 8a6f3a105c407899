//! The durable queue: claiming due deliveries (each backend's claim in `sqlite/queue.rs` and
//! `postgres/queue.rs`), releasing claims, probes and the queue figures.
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

use std::time::Duration;

use lwh_domain::throttle::{Pacing, Throttle};
use lwh_domain::{EventId, Timestamp, WebhookId};

use crate::connect::{HotPath, Store};
use crate::decode;
use crate::dialect::{keep_prepared, placeholders};
use crate::error::StoreError;
use crate::model::{ClaimedDelivery, PacedClaim, QueueStats};
use crate::payload_cache::Payload;

/// A throttled webhook's limit and clock, read before its claim (on PostgreSQL, with the row
/// locked: `postgres/queue.rs`).
pub(crate) const PACE: &str = "SELECT max_per_second, next_send_us FROM webhooks \
     WHERE id = $1 AND status = 'active'";

/// Moves webhook $1's throttle clock to $2 (not an edit: `updated_at` stays).
pub(crate) const MOVE_CLOCK: &str = "UPDATE webhooks SET next_send_us = $2 WHERE id = $1";

/// The end of a lease taken at `from` for `lease`.
fn lease_after(from: Timestamp, lease: Duration) -> Timestamp {
    from.plus_millis(lease.as_millis() as i64)
}

/// A stored `max_per_second`.
pub(crate) fn throttle_of(rate: Option<i64>) -> Result<Option<Throttle>, StoreError> {
    rate.map(|r| {
        Throttle::new(r).map_err(|_| StoreError::Corrupt(format!("max_per_second holds {r}")))
    })
    .transpose()
}

/// A paced claim's plan, decided from the webhook's limit and clock as its transaction read
/// them (`max_per_second`, `next_send_us`; `None`: the webhook is not Active).
pub(crate) enum PaceStep {
    /// Not Active any more: claim nothing, as if its queue were empty.
    Inactive,
    /// The throttle was just removed: an ordinary claim.
    Unpaced { lease_until: Timestamp },
    /// Claim what `pacing` allows, each delivery at its turn.
    Paced {
        pacing: Pacing,
        lease_until: Timestamp,
    },
}

impl PaceStep {
    pub(crate) fn new(
        found: Option<(Option<i64>, Option<i64>)>,
        now: Timestamp,
        limit: usize,
        lease: Duration,
    ) -> Result<Self, StoreError> {
        let Some((rate, clock)) = found else {
            return Ok(Self::Inactive);
        };
        Ok(match throttle_of(rate)? {
            None => Self::Unpaced {
                lease_until: lease_after(now, lease),
            },
            Some(throttle) => {
                let pacing = throttle.plan(clock, now, limit);
                let last_turn = pacing.send_at(pacing.count.saturating_sub(1));
                Self::Paced {
                    pacing,
                    lease_until: lease_after(last_turn, lease),
                }
            }
        })
    }

    /// The claim statement to run, if any: (for a throttled webhook, how many, lease end).
    pub(crate) fn claim(&self, limit: usize) -> Option<(bool, usize, Timestamp)> {
        match self {
            Self::Inactive => None,
            Self::Unpaced { lease_until } => Some((false, limit, *lease_until)),
            Self::Paced {
                pacing,
                lease_until,
            } => (pacing.count > 0).then_some((true, pacing.count, *lease_until)),
        }
    }

    /// What the claim took, with each delivery's turn (in creation order) and the clock
    /// to store.
    pub(crate) fn finish(
        &self,
        mut rows: Vec<ClaimedRow>,
        now: Timestamp,
        limit: usize,
    ) -> PacedRows {
        let now_us = now.millis().saturating_mul(1000);
        let Self::Paced { pacing, .. } = self else {
            return PacedRows {
                rows,
                allowed: limit,
                next_turn_us: now_us,
                store_clock: None,
            };
        };
        rows.sort_by_key(|r| r.id);
        for (turn, row) in rows.iter_mut().enumerate() {
            row.send_at = Some(pacing.send_at(turn));
        }
        let clock = pacing.clock_after(rows.len());
        PacedRows {
            store_clock: (!rows.is_empty()).then_some(clock),
            allowed: pacing.count,
            next_turn_us: clock,
            rows,
        }
    }
}

/// A paced claim as a backend made it.
pub(crate) struct PacedRows {
    pub(crate) rows: Vec<ClaimedRow>,
    /// How many the pace allowed.
    pub(crate) allowed: usize,
    /// The next free turn (microseconds).
    pub(crate) next_turn_us: i64,
    /// The clock to store in the same transaction, when turns were given out.
    pub(crate) store_clock: Option<i64>,
}

/// A claimed delivery as the claim statement returns it.
pub(crate) struct ClaimedRow {
    pub(crate) id: lwh_domain::DeliveryId,
    pub(crate) event_id: EventId,
    pub(crate) attempts: i64,
    pub(crate) series_start: i64,
    /// A throttled webhook's turn for it.
    pub(crate) send_at: Option<Timestamp>,
    /// Its ordering key (a delivery in a line).
    pub(crate) ordering_key: Option<String>,
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
        let claimed: Vec<ClaimedRow> = match &self.hot {
            HotPath::Sqlite(writer) => {
                crate::sqlite::queue::claim(writer, webhook, limit, owner, now, lease_until).await?
            }
            HotPath::Postgres => {
                crate::postgres::queue::claim(self, webhook, limit, owner, now, lease_until).await?
            }
        };
        self.with_payloads(webhook, claimed).await
    }

    /// Claims a throttled webhook's due deliveries whose turn comes within the horizon
    /// ([`lwh_domain::throttle`]), at most `limit`, each with its turn in `send_at` and leased
    /// until `lease` after it; the webhook's clock moves past them in the same transaction
    /// (on PostgreSQL under the webhook row's lock, so every process shares one pace).
    pub async fn claim_paced(
        &self,
        webhook: WebhookId,
        limit: usize,
        owner: &str,
        now: Timestamp,
        lease: Duration,
    ) -> Result<PacedClaim, StoreError> {
        let paced = match &self.hot {
            HotPath::Sqlite(writer) => {
                crate::sqlite::queue::claim_paced(writer, webhook, limit, owner, now, lease).await?
            }
            HotPath::Postgres => {
                crate::postgres::queue::claim_paced(self, webhook, limit, owner, now, lease).await?
            }
        };
        Ok(PacedClaim {
            allowed: paced.allowed,
            next_turn: Timestamp::from_millis(paced.next_turn_us.div_euclid(1000)),
            claimed: self.with_payloads(webhook, paced.rows).await?,
        })
    }

    /// Claimed rows with their events' payloads (from memory for events ingested lately).
    pub(crate) async fn with_payloads(
        &self,
        webhook: WebhookId,
        claimed: Vec<ClaimedRow>,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        if claimed.is_empty() {
            return Ok(Vec::new());
        }
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
                    send_at: row.send_at,
                    ordering_key: row.ordering_key,
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
        let waiting = sqlx::query(self.backend.sql(crate::ordering::COUNT_WAITING))
            .fetch_one(&self.pool)
            .await?;
        let by_status = sqlx::query("SELECT status, COUNT(*) AS n FROM webhooks GROUP BY status")
            .fetch_all(&self.pool)
            .await?;
        Ok(QueueStats {
            scheduled: decode::int(&row, "scheduled")?,
            due_now: decode::int(&row, "due_now")?,
            oldest_due_age_ms: oldest.map_or(0, |o| (now.millis() - o).max(0)),
            waiting: decode::int(&waiting, "n")?,
            webhooks_by_status: by_status
                .iter()
                .map(|r| Ok((decode::text(r, "status")?, decode::int(r, "n")?)))
                .collect::<Result<_, StoreError>>()?,
        })
    }
}
