//! Webhook rows, their subscriptions, and what a status change does to queued deliveries
//! (Disabled cancels them; Paused and Failed hold them by the status alone).

use std::collections::HashMap;

use crate::connect::WriteTx;
use lwh_domain::format::Format;
use lwh_domain::ordering::DeliveryOrder;
use lwh_domain::{StatusEffect, Timestamp, WebhookId, WebhookStatus};
use sqlx::any::AnyRow;

use crate::connect::Store;
use crate::decode;
use crate::dialect::Backend;
use crate::error::StoreError;
use crate::model::{NewWebhook, WebhookChanges, WebhookRecord};

const WEBHOOK_COLUMNS: &str = "id, url, status, status_reason, status_changed_at, \
     last_triggered_at, created_at, updated_at, secret_ciphertext, previous_secret_ciphertext, \
     rotation_ends_at, headers_ciphertext, max_per_second, format, template, ordering";

/// [`StatusEffect::CancelQueued`]: the webhook's ($1) queued deliveries end Failed at $2 with
/// the reason $3.
pub(crate) const CANCEL_QUEUED: &str = "UPDATE deliveries SET status = 'failed', due_at = NULL, \
     claimed_by = NULL, last_error = $3, updated_at = $2 \
     WHERE webhook_id = $1 AND status IN ('pending', 'retrying', 'waiting')";

/// [`StatusEffect::Release`]: the webhook's ($1) failure record is cleared.
pub(crate) const CLEAR_FAILURE_RECORD: &str = "UPDATE webhooks SET failing_since = NULL, \
     failures_since_success = 0, next_probe_at = NULL, status_reason = NULL WHERE id = $1";

/// Ends webhook $1's rotation at $2: the previous secret's ciphertext is removed.
const FINISH_ROTATION: &str = "UPDATE webhooks SET previous_secret_ciphertext = NULL, \
     rotation_ends_at = NULL, updated_at = $2 WHERE id = $1 AND rotation_ends_at IS NOT NULL";

/// A webhook's status change (a no-op when it already has that status).
const SET_STATUS: &str = "UPDATE webhooks SET status = $2, status_reason = $3, \
     status_changed_at = $4, updated_at = $4 WHERE id = $1 AND status <> $2";

