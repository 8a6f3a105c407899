//! Hourly counters per webhook (`webhook_stats`): read by the stats endpoint and the console's
//! charts, pruned after eight days; the figures are computed from them by
//! [`lwh_domain::stats`].
//!
//! Recording a batch of attempts adds it to counters kept in memory ([`PendingStats`]);
//! [`Store::flush_stats`], called every second by the delivery engine (and at close), writes
//! them in one transaction: one upsert per webhook and hour each second, instead of one per
//! webhook in every batch of results (the hot path's transaction), and no row lock held by the
//! recorders of several processes. What a crash can lose is the last second's counts, never
//! an attempt or a delivery.

use std::collections::BTreeMap;
use std::sync::{LazyLock, Mutex};

use lwh_domain::stats::{hour_of, HourCounters, BUCKETS, HOUR_MS};
use lwh_domain::{Timestamp, WebhookId};
use sqlx::any::AnyRow;

use crate::connect::{Durability, HotPath, Store};
use crate::decode;
use crate::error::StoreError;
use crate::model::AttemptRecord;

/// How long hourly counters are kept: the longest window (7 days) and a day of margin.
pub const STATS_KEPT_MS: i64 = 8 * 24 * HOUR_MS;

/// The histogram's column names, `d00` to `d27`.
fn bucket_columns() -> impl Iterator<Item = String> {
    (0..BUCKETS).map(|i| format!("d{i:02}"))
}

/// Adds one (webhook, hour)'s counters to its row of this process's slot; `$1` webhook,
/// `$2` hour, `$3` slot, `$4` attempts, `$5` failures, then one value per bucket.
pub(crate) static ADD_COUNTERS: LazyLock<String> = LazyLock::new(|| {
    let columns: Vec<String> = bucket_columns().collect();
    let values: Vec<String> = (0..BUCKETS).map(|i| format!("${}", 6 + i)).collect();
    let sums: Vec<String> = columns
        .iter()
        .map(|c| format!("{c} = webhook_stats.{c} + excluded.{c}"))
        .collect();
    format!(
        "INSERT INTO webhook_stats (webhook_id, hour, slot, attempts, failures, {}) \
         VALUES ($1, $2, $3, $4, $5, {}) ON CONFLICT (webhook_id, hour, slot) DO UPDATE SET \
         attempts = webhook_stats.attempts + excluded.attempts, \
         failures = webhook_stats.failures + excluded.failures, {}",
        columns.join(", "),
        values.join(", "),
        sums.join(", ")
    )
});

/// Sums over the slots, per hour; `$1` webhook, `$2` first hour.
static READ_ONE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT webhook_id, hour, {} FROM webhook_stats WHERE webhook_id = $1 AND hour >= $2 \
         GROUP BY webhook_id, hour",
        sums()
    )
});

/// The same for every webhook; `$1` first hour.
static READ_ALL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT webhook_id, hour, {} FROM webhook_stats WHERE hour >= $1 \
         GROUP BY webhook_id, hour",
        sums()
    )
});

