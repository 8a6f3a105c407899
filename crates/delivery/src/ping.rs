//! `ping`: the Test button and the Failed-webhook probe. Sent at once, bypassing the queue,
//! with the same signing and SSRF checks, and logged like any delivery.

use lwh_app::webhooks::WebhookEdit;
use lwh_app::{App, AppError};
use lwh_domain::catalogue::PING_EVENT;
use lwh_domain::service_events::Recovery;
use lwh_domain::NextStep;
use lwh_domain::{AttemptOutcome, DeliveryId, EventId, Timestamp, WebhookId, WebhookStatus};
use lwh_storage::{AttemptRecord, NewEvent};
use serde_json::json;

use crate::recorder::failure_rules;
use crate::sender::{Outgoing, Sender};
use crate::targets;

/// The outcome of a ping, as the Test button shows it.
#[derive(Debug, Clone)]
pub struct PingResult {
    /// The delivery that was logged.
    pub delivery_id: DeliveryId,
    /// What came back.
    pub outcome: AttemptOutcome,
    /// True when the ping re-activated a Failed webhook.
    pub reactivated: bool,
}

/// Why a ping is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PingKind {
    /// An admin pressed Test.
    Test,
    /// The periodic probe of a Failed webhook.
    Probe,
}

/// Sends a `ping` to a webhook now and records it. A 2xx makes a Failed webhook Active again,
/// releases what it held and reports `webhook_recovered` (how: the ping's kind).
pub async fn send_ping(
    app: &App,
    sender: &Sender,
    webhook_id: WebhookId,
    kind: PingKind,
) -> Result<PingResult, AppError> {
    let webhook = app.get_webhook(webhook_id).await?;
    let target = targets::load(app, webhook_id)
        .await
        .ok_or_else(|| AppError::Internal(format!("webhook {webhook_id} cannot be loaded")))?;
    let now = Timestamp::now();
    let event_id = EventId::generate();
    let data = json!({
        "webhook_id": webhook_id.to_string(),
        "message": "Test delivery from Learnomy: your endpoint is reachable and can verify the signature.",
    });
    let site_url = Some(app.settings().site_url.as_str());
    let payload: std::sync::Arc<[u8]> =
        lwh_domain::payload::render(event_id, PING_EVENT, now, site_url, &data).into();
    let delivery_id = DeliveryId::generate();
    let event = NewEvent {
        id: event_id,
        slug: PING_EVENT.to_owned(),
        payload: payload.clone(),
        idempotency_key: None,
        about: None,
        ordering_key: None,
    };
    app.store()
        .insert_ping(&event, delivery_id, webhook_id, now)
        .await?;
    let outcome = sender
        .send(
            &target,
            &Outgoing {
                delivery_id,
                event_id,
                event: PING_EVENT,
                payload: &payload,
            },
        )
        .await;
    let delivered = outcome.delivered();
    let record = AttemptRecord {
        delivery_id,
        webhook_id,
        number: 1,
        started_at: now,
        outcome: outcome.clone(),
        next: NextStep::after_ping(&outcome),
        ordering_key: None,
        take_next: false,
        refill: false,
    };
    app.store()
        .record_attempts(&[record], failure_rules(app), Timestamp::now(), None)
        .await?;
    // Counted now: a ping can come from a process without a delivery engine (the CLI).
    if let Err(e) = app.store().flush_stats().await {
        tracing::warn!(error = %e, "hourly stats not written after a ping");
    }
    let reactivated = delivered && webhook.status == WebhookStatus::Failed;
    if reactivated {
        let how = match kind {
            PingKind::Test => Recovery::Test,
            PingKind::Probe => Recovery::Probe,
        };
        app.update_webhook_as(
            webhook_id,
            WebhookEdit {
                status: Some(WebhookStatus::Active),
                ..WebhookEdit::default()
            },
            how,
        )
        .await?;
        tracing::info!(webhook_id = %webhook_id, "webhook answered a ping and is Active again");
    }
    Ok(PingResult {
        delivery_id,
        outcome,
        reactivated,
    })
}
