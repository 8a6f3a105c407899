//! SQLite's recording of attempt results, on the writer thread: the shared statements of
//! [`crate::attempts`], prepared once, one row at a time (no round trip per statement there).

use lwh_domain::{NextStep, Timestamp, WebhookId, WebhookStatus};
use rusqlite::params;
use rusqlite::types::Value;

use crate::attempts::{
    finished_lines, next_state, refills_wanted, summarize, turns_failed, webhook_update,
    BackendRecorded, Recorded, DELIVERED, INSERT_ATTEMPTS, NOT_DELIVERED, ON_ATTEMPT_CONFLICT,
    SET_NEXT_PROBE,
};
use crate::connect::Durability;
use crate::dialect::Backend;
use crate::error::StoreError;
use crate::model::{AttemptRecord, FailureRules};
use crate::ordering::{SuccessorClaim, RELEASE_NEXT};
use crate::queue::ClaimedRow;
use crate::sqlite::queue::{claim_due_in, claimed_row};
use crate::sqlite::writer::SqliteWriter;
use crate::stats::{slot, Counters, ADD_COUNTERS};
use crate::webhooks::set_status_sqlite;

/// Records one batch in one transaction of the writer thread.
pub(crate) async fn run(
    writer: &SqliteWriter,
    records: &[AttemptRecord],
    rules: FailureRules,
    now: Timestamp,
    successor: Option<&SuccessorClaim>,
) -> Result<BackendRecorded, StoreError> {
    let records = records.to_vec();
    let successor = successor.cloned();
    writer
        .transaction(Durability::Relaxed, move |tx| {
            record(tx, &records, rules, now, successor.as_ref())
        })
        .await
}

/// [`Store::record_attempts`] on SQLite's writer thread: the same statements, prepared once,
/// one row at a time (no round trip per statement there).
pub(crate) fn record(
    tx: &rusqlite::Transaction<'_>,
    records: &[AttemptRecord],
    rules: FailureRules,
    now: Timestamp,
    successor: Option<&SuccessorClaim>,
) -> Result<BackendRecorded, StoreError> {
    let sql = |text: &'static str| Backend::Sqlite.sql(text);
    let mut became_failed = Vec::new();
    for (id, s) in summarize(records) {
        let webhook = id.to_string();
        let mut update = tx.prepare_cached(sql(webhook_update(&s)))?;
        let mut cursor = update.query(params![
            webhook,
            s.last_started,
            s.first_failure,
            s.failures
        ])?;
        let Some(row) = cursor.next()? else { continue };
        let after = (row.get(0)?, row.get(1)?, row.get(2)?);
        drop(cursor);
        if let Some(reason) = turns_failed(&s, after, rules, now) {
            set_status_sqlite(tx, id, WebhookStatus::Failed, Some(&reason), now)?;
            tx.prepare_cached(sql(SET_NEXT_PROBE))?
                .execute(params![webhook, now.millis() + rules.probe_interval_ms])?;
            became_failed.push(id);
        }
    }
    let mut ordered: Vec<&AttemptRecord> = records.iter().collect();
    ordered.sort_by_key(|r| (r.delivery_id, r.number));
    let mut insert = tx.prepare_cached(&format!(
        "{INSERT_ATTEMPTS}(?, ?, ?, ?, ?, ?, ?, ?, ?, ?) {ON_ATTEMPT_CONFLICT}"
    ))?;
    for r in &ordered {
        let o = &r.outcome;
        insert.execute(params![
            r.delivery_id.to_string(),
            r.number,
            r.started_at.millis(),
            o.duration_ms,
            o.status_code,
            o.error_kind.map(|k| k.as_str()),
            o.error,
            o.response_excerpt,
            o.request_headers,
            o.response_headers,
        ])?;
    }
    let mut delivered = tx.prepare_cached(&format!(
        "{} WHERE id = ? AND status IN ('pending', 'retrying')",
        sql(DELIVERED)
    ))?;
    let mut not_delivered = tx.prepare_cached(sql(NOT_DELIVERED))?;
    for r in &ordered {
        if r.next == NextStep::Delivered {
            delivered.execute(params![
                r.outcome.status_code,
                now.millis(),
                r.delivery_id.to_string()
            ])?;
        } else {
            let (status, due) = next_state(r.next);
            not_delivered.execute(params![
                r.delivery_id.to_string(),
                status,
                due,
                r.outcome.status_code,
                r.outcome.error,
                now.millis(),
            ])?;
        }
    }
    let (released, claimed) = release_lines(tx, records, now, successor)?;
    let mut refills = Vec::new();
    if let Some(claim) = successor {
        for (webhook, wanted) in refills_wanted(records, &claimed) {
            let rows = claim_due_in(tx, webhook, wanted, &claim.owner, now, claim.lease_until)?;
            refills.extend(rows.into_iter().map(|row| (webhook, row)));
        }
    }
    Ok(BackendRecorded {
        recorded: Recorded::new(became_failed, released),
        successors: claimed,
        refills,
    })
}

/// What releasing the batch's lines did: the webhooks whose queue got work, and the rows
/// claimed for the recording worker.
type ReleasedLines = (Vec<WebhookId>, Vec<(WebhookId, ClaimedRow)>);