impl Store {
    /// Inserts a webhook unless `limit` webhooks already exist; the count and the insert are
    /// one atomic step, so two concurrent creations cannot both take the last Free slot.
    pub async fn insert_webhook(
        &self,
        new: &NewWebhook,
        limit: Option<u64>,
    ) -> Result<WebhookRecord, StoreError> {
        let mut tx = self.begin_write().await?;
        if self.backend == Backend::Postgres {
            // Serialise creations across processes; released at commit.
            sqlx::query("SELECT pg_advisory_xact_lock(727001)")
                .execute(&mut *tx)
                .await?;
        }
        let inserted = sqlx::query(self.backend.sql(
            "INSERT INTO webhooks (id, url, secret_ciphertext, status, status_changed_at, \
             created_at, updated_at, headers_ciphertext, max_per_second, format, template, \
             ordering) \
             SELECT $1, $2, $3, 'active', $4, $4, $4, $6, $7, $8, $9, $10 \
             WHERE (SELECT COUNT(*) FROM webhooks) < $5",
        ))
        .bind(new.id.to_string())
        .bind(&new.url)
        .bind(&new.secret_ciphertext)
        .bind(new.now.millis())
        .bind(limit.map_or(i64::MAX, |l| l as i64))
        .bind(new.headers_ciphertext.clone())
        .bind(new.throttle.map(|t| i64::from(t.per_second())))
        .bind(new.format.as_str())
        .bind(new.template.clone())
        .bind(new.ordering.as_str())
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::LimitReached);
        }
        self.replace_events(&mut tx, new.id, &new.events).await?;
        tx.commit().await?;
        self.get_webhook(new.id)
            .await?
            .ok_or_else(|| StoreError::Corrupt("inserted webhook vanished".into()))
    }

    async fn replace_events(
        &self,
        tx: &mut WriteTx,
        id: WebhookId,
        events: &[String],
    ) -> Result<(), StoreError> {
        sqlx::query(
            self.backend
                .sql("DELETE FROM webhook_events WHERE webhook_id = $1"),
        )
        .bind(id.to_string())
        .execute(&mut **tx)
        .await?;
        for (position, event) in events.iter().enumerate() {
            sqlx::query(self.backend.sql(
                "INSERT INTO webhook_events (event, webhook_id, position) VALUES ($1, $2, $3)",
            ))
            .bind(event)
            .bind(id.to_string())
            .bind(position as i64)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    /// Every webhook, oldest first.
    pub async fn list_webhooks(&self) -> Result<Vec<WebhookRecord>, StoreError> {
        let rows = sqlx::query(self.backend.sql_owned(format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks ORDER BY id"
        )))
        .fetch_all(&self.pool)
        .await?;
        let mut events = self.all_subscriptions().await?;
        rows.iter()
            .map(|row| {
                let mut record = decode_webhook(row)?;
                record.events = events.remove(&record.id).unwrap_or_default();
                Ok(record)
            })
            .collect()
    }

    async fn all_subscriptions(&self) -> Result<HashMap<WebhookId, Vec<String>>, StoreError> {
        let rows = sqlx::query(
            "SELECT webhook_id, event FROM webhook_events ORDER BY webhook_id, position",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut map: HashMap<WebhookId, Vec<String>> = HashMap::new();
        for row in &rows {
            map.entry(decode::parsed(row, "webhook_id")?)
                .or_default()
                .push(decode::text(row, "event")?);
        }
        Ok(map)
    }

    /// How many webhooks exist (for the plan's usage counter).
    pub async fn count_webhooks(&self) -> Result<u64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM webhooks")
            .fetch_one(&self.pool)
            .await?;
        Ok(decode::int(&row, "n")?.max(0) as u64)
    }

    /// One webhook with its subscriptions.
    pub async fn get_webhook(&self, id: WebhookId) -> Result<Option<WebhookRecord>, StoreError> {
        let Some(row) = sqlx::query(self.backend.sql_owned(format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = $1"
        )))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let mut record = decode_webhook(&row)?;
        let events = sqlx::query(
            self.backend
                .sql("SELECT event FROM webhook_events WHERE webhook_id = $1 ORDER BY position"),
        )
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await?;
        record.events = events
            .iter()
            .map(|r| decode::text(r, "event"))
            .collect::<Result<_, _>>()?;
        Ok(Some(record))
    }

    /// Applies an edit. A status change decides what happens to the webhook's queued
    /// deliveries: Paused holds them (claims skip non-Active webhooks), Disabled cancels them,
    /// Active sends them again, oldest due first, and clears the failure record. Returns `None` when the webhook does not exist.
    pub async fn update_webhook(
        &self,
        id: WebhookId,
        changes: &WebhookChanges,
        now: Timestamp,
    ) -> Result<Option<WebhookRecord>, StoreError> {
        let mut tx = self.begin_write().await?;
        let found = sqlx::query(
            self.backend
                .sql("UPDATE webhooks SET url = COALESCE($2, url), updated_at = $3 WHERE id = $1"),
        )
        .bind(id.to_string())
        .bind(changes.url.clone())
        .bind(now.millis())
        .execute(&mut *tx)
        .await?;
        if found.rows_affected() == 0 {
            return Ok(None);
        }
        if let Some(events) = &changes.events {
            self.replace_events(&mut tx, id, events).await?;
        }
        if let Some(headers) = &changes.headers_ciphertext {
            sqlx::query(
                self.backend
                    .sql("UPDATE webhooks SET headers_ciphertext = $2 WHERE id = $1"),
            )
            .bind(id.to_string())
            .bind(headers.clone())
            .execute(&mut *tx)
            .await?;
        }
        if let Some(throttle) = changes.throttle {
            sqlx::query(
                self.backend
                    .sql("UPDATE webhooks SET max_per_second = $2 WHERE id = $1"),
            )
            .bind(id.to_string())
            .bind(throttle.map(|t| i64::from(t.per_second())))
            .execute(&mut *tx)
            .await?;
        }
        if let Some((format, template)) = &changes.format {
            sqlx::query(
                self.backend
                    .sql("UPDATE webhooks SET format = $2, template = $3 WHERE id = $1"),
            )
            .bind(id.to_string())
            .bind(format.as_str())
            .bind(template.clone())
            .execute(&mut *tx)
            .await?;
        }
        if let Some(ordering) = changes.ordering {
            self.set_ordering_in(&mut tx, id, ordering, now).await?;
        }
        if let Some(status) = changes.status {
            self.set_status_in(&mut tx, id, status, None, now).await?;
        }
        tx.commit().await?;
        self.get_webhook(id).await
    }

    /// Moves a webhook to `status` (with a reason, for Failed) and applies what that means for
    /// its queued deliveries. A no-op when the status is unchanged.
    pub(crate) async fn set_status_in(
        &self,
        tx: &mut WriteTx,
        id: WebhookId,
        status: WebhookStatus,
        reason: Option<&str>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let changed = sqlx::query(self.backend.sql(SET_STATUS))
            .bind(id.to_string())
            .bind(status.as_str())
            .bind(reason.map(str::to_owned))
            .bind(now.millis())
            .execute(&mut **tx)
            .await?;
        if changed.rows_affected() == 0 {
            return Ok(());
        }
        let id = id.to_string();
        match status.effect_of_entering() {
            StatusEffect::Hold => {}
            StatusEffect::CancelQueued(reason) => {
                sqlx::query(self.backend.sql(CANCEL_QUEUED))
                    .bind(&id)
                    .bind(now.millis())
                    .bind(reason)
                    .execute(&mut **tx)
                    .await?;
            }
            StatusEffect::Release => {
                sqlx::query(self.backend.sql(CLEAR_FAILURE_RECORD))
                    .bind(&id)
                    .execute(&mut **tx)
                    .await?;
            }
        }
        Ok(())
    }
}

