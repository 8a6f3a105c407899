//! PostgreSQL's ingestion: the keys and subscribers read, then the plan written in one
//! statement (a data-modifying WITH) when it fits — one round trip fewer per transaction —
//! else in multi-row INSERTs.

use std::collections::HashMap;

use lwh_domain::{Timestamp, WebhookId, WebhookStatus};

use crate::connect::{Store, WriteTx};
use crate::decode;
use crate::dialect::keep_prepared;
use crate::error::StoreError;
use crate::ingest::{
    plan, status, still_idempotent, DeliveryRow, IngestClaim, IngestPlan, DELIVERIES_INSERT,
    DELIVERY_ROWS_PER_INSERT, EVENTS_INSERT, EVENT_ROWS_PER_INSERT, FIND_IDEMPOTENT,
    FREE_IDEMPOTENCY_KEY, SUBSCRIBERS,
};
use crate::model::{IngestOutcome, NewEvent};

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// PostgreSQL: reads the keys and subscribers, then writes the plan — in one statement
/// (a data-modifying WITH) when it fits, one round trip fewer per transaction.
pub(crate) async fn run(
    store: &Store,
    events: &[NewEvent],
    now: Timestamp,
    claim: Option<&IngestClaim>,
) -> Result<IngestPlan, StoreError> {
    let mut tx = store.begin_write().await?;
    let mut known: HashMap<&str, Option<IngestOutcome>> = HashMap::new();
    let mut subscribers: HashMap<&str, Vec<(WebhookId, WebhookStatus)>> = HashMap::new();
    for event in events {
        if let Some(key) = event.idempotency_key.as_deref() {
            if !known.contains_key(key) {
                let found = find_idempotent(store, &mut tx, key, now).await?;
                known.insert(key, found);
            }
            // A replay creates nothing: its subscribers are not needed.
            if matches!(known.get(key), Some(Some(_))) {
                continue;
            }
        }
        if !subscribers.contains_key(event.slug.as_str()) {
            let found = subscribers_of(store, &mut tx, &event.slug).await?;
            subscribers.insert(event.slug.as_str(), found);
        }
    }
    let plan = plan(
        events,
        now,
        claim,
        |key| Ok(known.get(key).cloned().flatten()),
        |slug| Ok(subscribers.get(slug).cloned().unwrap_or_default()),
    )?;
    let owner = claim.map(|c| c.owner.as_str());
    let event_rows: Vec<(&NewEvent, i64)> =
        plan.events.iter().map(|(i, n)| (&events[*i], *n)).collect();
    let rows = &plan.deliveries;
    if !rows.is_empty()
        && event_rows.len() <= EVENT_ROWS_PER_INSERT
        && rows.len() <= DELIVERY_ROWS_PER_INSERT
    {
        // The text is not interned: row counts vary.
        let sql = format!(
            "WITH stored_events AS ({EVENTS_INSERT}{}) {DELIVERIES_INSERT}{}",
            values_in_order(event_rows.len(), 6, "", 1),
            values_in_order(rows.len(), 7, ", 'pending'", 1 + 6 * event_rows.len()),
        );
        let query = bind_deliveries(
            bind_events(sqlx::query(&sql), &event_rows, now),
            rows,
            owner,
            now,
        )
        .persistent(keep_prepared(event_rows.len() + rows.len()));
        query.execute(&mut *tx).await?;
    } else {
        for chunk in event_rows.chunks(EVENT_ROWS_PER_INSERT) {
            let sql = format!("{EVENTS_INSERT}{}", values_in_order(chunk.len(), 6, "", 1));
            let query = bind_events(sqlx::query(store.backend.sql_owned(sql)), chunk, now)
                .persistent(keep_prepared(chunk.len()));
            query.execute(&mut *tx).await?;
        }
        for chunk in rows.chunks(DELIVERY_ROWS_PER_INSERT) {
            let sql = format!(
                "{DELIVERIES_INSERT}{}",
                values_in_order(chunk.len(), 7, ", 'pending'", 1)
            );
            let query =
                bind_deliveries(sqlx::query(store.backend.sql_owned(sql)), chunk, owner, now)
                    .persistent(keep_prepared(chunk.len()));
            query.execute(&mut *tx).await?;
        }
    }
    tx.commit().await?;
    Ok(plan)
}

async fn find_idempotent(
    store: &Store,
    tx: &mut WriteTx,
    key: &str,
    now: Timestamp,
) -> Result<Option<IngestOutcome>, StoreError> {
    let row = sqlx::query(store.backend.sql(FIND_IDEMPOTENT))
        .bind(key)
        .fetch_optional(&mut **tx)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let found = (
        decode::parsed(&row, "id")?,
        decode::int(&row, "deliveries")?,
        decode::int(&row, "created_at")?,
    );
    if let Some(outcome) = still_idempotent(found, now) {
        return Ok(Some(outcome));
    }
    sqlx::query(store.backend.sql(FREE_IDEMPOTENCY_KEY))
        .bind(key)
        .execute(&mut **tx)
        .await?;
    Ok(None)
}

async fn subscribers_of(
    store: &Store,
    tx: &mut WriteTx,
    slug: &str,
) -> Result<Vec<(WebhookId, WebhookStatus)>, StoreError> {
    let found = sqlx::query(store.backend.sql(SUBSCRIBERS))
        .bind(slug)
        .fetch_all(&mut **tx)
        .await?;
    found
        .iter()
        .map(|r| {
            Ok((
                decode::parsed(r, "id")?,
                status(&decode::text(r, "status")?)?,
            ))
        })
        .collect()
}

/// `($first, …{constants}), (…), …` for `rows` rows of `k` bound values, numbered in order
/// so SQLite binds them positionally.
fn values_in_order(rows: usize, k: usize, constants: &str, first: usize) -> String {
    (0..rows)
        .map(|r| {
            format!(
                "({}{constants})",
                crate::dialect::placeholders(k, first + r * k)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Binds the six values of each event row, in [`EVENTS_INSERT`]'s column order.
fn bind_events<'q>(
    mut query: AnyQuery<'q>,
    rows: &'q [(&NewEvent, i64)],
    now: Timestamp,
) -> AnyQuery<'q> {
    for (event, deliveries) in rows {
        query = query
            .bind(event.id.to_string())
            .bind(&event.slug)
            .bind(&*event.payload)
            .bind(event.idempotency_key.clone())
            .bind(*deliveries)
            .bind(now.millis());
    }
    query
}

/// Binds the seven values of each delivery row, in [`DELIVERIES_INSERT`]'s column order.
fn bind_deliveries<'q>(
    mut query: AnyQuery<'q>,
    rows: &'q [DeliveryRow],
    owner: Option<&'q str>,
    now: Timestamp,
) -> AnyQuery<'q> {
    for (id, webhook_id, event_id, due, handed_over) in rows {
        query = query
            .bind(id.to_string())
            .bind(webhook_id.to_string())
            .bind(event_id.to_string())
            .bind(Some(*due))
            .bind(owner.filter(|_| *handed_over))
            .bind(now.millis())
            .bind(now.millis());
    }
    query
}
