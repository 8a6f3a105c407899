//! Event ingestion: validate, render the payload once, store the event with its deliveries,
//! wake the worker.

use lwh_domain::{EventId, FieldError, Timestamp};
use lwh_storage::{IngestOutcome, NewEvent};

use crate::app::App;
use crate::error::AppError;

/// Most events in one batch request.
pub const MAX_BATCH_EVENTS: usize = 500;

/// An event as the LMS reports it.
#[derive(Debug, Clone)]
pub struct IncomingEvent {
    /// Catalogue slug.
    pub event: String,
    /// Event data (a JSON object).
    pub data: serde_json::Value,
    /// Optional idempotency key (24 h).
    pub idempotency_key: Option<String>,
    /// Optional ordering key: `by_key` webhooks receive the events with the same key one at a
    /// time, in acceptance order.
    pub ordering_key: Option<String>,
}

impl App {
    /// Accepts events atomically: either all are stored with their deliveries, or none (the
    /// problem names the index of the first bad one when `batch` is true). Concurrent requests
    /// share transactions through the group committer.
    pub async fn ingest(
        &self,
        events: Vec<IncomingEvent>,
        batch: bool,
    ) -> Result<Vec<IngestOutcome>, AppError> {
        if batch && events.len() > MAX_BATCH_EVENTS {
            return Err(AppError::field(
                "events",
                format!("send at most {MAX_BATCH_EVENTS} events per batch"),
            ));
        }
        if batch && events.is_empty() {
            return Err(AppError::field("events", "send at least one event"));
        }
        let prefix = |i: usize| {
            if batch {
                format!("events[{i}].")
            } else {
                String::new()
            }
        };
        let now = Timestamp::now();
        let site_url = Some(self.settings().site_url.as_str());
        let mut rows = Vec::with_capacity(events.len());
        for (i, e) in events.into_iter().enumerate() {
            if lwh_domain::service_events::is_service_event(&e.event) {
                return Err(AppError::UnknownEvent(FieldError::new(
                    format!("{}event", prefix(i)),
                    format!(
                        "{:?} is a service event: only the service sends it",
                        e.event
                    ),
                )));
            }
            if !self.catalogue().contains(&e.event) {
                let message = if lwh_domain::Catalogue::is_builtin_pro_event(&e.event) {
                    format!("{:?} is a Pro event and the plan is Free", e.event)
                } else {
                    format!("{:?} is not an event of the catalogue", e.event)
                };
                return Err(AppError::UnknownEvent(FieldError::new(
                    format!("{}event", prefix(i)),
                    message,
                )));
            }
            if !e.data.is_object() {
                return Err(AppError::field(
                    format!("{}data", prefix(i)),
                    "must be a JSON object",
                ));
            }
            if let Some(key) = &e.idempotency_key {
                if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(AppError::field(
                        format!("{}idempotency_key", prefix(i)),
                        "must be 1 to 255 printable ASCII characters",
                    ));
                }
            }
            if let Some(key) = &e.ordering_key {
                lwh_domain::ordering::check_ordering_key(
                    &format!("{}ordering_key", prefix(i)),
                    key,
                )
                .map_err(|e| AppError::Validation(vec![e]))?;
            }
            let id = EventId::generate();
            rows.push(NewEvent {
                id,
                payload: lwh_domain::payload::render(id, &e.event, now, site_url, &e.data).into(),
                slug: e.event,
                idempotency_key: e.idempotency_key,
                about: None,
                ordering_key: e.ordering_key,
            });
        }
        // The committer hands deliveries to this process's worker or wakes its claim loop.
        let outcomes = self.committer().ingest(rows).await?;
        metrics::counter!("learnomy_webhooks_events_ingested_total")
            .increment(outcomes.iter().filter(|o| !o.duplicate).count() as u64);
        Ok(outcomes)
    }
}