/// [`Store::set_status_in`] on SQLite's writer thread (automatic Failed while recording
/// attempts): the same statements and the same [`StatusEffect`], through rusqlite.
pub(crate) fn set_status_sqlite(
    tx: &rusqlite::Transaction<'_>,
    id: WebhookId,
    status: WebhookStatus,
    reason: Option<&str>,
    now: Timestamp,
) -> Result<(), StoreError> {
    let sql = |text: &'static str| Backend::Sqlite.sql(text);
    let id = id.to_string();
    let changed = tx
        .prepare_cached(sql(SET_STATUS))?
        .execute(rusqlite::params![id, status.as_str(), reason, now.millis()])?;
    if changed == 0 {
        return Ok(());
    }
    match status.effect_of_entering() {
        StatusEffect::Hold => {}
        StatusEffect::CancelQueued(reason) => {
            tx.prepare_cached(sql(CANCEL_QUEUED))?
                .execute(rusqlite::params![id, now.millis(), reason])?;
        }
        StatusEffect::Release => {
            tx.prepare_cached(sql(CLEAR_FAILURE_RECORD))?
                .execute(rusqlite::params![id])?;
        }
    }
    Ok(())
}

impl Store {
    /// Takes the webhook's notification turn: true (and the turn is recorded) when no mail
    /// about it was sent within `gap_ms` before `now`. One conditional update, so processes
    /// sharing a database never both send.
    pub async fn take_notification_turn(
        &self,
        id: WebhookId,
        now: Timestamp,
        gap_ms: i64,
    ) -> Result<bool, StoreError> {
        let taken = sqlx::query(self.backend.sql(
            "UPDATE webhooks SET notified_at = $2 WHERE id = $1 \
             AND (notified_at IS NULL OR notified_at <= $2 - $3)",
        ))
        .bind(id.to_string())
        .bind(now.millis())
        .bind(gap_ms)
        .execute(&self.pool)
        .await?;
        Ok(taken.rows_affected() == 1)
    }
}