/// The next delivery of every line the batch finished, made due or claimed for `successor`.
fn release_lines(
    tx: &rusqlite::Transaction<'_>,
    records: &[AttemptRecord],
    now: Timestamp,
    successor: Option<&SuccessorClaim>,
) -> Result<ReleasedLines, StoreError> {
    let mut released = Vec::new();
    let mut claimed = Vec::new();
    let lines = finished_lines(records);
    if lines.is_empty() {
        // No ordering-key line in the batch: the usual case costs nothing more.
        return Ok((released, claimed));
    }
    let mut release = tx.prepare_cached(Backend::Sqlite.sql(RELEASE_NEXT))?;
    let owner = successor.map(|s| s.owner.as_str());
    let lease_until = successor.map(|s| s.lease_until.millis());
    for (webhook, key, take_next) in lines {
        let mut rows = release.query(params![
            webhook.to_string(),
            key,
            now.millis(),
            owner.filter(|_| take_next),
            lease_until
        ])?;
        while let Some(row) = rows.next()? {
            let claimed_by: Option<String> = row.get(5)?;
            if claimed_by.is_some() {
                claimed.push((webhook, claimed_row(row)?));
            } else if !released.contains(&webhook) {
                released.push(webhook);
            }
        }
    }
    Ok((released, claimed))
}

/// Adds pending counters to their rows ([`crate::stats`]).
pub(crate) fn add_counters(
    tx: &rusqlite::Transaction<'_>,
    counters: &Counters,
) -> Result<(), StoreError> {
    let mut add = tx.prepare_cached(Backend::Sqlite.sql(ADD_COUNTERS.as_str()))?;
    for ((webhook, hour), c) in counters {
        let values = [Value::Text(webhook.to_string())].into_iter().chain(
            [*hour, slot(), c.attempts, c.failures]
                .into_iter()
                .chain(c.durations.iter().copied())
                .map(Value::Integer),
        );
        add.execute(rusqlite::params_from_iter(values))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_schema::sqlite_schema;
    use lwh_domain::{AttemptOutcome, DeliveryId, ErrorKind, WebhookId};

    const RULES: FailureRules = FailureRules {
        failed_after_ms: 24 * 3600 * 1000,
        probe_interval_ms: 60_000,
    };

    fn attempt(webhook: WebhookId, at: i64, delivered: bool) -> AttemptRecord {
        AttemptRecord {
            delivery_id: DeliveryId::generate(),
            webhook_id: webhook,
            number: 1,
            started_at: Timestamp::from_millis(at),
            outcome: AttemptOutcome {
                status_code: Some(if delivered { 204 } else { 500 }),
                error_kind: (!delivered).then_some(ErrorKind::HttpStatus),
                error: None,
                response_excerpt: None,
                retry_after_secs: None,
                duration_ms: 1,
                request_headers: None,
                response_headers: None,
            },
            next: if delivered {
                NextStep::Delivered
            } else {
                NextStep::RetryAt(Timestamp::from_millis(at + 60_000))
            },
            ordering_key: None,
            take_next: false,
            refill: false,
        }
    }

    /// Records one batch and reads the webhook's (last_triggered_at, failing_since, failures).
    fn record_and_read(
        db: &mut rusqlite::Connection,
        batch: &[AttemptRecord],
    ) -> (Option<i64>, Option<i64>, i64) {
        let tx = db.transaction().unwrap();
        record(&tx, batch, RULES, Timestamp::from_millis(1_000_000), None).unwrap();
        tx.commit().unwrap();
        db.query_row(
            "SELECT last_triggered_at, failing_since, failures_since_success FROM webhooks \
             WHERE id = ?1",
            [batch[0].webhook_id.to_string()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap()
    }

    #[test]
    fn a_healthy_webhooks_row_is_rewritten_at_most_once_a_second() {
        let mut db = sqlite_schema();
        let w = WebhookId::generate();
        db.execute(
            "INSERT INTO webhooks (id, url, secret_ciphertext, status, status_changed_at, \
             created_at, updated_at) VALUES (?1, 'http://x', x'00', 'active', 0, 0, 0)",
            [w.to_string()],
        )
        .unwrap();
        assert_eq!(
            record_and_read(&mut db, &[attempt(w, 10_000, true)]),
            (Some(10_000), None, 0)
        );
        // Within the second: the row is left alone.
        assert_eq!(
            record_and_read(&mut db, &[attempt(w, 10_900, true)]),
            (Some(10_000), None, 0)
        );
        assert_eq!(
            record_and_read(&mut db, &[attempt(w, 11_000, true)]),
            (Some(10_000), None, 0)
        );
        // Past it: written.
        assert_eq!(
            record_and_read(&mut db, &[attempt(w, 11_001, true)]),
            (Some(11_001), None, 0)
        );
        // Failures are always written, and a success within the same second still resets them.
        let failed = record_and_read(
            &mut db,
            &[attempt(w, 11_002, false), attempt(w, 11_003, false)],
        );
        assert_eq!(failed, (Some(11_003), Some(11_002), 2));
        assert_eq!(
            record_and_read(&mut db, &[attempt(w, 11_004, true)]),
            (Some(11_004), None, 0)
        );
        // A success followed by a failure in one batch: counted from that failure.
        let mixed = record_and_read(
            &mut db,
            &[attempt(w, 11_005, true), attempt(w, 11_006, false)],
        );
        assert_eq!(mixed, (Some(11_006), Some(11_006), 1));
    }
}
