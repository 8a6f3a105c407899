//! Sending service events (`lwh_domain::service_events`): a webhook became Failed, recovered,
//! or one of its deliveries used its last attempt. They are ingested like any event — the same
//! queue, signing and SSRF policy — for the webhooks subscribed to them, except the one they
//! are about.
//!
//! They are reported after the change they describe has committed, by the process that made
//! it. Reporting never fails the caller: a service event that cannot be stored is logged and
//! counted (`learnomy_webhooks_service_events_total{result="failed"}`), and the change itself
//! stands.

use lwh_domain::service_events::{
    exhausted_data, failed_data, recovered_data, reports_exhaustion, Exhausted, Recovery,
    DELIVERY_EXHAUSTED, WEBHOOK_FAILED, WEBHOOK_RECOVERED,
};
use lwh_domain::{DeliveryId, DeliveryStatus, EventId, Timestamp, WebhookId};
use lwh_storage::NewEvent;

use crate::app::App;
use crate::error::AppError;
use crate::mail::Notice;

/// A JSON value as mail text (`-` for null).
fn text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}

impl App {
    /// Reports that `webhook` became Failed: why, and failing since when.
    pub async fn report_failed(&self, webhook: WebhookId) {
        let found = async {
            let w = self.get_webhook(webhook).await?;
            let activity = self.webhook_activity(webhook).await?;
            Ok::<_, AppError>(failed_data(
                webhook,
                &w.url,
                w.status_reason.as_deref(),
                activity.failing_since.or(Some(w.status_changed_at)),
            ))
        };
        match found.await {
            Ok(data) => {
                let notice = Notice {
                    subject: format!("Webhook failed: {}", text(&data["url"])),
                    lines: vec![
                        format!("The webhook to {} is Failed.", text(&data["url"])),
                        String::new(),
                        format!("Why: {}", text(&data["reason"])),
                        format!("Failing since: {}", text(&data["since"])),
                        String::new(),
                        "Its deliveries are held, none is lost, and it is probed regularly. Fix \
                         the endpoint, then press Test or Re-activate to release what it holds."
                            .to_owned(),
                    ],
                };
                self.send_service_event(WEBHOOK_FAILED, webhook, data).await;
                self.notify_by_mail(webhook, notice).await;
            }
            Err(e) => self.service_event_failed(WEBHOOK_FAILED, webhook, &e.to_string()),
        }
    }

    /// Reports that `webhook` is Active again after being Failed, and how.
    pub async fn report_recovered(&self, webhook: WebhookId, url: &str, how: Recovery) {
        let data = recovered_data(webhook, url, how);
        self.send_service_event(WEBHOOK_RECOVERED, webhook, data)
            .await;
        let notice = Notice {
            subject: format!("Webhook recovered: {url}"),
            lines: vec![
                format!(
                    "The webhook to {url} is Active again ({}).",
                    match how {
                        Recovery::Probe => "its endpoint answered the periodic probe",
                        Recovery::Test => "its endpoint answered a Test",
                        Recovery::Admin => "an admin re-activated it",
                    }
                ),
                String::new(),
                "The deliveries it held are being sent, oldest first.".to_owned(),
            ],
        };
        self.notify_by_mail(webhook, notice).await;
    }

    /// Reports that `delivery` used its last attempt — unless it carried a service event or a
    /// ping, or it is not Failed after all (cancelled or redelivered meanwhile).
    pub async fn report_exhausted(&self, delivery: DeliveryId) {
        let found = async {
            let Some(d) = self.store().delivery_summary(delivery).await? else {
                return Ok(None);
            };
            if d.status != DeliveryStatus::Failed || !reports_exhaustion(&d.event) {
                return Ok(None);
            }
            let w = self.get_webhook(d.webhook_id).await?;
            let data = exhausted_data(&Exhausted {
                webhook: d.webhook_id,
                url: &w.url,
                delivery,
                event_id: d.event_id,
                event: &d.event,
                attempts: d.attempts,
                last_status_code: d.last_status_code,
                last_error: d.last_error.as_deref(),
            });
            Ok::<_, AppError>(Some((d.webhook_id, data)))
        };
        match found.await {
            Ok(Some((webhook, data))) => {
                let notice = Notice {
                    subject: format!("Delivery failed for good: {}", text(&data["url"])),
                    lines: vec![
                        format!(
                            "A {} delivery to {} used its last attempt ({} in all) without success.",
                            text(&data["event"]),
                            text(&data["url"]),
                            data["attempts"]
                        ),
                        String::new(),
                        format!("Last answer: {}", match data["last_status_code"].as_i64() {
                            Some(code) => format!("HTTP {code}"),
                            None => text(&data["last_error"]),
                        }),
                        format!("Delivery: {}", text(&data["delivery_id"])),
                        String::new(),
                        "It stays in the Delivery Log, where it can be redelivered.".to_owned(),
                    ],
                };
                self.send_service_event(DELIVERY_EXHAUSTED, webhook, data)
                    .await;
                self.notify_by_mail(webhook, notice).await;
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(delivery_id = %delivery, error = %e, "cannot report an exhausted delivery");
                metrics::counter!("learnomy_webhooks_service_events_total", "event" => DELIVERY_EXHAUSTED, "result" => "failed")
                    .increment(1);
            }
        }
    }

    async fn send_service_event(
        &self,
        slug: &'static str,
        about: WebhookId,
        data: serde_json::Value,
    ) {
        let id = EventId::generate();
        let site_url = Some(self.settings().site_url.as_str());
        let event = NewEvent {
            id,
            payload: lwh_domain::payload::render(id, slug, Timestamp::now(), site_url, &data)
                .into(),
            slug: slug.to_owned(),
            idempotency_key: None,
            about: Some(about),
            ordering_key: None,
        };
        match self.committer().ingest(vec![event]).await {
            Ok(outcomes) => {
                let deliveries: u64 = outcomes.iter().map(|o| o.deliveries).sum();
                tracing::info!(event = slug, event_id = %id, webhook_id = %about, deliveries, "service event sent");
                metrics::counter!("learnomy_webhooks_service_events_total", "event" => slug, "result" => "sent")
                    .increment(1);
            }
            Err(e) => self.service_event_failed(slug, about, &e.to_string()),
        }
    }

    fn service_event_failed(&self, slug: &'static str, about: WebhookId, error: &str) {
        tracing::error!(event = slug, webhook_id = %about, error, "cannot send a service event");
        metrics::counter!("learnomy_webhooks_service_events_total", "event" => slug, "result" => "failed")
            .increment(1);
    }
}