/// What [`Store::rotate_secret`] found.
#[derive(Debug)]
pub enum Rotation {
    /// The new secret signs now, the previous one beside it until the overlap ends.
    Started(Box<WebhookRecord>),
    /// A rotation is still in its overlap: it must be finished first.
    InProgress,
    /// No such webhook.
    NotFound,
}

impl Store {
    /// Starts a secret rotation: `new_ciphertext` becomes the secret and the current one the
    /// previous secret, which keeps signing until `ends_at`. Refused while another rotation's
    /// overlap is still running (its previous secret would be lost unannounced).
    pub async fn rotate_secret(
        &self,
        id: WebhookId,
        new_ciphertext: &[u8],
        ends_at: Timestamp,
        now: Timestamp,
    ) -> Result<Rotation, StoreError> {
        let started = sqlx::query(self.backend.sql(
            "UPDATE webhooks SET previous_secret_ciphertext = secret_ciphertext, \
             secret_ciphertext = $2, rotation_ends_at = $3, updated_at = $4 \
             WHERE id = $1 AND (rotation_ends_at IS NULL OR rotation_ends_at <= $4)",
        ))
        .bind(id.to_string())
        .bind(new_ciphertext.to_vec())
        .bind(ends_at.millis())
        .bind(now.millis())
        .execute(&self.pool)
        .await?;
        match self.get_webhook(id).await? {
            Some(webhook) if started.rows_affected() > 0 => {
                Ok(Rotation::Started(Box::new(webhook)))
            }
            Some(_) => Ok(Rotation::InProgress),
            None => Ok(Rotation::NotFound),
        }
    }

    /// Ends a webhook's rotation now: the previous secret is destroyed. Returns the webhook
    /// (unchanged when no rotation was in progress), `None` when it does not exist.
    pub async fn finish_rotation(
        &self,
        id: WebhookId,
        now: Timestamp,
    ) -> Result<Option<WebhookRecord>, StoreError> {
        sqlx::query(self.backend.sql(FINISH_ROTATION))
            .bind(id.to_string())
            .bind(now.millis())
            .execute(&self.pool)
            .await?;
        self.get_webhook(id).await
    }

    /// Destroys the previous secrets whose overlap has ended; returns those webhooks.
    pub async fn finish_due_rotations(&self, now: Timestamp) -> Result<Vec<WebhookId>, StoreError> {
        let due = sqlx::query(
            self.backend
                .sql("SELECT id FROM webhooks WHERE rotation_ends_at <= $1"),
        )
        .bind(now.millis())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| decode::parsed(r, "id"))
        .collect::<Result<Vec<WebhookId>, _>>()?;
        for id in &due {
            sqlx::query(self.backend.sql(FINISH_ROTATION))
                .bind(id.to_string())
                .bind(now.millis())
                .execute(&self.pool)
                .await?;
        }
        Ok(due)
    }

    /// Deletes a webhook with its subscriptions, deliveries and attempts, so nothing more is
    /// sent to it. Returns whether it existed.
    pub async fn delete_webhook(&self, id: WebhookId) -> Result<bool, StoreError> {
        let id = id.to_string();
        let mut tx = self.begin_write().await?;
        for sql in [
            "DELETE FROM attempts WHERE delivery_id IN \
             (SELECT id FROM deliveries WHERE webhook_id = $1)",
            "DELETE FROM deliveries WHERE webhook_id = $1",
            "DELETE FROM webhook_events WHERE webhook_id = $1",
            "DELETE FROM webhook_stats WHERE webhook_id = $1",
        ] {
            sqlx::query(self.backend.sql(sql))
                .bind(&id)
                .execute(&mut *tx)
                .await?;
        }
        let gone = sqlx::query(self.backend.sql("DELETE FROM webhooks WHERE id = $1"))
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(gone.rows_affected() > 0)
    }
}

