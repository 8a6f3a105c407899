//! SQLite's ingestion, on the writer thread: the keys and subscribers read and the rows
//! written with cached single-row statements inside the thread's transaction (no round trip
//! per statement there, so multi-row texts would only add parsing).

use lwh_domain::{Timestamp, WebhookId};

use crate::connect::Durability;
use crate::decode;
use crate::dialect::Backend;
use crate::error::StoreError;
use crate::ingest::{
    ordering, plan, status, still_idempotent, IngestClaim, IngestPlan, Subscriber,
    DELIVERIES_INSERT, EVENTS_INSERT, FIND_IDEMPOTENT, FREE_IDEMPOTENCY_KEY, SUBSCRIBERS,
};
use crate::model::{IngestOutcome, NewEvent};
use crate::ordering::LAST_OF_KEY;
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
                |webhook, key| last_of_line(tx, webhook, key),
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

fn subscribers(tx: &rusqlite::Transaction<'_>, slug: &str) -> Result<Vec<Subscriber>, StoreError> {
    let mut select = tx.prepare_cached(Backend::Sqlite.sql(SUBSCRIBERS))?;
    let mut cursor = select.query([slug])?;
    let mut found = Vec::new();
    while let Some(row) = cursor.next()? {
        let text: String = row.get(1)?;
        let order: String = row.get(2)?;
        found.push((
            decode::sqlite_parsed(row, 0)?,
            status(&text)?,
            ordering(&order)?,
        ));
    }
    Ok(found)
}

/// The last number of a line's unfinished deliveries (this thread is the only writer, so the
/// line cannot change before the transaction commits).
fn last_of_line(
    tx: &rusqlite::Transaction<'_>,
    webhook: WebhookId,
    key: &str,
) -> Result<Option<i64>, StoreError> {
    let mut select = tx.prepare_cached(Backend::Sqlite.sql(LAST_OF_KEY))?;
    Ok(select.query_row(rusqlite::params![webhook.to_string(), key], |r| r.get(0))?)
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
        "{DELIVERIES_INSERT}(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ))?;
    let owner = claim.map(|c| c.owner.as_str());
    for d in &plan.deliveries {
        let (key, seq) = match &d.line {
            Some((key, seq)) => (Some(key.as_str()), Some(*seq)),
            None => (None, None),
        };
        insert_delivery.execute(rusqlite::params![
            d.id.to_string(),
            d.webhook_id.to_string(),
            d.event_id.to_string(),
            d.due,
            owner.filter(|_| d.handed_over),
            now.millis(),
            now.millis(),
            key,
            seq,
            d.status(),
        ])?;
    }
    Ok(())
}
