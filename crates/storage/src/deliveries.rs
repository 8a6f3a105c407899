//! The delivery log: listing, detail, redelivery, and pruning by retention.

use lwh_domain::request_headers::{full_request_headers, DeliveryFacts};
use lwh_domain::{DeliveryId, DeliveryStatus, EventId, Timestamp, WebhookId};
use sqlx::any::AnyRow;

use crate::connect::Store;
use crate::decode;
use crate::error::StoreError;
use crate::model::{AttemptRow, DeliverySummary, NewEvent};
use crate::ordering::WAITING;

const SUMMARY_COLUMNS: &str = "d.id, d.webhook_id, d.event_id, e.event, d.status, d.attempts, \
     d.series_start, d.last_status_code, d.last_error, \
     CASE WHEN (SELECT w.status FROM webhooks w WHERE w.id = d.webhook_id) = 'active' \
     THEN d.due_at END AS due_at, d.created_at, d.updated_at, \
     (SELECT MAX(a.started_at) FROM attempts a WHERE a.delivery_id = d.id) AS last_attempt_at, \
     d.ordering_key";

/// How much longer than its deliveries an event is kept by [`Store::prune`]: far more than
/// any request waits between an event's id and its deliveries' commit.
pub const EVENT_MARGIN_MS: i64 = 3600 * 1000;

/// Rows [`Store::prune`] deletes per transaction, so writers are never held up for long.
const PRUNE_CHUNK: usize = 2_000;