fn decode_webhook(row: &AnyRow) -> Result<WebhookRecord, StoreError> {
    let status_text = decode::text(row, "status")?;
    Ok(WebhookRecord {
        id: decode::parsed(row, "id")?,
        url: decode::text(row, "url")?,
        events: Vec::new(),
        status: WebhookStatus::parse(&status_text)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown webhook status {status_text}")))?,
        status_reason: decode::opt_text(row, "status_reason")?,
        status_changed_at: decode::time(row, "status_changed_at")?,
        last_triggered_at: decode::opt_time(row, "last_triggered_at")?,
        created_at: decode::time(row, "created_at")?,
        updated_at: decode::time(row, "updated_at")?,
        secret_ciphertext: decode::bytes(row, "secret_ciphertext")?,
        previous_secret_ciphertext: decode::opt_bytes(row, "previous_secret_ciphertext")?,
        rotation_ends_at: decode::opt_time(row, "rotation_ends_at")?,
        headers_ciphertext: decode::opt_bytes(row, "headers_ciphertext")?,
        throttle: crate::queue::throttle_of(decode::opt_int(row, "max_per_second")?)?,
        format: {
            let text = decode::text(row, "format")?;
            Format::parse(&text)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown webhook format {text}")))?
        },
        template: decode::opt_text(row, "template")?,
        ordering: {
            let text = decode::text(row, "ordering")?;
            DeliveryOrder::parse(&text)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown webhook ordering {text}")))?
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_schema::sqlite_schema;

    /// A webhook in `status` with a failure record and two queued deliveries.
    fn webhook(db: &rusqlite::Connection, status: WebhookStatus) -> WebhookId {
        let id = WebhookId::generate();
        db.execute(
            "INSERT INTO webhooks (id, url, secret_ciphertext, status, status_reason, \
             status_changed_at, failing_since, failures_since_success, next_probe_at, \
             created_at, updated_at) VALUES (?1, 'http://x', x'00', ?2, 'why', 0, 5, 7, 9, 0, 0)",
            rusqlite::params![id.to_string(), status.as_str()],
        )
        .unwrap();
        for n in 0..2 {
            db.execute(
                "INSERT INTO deliveries (id, webhook_id, event_id, status, due_at, created_at, \
                 updated_at) VALUES (?1, ?2, 'e', 'pending', 1, 0, 0)",
                rusqlite::params![format!("{id}-{n}"), id.to_string()],
            )
            .unwrap();
        }
        id
    }

    /// (queued deliveries, failures_since_success) after entering `to` from `from`.
    fn enter(from: WebhookStatus, to: WebhookStatus) -> (i64, i64) {
        let mut db = sqlite_schema();
        let id = webhook(&db, from);
        let tx = db.transaction().unwrap();
        set_status_sqlite(&tx, id, to, None, Timestamp::from_millis(100)).unwrap();
        tx.commit().unwrap();
        let queued = db
            .query_row(
                "SELECT COUNT(*) FROM deliveries WHERE webhook_id = ?1 \
                 AND status IN ('pending', 'retrying')",
                [id.to_string()],
                |r| r.get(0),
            )
            .unwrap();
        let failures = db
            .query_row(
                "SELECT failures_since_success FROM webhooks WHERE id = ?1",
                [id.to_string()],
                |r| r.get(0),
            )
            .unwrap();
        (queued, failures)
    }

    #[test]
    fn the_writer_thread_carries_out_each_status_effect() {
        use WebhookStatus::*;
        assert_eq!(enter(Active, Paused), (2, 7), "Paused holds");
        assert_eq!(enter(Active, Failed), (2, 7), "Failed holds");
        assert_eq!(enter(Active, Disabled), (0, 7), "Disabled cancels");
        assert_eq!(
            enter(Failed, Active),
            (2, 0),
            "Active releases and clears the record"
        );
        assert_eq!(enter(Paused, Paused), (2, 7), "no change, no effect");
    }
}
