//! SQLite's ingestion, on the writer thread: the keys and subscribers read and the rows
//! written with cached single-row statements inside the thread's transaction (no round trip
//! per statement there, so multi-row texts would only add parsing).

use lwh_domain::{Timestamp, WebhookId, WebhookStatus};

use crate::connect::Durability;
use crate::decode;
use crate::dialect::Backend;
use crate::error::StoreError;
use crate::ingest::{
    plan, status, still_idempotent, IngestClaim, IngestPlan, DELIVERIES_INSERT, EVENTS_INSERT,
    FIND_IDEMPOTENT, FREE_IDEMPOTENCY_KEY, SUBSCRIBERS,
};
use crate::model::{IngestOutcome, NewEvent};
use crate::sqlite::writer::SqliteWriter;

/// Plans and writes one ingestion in one transaction of the writer thread (durable: the
/// caller answers 202 only after the WAL is synced).
pub(crate) async fn run(
    writer: &SqliteWriter,
    events: &[NewEvent],
    now: Timestamp,
    claim: Option<&IngestClaim>,
) -> Result<IngestPlan, StoreError> {
    let owned = events.to_vec();
    let claim = claim.cloned();
    writer
        .transaction(Durability::Full, move |tx| {
            let plan = plan(
                &owned,
                now,
                claim.as_ref(),
                |key| find_idempotent(tx, key, now),
                |slug| subscribers(tx, slug),
            )?;
            insert(tx, &owned, &plan, claim.as_ref(), now)?;
            Ok(plan)
        })
        .await
}

fn find_idempotent(
    tx: &rusqlite::Transaction<'_>,
    key: &str,
    now: Timestamp,
) -> Result<Option<IngestOutcome>, StoreError> {
    let mut find = tx.prepare_cached(Backend::Sqlite.sql(FIND_IDEMPOTENT))?;
    let mut cursor = find.query([key])?;
    let Some(row) = cursor.next()? else {
        return Ok(None);
    };
    let found = (decode::sqlite_parsed(row, 0)?, row.get(1)?, row.get(2)?);
    if let Some(outcome) = still_idempotent(found, now) {
        return Ok(Some(outcome));
    }
    tx.prepare_cached(Backend::Sqlite.sql(FREE_IDEMPOTENCY_KEY))?
        .execute([key])?;
    Ok(None)
}

fn subscribers(
    tx: &rusqlite::Transaction<'_>,
    slug: &str,
) -> Result<Vec<(WebhookId, WebhookStatus)>, StoreError> {
    let mut select = tx.prepare_cached(Backend::Sqlite.sql(SUBSCRIBERS))?;
    let mut cursor = select.query([slug])?;
    let mut found = Vec::new();
    while let Some(row) = cursor.next()? {
        let text: String = row.get(1)?;
        found.push((decode::sqlite_parsed(row, 0)?, status(&text)?));
    }
    Ok(found)
}

/// Inserts the plan's rows with one cached single-row statement per table: on the writer
/// thread a statement costs no round trip, so multi-row texts would only add parsing.
fn insert(
    tx: &rusqlite::Transaction<'_>,
    events: &[NewEvent],
    plan: &IngestPlan,
    claim: Option<&IngestClaim>,
    now: Timestamp,
) -> Result<(), StoreError> {
    let mut insert_event = tx.prepare_cached(&format!("{EVENTS_INSERT}(?, ?, ?, ?, ?, ?)"))?;
    for (index, deliveries) in &plan.events {
        let event = &events[*index];
        insert_event.execute(rusqlite::params![
            event.id.to_string(),
            event.slug,
            &*event.payload,
            event.idempotency_key,
            deliveries,
            now.millis(),
        ])?;
    }
    let mut insert_delivery = tx.prepare_cached(&format!(
        "{DELIVERIES_INSERT}(?, ?, ?, ?, ?, ?, ?, 'pending')"
    ))?;
    let owner = claim.map(|c| c.owner.as_str());
    for (id, webhook_id, event_id, due, handed_over) in &plan.deliveries {
        insert_delivery.execute(rusqlite::params![
            id.to_string(),
            webhook_id.to_string(),
            event_id.to_string(),
            due,
            owner.filter(|_| *handed_over),
            now.millis(),
            now.millis(),
        ])?;
    }
    Ok(())
}