impl Store {
    /// A page of a webhook's deliveries, newest first, optionally of one status, strictly
    /// older than `before` (the cursor).
    pub async fn list_deliveries(
        &self,
        webhook: WebhookId,
        status: Option<DeliveryStatus>,
        before: Option<DeliveryId>,
        limit: usize,
    ) -> Result<Vec<DeliverySummary>, StoreError> {
        // An id beyond every real one stands in for "no cursor", so one statement serves both.
        let before = before.map_or_else(|| "dlv_~".to_owned(), |b| b.to_string());
        let statuses = match status {
            Some(status) => stored_as(status),
            None => STORED_STATUSES,
        };
        let rows = sqlx::query(self.backend.sql_owned(format!(
            "SELECT {SUMMARY_COLUMNS} FROM deliveries d JOIN events e ON e.id = d.event_id \
             WHERE d.id IN ({}) ORDER BY d.id DESC LIMIT $3",
            newest_of_each_status(statuses)
        )))
        .bind(webhook.to_string())
        .bind(before)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode_summary).collect()
    }

    /// One delivery's summary alone (no payload, no attempts): what reporting it needs.
    pub async fn delivery_summary(
        &self,
        id: DeliveryId,
    ) -> Result<Option<DeliverySummary>, StoreError> {
        sqlx::query(self.backend.sql_owned(format!(
            "SELECT {SUMMARY_COLUMNS} FROM deliveries d \
             JOIN events e ON e.id = d.event_id WHERE d.id = $1"
        )))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(decode_summary)
        .transpose()
    }

    /// One delivery with its payload and attempts (oldest first).
    pub async fn get_delivery(
        &self,
        id: DeliveryId,
    ) -> Result<Option<(DeliverySummary, Vec<u8>, Vec<AttemptRow>)>, StoreError> {
        let Some(row) = sqlx::query(self.backend.sql_owned(format!(
            "SELECT {SUMMARY_COLUMNS}, e.payload FROM deliveries d \
             JOIN events e ON e.id = d.event_id WHERE d.id = $1"
        )))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let summary = decode_summary(&row)?;
        let payload = decode::bytes(&row, "payload")?;
        let facts = DeliveryFacts {
            delivery_id: summary.id,
            webhook_id: summary.webhook_id,
            event_id: summary.event_id,
            event: &summary.event,
        };
        let attempts = sqlx::query(self.backend.sql(
            "SELECT number, started_at, duration_ms, status_code, error_kind, error, response_excerpt, \
             request_headers, response_headers FROM attempts WHERE delivery_id = $1 ORDER BY number",
        ))
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(AttemptRow {
                number: decode::int(r, "number")?,
                started_at: decode::time(r, "started_at")?,
                duration_ms: decode::int(r, "duration_ms")?,
                status_code: decode::opt_int(r, "status_code")?,
                error_kind: decode::opt_text(r, "error_kind")?,
                error: decode::opt_text(r, "error")?,
                response_excerpt: decode::opt_text(r, "response_excerpt")?,
                request_headers: decode::opt_text(r, "request_headers")?
                    .map(|varying| full_request_headers(&varying, facts)),
                response_headers: decode::opt_text(r, "response_headers")?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Some((summary, payload, attempts)))
    }

    /// Starts a new attempt series for a finished delivery: Pending, due now (held while the
    /// webhook is not Active), with a fresh retry budget. Returns false if the delivery does
    /// not exist or is still queued. A redelivery is sent at once, outside its ordering key's
    /// line: it is an old event sent again by hand.
    pub async fn redeliver(&self, id: DeliveryId, now: Timestamp) -> Result<bool, StoreError> {
        let done = sqlx::query(self.backend.sql(
            "UPDATE deliveries SET status = 'pending', series_start = attempts, \
             due_at = $2, ordering_key = NULL, ordering_seq = NULL, \
             claimed_by = NULL, last_error = NULL, updated_at = $2 \
             WHERE id = $1 AND status IN ('delivered', 'failed')",
        ))
        .bind(id.to_string())
        .bind(now.millis())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Starts a new attempt series, due at once, for every Failed delivery of `webhook`
    /// created in `[since, until)` (`until`: none means up to now), outside any ordering key's
    /// line, like a redelivery. Returns how many.
    pub async fn recover(
        &self,
        webhook: WebhookId,
        since: Timestamp,
        until: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(self.backend.sql(
            "UPDATE deliveries SET status = 'pending', series_start = attempts, \
             due_at = created_at, ordering_key = NULL, ordering_seq = NULL, \
             claimed_by = NULL, last_error = NULL, updated_at = $3 \
             WHERE webhook_id = $1 AND status = 'failed' AND id >= $2 AND id < $4",
        ))
        .bind(webhook.to_string())
        .bind(DeliveryId::lower_bound_at(since.millis()).to_string())
        .bind(now.millis())
        .bind(window_end(until))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// How many Failed deliveries [`Store::recover`] would queue again for that window.
    pub async fn recoverable(
        &self,
        webhook: WebhookId,
        since: Timestamp,
        until: Option<Timestamp>,
    ) -> Result<u64, StoreError> {
        let row = sqlx::query(self.backend.sql(
            "SELECT COUNT(*) AS n FROM deliveries \
             WHERE webhook_id = $1 AND status = 'failed' AND id >= $2 AND id < $3",
        ))
        .bind(webhook.to_string())
        .bind(DeliveryId::lower_bound_at(since.millis()).to_string())
        .bind(window_end(until))
        .fetch_one(&self.pool)
        .await?;
        Ok(decode::int(&row, "n")?.max(0) as u64)
    }

    /// Stores a `ping` (Test or probe) as an event with one claimed delivery, so its attempt
    /// is logged like any other.
    pub async fn insert_ping(
        &self,
        event: &NewEvent,
        delivery: DeliveryId,
        webhook: WebhookId,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(self.backend.sql(
            "INSERT INTO events (id, event, payload, idempotency_key, deliveries, created_at) \
             VALUES ($1, $2, $3, NULL, 1, $4)",
        ))
        .bind(event.id.to_string())
        .bind(&event.slug)
        .bind(&*event.payload)
        .bind(now.millis())
        .execute(&mut *tx)
        .await?;
        sqlx::query(self.backend.sql(
            "INSERT INTO deliveries (id, webhook_id, event_id, status, due_at, claimed_by, \
             created_at, updated_at) VALUES ($1, $2, $3, 'pending', NULL, 'test', $4, $4)",
        ))
        .bind(delivery.to_string())
        .bind(webhook.to_string())
        .bind(event.id.to_string())
        .bind(now.millis())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes deliveries, attempts and events created before `cutoff`, a few thousand rows
    /// per transaction so writers are never held up for long, and expired sessions. Returns
    /// the number of deliveries removed.
    ///
    /// Events go [`EVENT_MARGIN_MS`] later than their deliveries, by their id alone: every
    /// delivery is created in the transaction that stores its event (ingestion, ping), so it
    /// is never younger than its event by more than a request's wait, and once the
    /// deliveries before `cutoff` are gone, none remains for an event older than the margin.
    /// (Deciding it row by row — no delivery left for this event — would scan the whole
    /// deliveries table per event: `event_id` has no index.)
    pub async fn prune(&self, cutoff: Timestamp, now: Timestamp) -> Result<u64, StoreError> {
        let deliveries_before = DeliveryId::lower_bound_at(cutoff.millis()).to_string();
        let events_before = EventId::lower_bound_at(cutoff.millis() - EVENT_MARGIN_MS).to_string();
        let mut removed = 0;
        loop {
            let mut tx = self.begin_write().await?;
            let ids: Vec<String> = sqlx::query(
                self.backend
                    .sql("SELECT id FROM deliveries WHERE id < $1 ORDER BY id LIMIT $2"),
            )
            .bind(&deliveries_before)
            .bind(PRUNE_CHUNK as i64)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| decode::text(r, "id"))
            .collect::<Result<_, _>>()?;
            if ids.is_empty() {
                tx.commit().await?;
                break;
            }
            let last = ids.last().cloned().unwrap_or_default();
            for sql in [
                "DELETE FROM attempts WHERE delivery_id <= $1 AND delivery_id < $2",
                "DELETE FROM deliveries WHERE id <= $1 AND id < $2",
            ] {
                sqlx::query(self.backend.sql(sql))
                    .bind(&last)
                    .bind(&deliveries_before)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            removed += ids.len() as u64;
        }
        loop {
            let mut tx = self.begin_write().await?;
            let done = sqlx::query(self.backend.sql(
                "DELETE FROM events WHERE id IN \
                 (SELECT id FROM events WHERE id < $1 ORDER BY id LIMIT $2)",
            ))
            .bind(&events_before)
            .bind(PRUNE_CHUNK as i64)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            if done.rows_affected() < PRUNE_CHUNK as u64 {
                break;
            }
        }
        sqlx::query(
            self.backend
                .sql("DELETE FROM sessions WHERE expires_at <= $1"),
        )
        .bind(now.millis())
        .execute(&self.pool)
        .await?;
        Ok(removed)
    }
}

/// The ids of the newest `$3` deliveries of webhook `$1` below cursor `$2` in each of
/// `statuses`: the one index on `(webhook_id, status, id)` serves the log this way (a merge of
/// at most five short ranges), so a delivery writes one index fewer than with a second
/// `(webhook_id, id)` index.
fn newest_of_each_status(statuses: &[&str]) -> String {
    statuses
        .iter()
        .map(|status| {
            format!(
                "SELECT id FROM (SELECT id FROM deliveries WHERE webhook_id = $1 \
                 AND status = '{status}' AND id < $2 ORDER BY id DESC LIMIT $3) AS {status}"
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ")
}

/// Every status a delivery is stored with: the API's four and `waiting` (shown as pending).
const STORED_STATUSES: &[&str] = &["pending", "retrying", "delivered", "failed", WAITING];

/// The stored statuses a filter on `status` covers: pending includes waiting.
fn stored_as(status: DeliveryStatus) -> &'static [&'static str] {
    match status {
        DeliveryStatus::Pending => &["pending", WAITING],
        DeliveryStatus::Retrying => &["retrying"],
        DeliveryStatus::Delivered => &["delivered"],
        DeliveryStatus::Failed => &["failed"],
    }
}

fn decode_summary(row: &AnyRow) -> Result<DeliverySummary, StoreError> {
    let status_text = decode::text(row, "status")?;
    let waiting = status_text == WAITING;
    let status = match waiting {
        true => DeliveryStatus::Pending,
        false => DeliveryStatus::parse(&status_text)
            .ok_or_else(|| StoreError::Corrupt(format!("delivery status {status_text}")))?,
    };
    let attempts = decode::int(row, "attempts")?;
    let series_start = decode::int(row, "series_start")?;
    let in_series = attempts - series_start;
    Ok(DeliverySummary {
        id: decode::parsed(row, "id")?,
        webhook_id: decode::parsed(row, "webhook_id")?,
        event_id: decode::parsed(row, "event_id")?,
        event: decode::text(row, "event")?,
        status,
        attempts,
        series_start,
        last_attempt_at: decode::opt_time(row, "last_attempt_at")?,
        retry_count: match status {
            DeliveryStatus::Delivered | DeliveryStatus::Failed => (in_series - 1).max(0),
            _ => in_series,
        },
        last_status_code: decode::opt_int(row, "last_status_code")?,
        last_error: decode::opt_text(row, "last_error")?,
        next_attempt_at: match status.is_queued() {
            true => decode::opt_time(row, "due_at")?,
            false => None,
        },
        created_at: decode::time(row, "created_at")?,
        updated_at: decode::time(row, "updated_at")?,
        ordering_key: decode::opt_text(row, "ordering_key")?,
        waiting,
    })
}

/// The first delivery id after a recovery window ending at `until` (every id when `None`).
fn window_end(until: Option<Timestamp>) -> String {
    match until {
        Some(t) => DeliveryId::lower_bound_at(t.millis()).to_string(),
        // Above every ULID: 'dlv_' and 26 characters of the highest Crockford digit.
        None => format!("dlv_{}", "Z".repeat(26)),
    }
}