fn sums() -> String {
    std::iter::once("attempts".to_owned())
        .chain(std::iter::once("failures".to_owned()))
        .chain(bucket_columns())
        .map(|c| format!("CAST(SUM({c}) AS BIGINT) AS {c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The row this process adds to: processes sharing a PostgreSQL database use different rows
/// for the same hour, so their recorders never wait on each other's lock. (Two processes whose
/// ids match modulo 64 share rows, which only costs them a wait.)
pub(crate) fn slot() -> i64 {
    i64::from(std::process::id() % 64)
}

/// Counters per (webhook, hour), in lock order.
pub(crate) type Counters = BTreeMap<(WebhookId, i64), HourCounters>;

/// Counters of recorded attempts that are not written yet.
#[derive(Debug, Default)]
pub(crate) struct PendingStats(Mutex<Counters>);

impl PendingStats {
    /// Counts a recorded batch.
    pub(crate) fn add(&self, records: &[AttemptRecord]) {
        let mut pending = self.0.lock().unwrap_or_else(|p| p.into_inner());
        for r in records {
            let hour = hour_of(r.started_at);
            pending
                .entry((r.webhook_id, hour))
                .or_insert_with(|| HourCounters::empty(hour))
                .add(r.outcome.delivered(), r.outcome.duration_ms);
        }
    }

    /// Takes everything pending.
    fn take(&self) -> Counters {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Puts counters back after a failed write, to be written with the next ones.
    fn restore(&self, counters: Counters) {
        let mut pending = self.0.lock().unwrap_or_else(|p| p.into_inner());
        for (key, c) in counters {
            pending
                .entry(key)
                .or_insert_with(|| HourCounters::empty(c.hour))
                .merge(&c);
        }
    }
}

fn decode_row(row: &AnyRow) -> Result<(WebhookId, HourCounters), StoreError> {
    let webhook = decode::parsed(row, "webhook_id")?;
    let mut counters = HourCounters::empty(decode::int(row, "hour")?);
    counters.attempts = decode::int(row, "attempts")?;
    counters.failures = decode::int(row, "failures")?;
    for (i, column) in bucket_columns().enumerate() {
        counters.durations[i] = decode::int(row, &column)?;
    }
    Ok((webhook, counters))
}

impl Store {
    /// Writes the counters of the attempts recorded since the last call, in one transaction;
    /// returns how many (webhook, hour) rows it added to. On failure they are kept for the
    /// next call.
    pub async fn flush_stats(&self) -> Result<usize, StoreError> {
        let counters = self.pending_stats.take();
        if counters.is_empty() {
            return Ok(0);
        }
        let rows = counters.len();
        let written = match &self.hot {
            HotPath::Sqlite(writer) => {
                let batch = counters.clone();
                writer
                    .transaction(Durability::Relaxed, move |tx| {
                        crate::sqlite::attempts::add_counters(tx, &batch)
                    })
                    .await
            }
            HotPath::Postgres => {
                let mut tx = self.begin_write_with(Durability::Relaxed).await?;
                match crate::postgres::attempts::add_counters(self, &mut tx, &counters).await {
                    Ok(()) => tx.commit().await,
                    Err(e) => Err(e),
                }
            }
        };
        match written {
            Ok(()) => Ok(rows),
            Err(e) => {
                self.pending_stats.restore(counters);
                Err(e)
            }
        }
    }

    /// `webhook`'s counters for every hour from `first_hour` on (one per hour, slots summed).
    pub async fn webhook_stats(
        &self,
        webhook: WebhookId,
        first_hour: i64,
    ) -> Result<Vec<HourCounters>, StoreError> {
        let rows = sqlx::query(self.backend.sql(READ_ONE.as_str()))
            .bind(webhook.to_string())
            .bind(first_hour)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| decode_row(row).map(|(_, counters)| counters))
            .collect()
    }

    /// Every webhook's counters from `first_hour` on, for the console's table (one query
    /// for the whole page).
    pub async fn all_webhook_stats(
        &self,
        first_hour: i64,
    ) -> Result<BTreeMap<WebhookId, Vec<HourCounters>>, StoreError> {
        let rows = sqlx::query(self.backend.sql(READ_ALL.as_str()))
            .bind(first_hour)
            .fetch_all(&self.pool)
            .await?;
        let mut out: BTreeMap<WebhookId, Vec<HourCounters>> = BTreeMap::new();
        for row in &rows {
            let (webhook, counters) = decode_row(row)?;
            out.entry(webhook).or_default().push(counters);
        }
        Ok(out)
    }

    /// Deletes counters older than [`STATS_KEPT_MS`]; returns how many rows.
    pub async fn prune_stats(&self, now: Timestamp) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            self.backend
                .sql("DELETE FROM webhook_stats WHERE hour < $1"),
        )
        .bind(hour_of(now) - STATS_KEPT_MS)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }
}
