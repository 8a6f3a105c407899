//! PostgreSQL's ingestion: the keys and subscribers read, then the plan written in one
//! statement (a data-modifying WITH) when it fits — one round trip fewer per transaction —
//! else in multi-row INSERTs.

use std::collections::HashMap;

use lwh_domain::{Timestamp, WebhookId};

use crate::connect::{Store, WriteTx};
use crate::decode;
use crate::dialect::keep_prepared;
use crate::error::StoreError;
use crate::ingest::{
    lines, ordering, plan, status, still_idempotent, DeliveryRow, IngestClaim, IngestPlan,
    Subscriber, DELIVERIES_INSERT, DELIVERY_ROWS_PER_INSERT, EVENTS_INSERT, EVENT_ROWS_PER_INSERT,
    FIND_IDEMPOTENT, FREE_IDEMPOTENCY_KEY, SUBSCRIBERS,
};
use crate::ordering::{key_lock, lock_keys_sql};

/// Lines read in one statement (two values each).
const LINES_PER_READ: usize = 500;

/// [`crate::ordering::LAST_OF_KEY`] for the line `(v.w, v.k)` of a VALUES list.
const LAST_OF_LINE: &str = "SELECT MAX(ordering_seq) FROM deliveries \
     WHERE webhook_id = v.w AND ordering_key = v.k AND ordering_key IS NOT NULL \
     AND status IN ('pending', 'retrying', 'waiting')";
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
    let mut subscribers: HashMap<&str, Vec<Subscriber>> = HashMap::new();
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
    // The lines keyed events join: locked (placing and releasing take turns per line), then
    // read.
    let lines = lines(events, &subscribers);
    let mut line_ends: HashMap<(WebhookId, &str), Option<i64>> = HashMap::new();
    if let Some(lock) = lock_keys_sql(lines.iter().map(|(w, k)| key_lock(*w, k)).collect()) {
        sqlx::query(&lock)
            .persistent(false)
            .execute(&mut *tx)
            .await?;
        for chunk in lines.chunks(LINES_PER_READ) {
            let sql = format!(
                "SELECT CAST(v.i AS BIGINT) AS i, ({LAST_OF_LINE}) AS last FROM (VALUES {}) AS v(i, w, k)",
                (0..chunk.len())
                    .map(|i| format!("({i}, ${}, ${})", 2 * i + 1, 2 * i + 2))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let mut query = sqlx::query(&sql).persistent(false);
            for (webhook, key) in chunk {
                query = query.bind(webhook.to_string()).bind(*key);
            }
            for row in query.fetch_all(&mut *tx).await? {
                let i = decode::int(&row, "i")?;
                let line = chunk
                    .get(i as usize)
                    .ok_or_else(|| StoreError::Corrupt(format!("line {i} not asked for")))?;
                line_ends.insert(*line, decode::opt_int(&row, "last")?);
            }
        }
    }
    let plan = plan(
        events,
        now,
        claim,
        |key| Ok(known.get(key).cloned().flatten()),
        |slug| Ok(subscribers.get(slug).cloned().unwrap_or_default()),
        |webhook, key| Ok(line_ends.get(&(webhook, key)).copied().flatten()),
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
            values_in_order(rows.len(), 10, "", 1 + 6 * event_rows.len()),
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
                values_in_order(chunk.len(), 10, "", 1)
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
) -> Result<Vec<Subscriber>, StoreError> {
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
                ordering(&decode::text(r, "ordering")?)?,
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

/// Binds the ten values of each delivery row, in [`DELIVERIES_INSERT`]'s column order.
fn bind_deliveries<'q>(
    mut query: AnyQuery<'q>,
    rows: &'q [DeliveryRow],
    owner: Option<&'q str>,
    now: Timestamp,
) -> AnyQuery<'q> {
    for d in rows {
        query = query
            .bind(d.id.to_string())
            .bind(d.webhook_id.to_string())
            .bind(d.event_id.to_string())
            .bind(d.due)
            .bind(owner.filter(|_| d.handed_over))
            .bind(now.millis())
            .bind(now.millis())
            .bind(d.line.as_ref().map(|(key, _)| key.as_str()))
            .bind(d.line.as_ref().map(|(_, seq)| *seq))
            .bind(d.status());
    }
    query
}
