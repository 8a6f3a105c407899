//! The delivery log (Pro): pages, detail, redelivery and recovery.

use lwh_domain::{DeliveryId, DeliveryStatus, Timestamp, WebhookId};
use lwh_storage::{AttemptRow, DeliverySummary};

use crate::app::App;
use crate::error::AppError;

/// Largest page of the delivery log.
pub const MAX_PAGE: usize = 100;

/// One page of a webhook's log.
#[derive(Debug)]
pub struct DeliveryPage {
    /// Newest first.
    pub deliveries: Vec<DeliverySummary>,
    /// Pass back as `before` for the next page; `None` on the last page.
    pub next_before: Option<DeliveryId>,
}

impl App {
    fn require_log(&self) -> Result<(), AppError> {
        if self.settings().plan.has_delivery_log() {
            Ok(())
        } else {
            Err(AppError::ProRequired("The delivery log"))
        }
    }

    /// A page of a webhook's deliveries, newest first.
    pub async fn delivery_log(
        &self,
        webhook: WebhookId,
        status: Option<DeliveryStatus>,
        before: Option<DeliveryId>,
        limit: usize,
    ) -> Result<DeliveryPage, AppError> {
        self.require_log()?;
        self.get_webhook(webhook).await?;
        let limit = limit.clamp(1, MAX_PAGE);
        let mut deliveries = self
            .store()
            .list_deliveries(webhook, status, before, limit + 1)
            .await?;
        let more = deliveries.len() > limit;
        deliveries.truncate(limit);
        let next_before = if more {
            deliveries.last().map(|d| d.id)
        } else {
            None
        };
        Ok(DeliveryPage {
            deliveries,
            next_before,
        })
    }

    /// One delivery with its payload and attempts.
    pub async fn delivery(
        &self,
        id: DeliveryId,
    ) -> Result<(DeliverySummary, Vec<u8>, Vec<AttemptRow>), AppError> {
        self.require_log()?;
        self.store()
            .get_delivery(id)
            .await?
            .ok_or(AppError::NotFound("delivery"))
    }

    /// Queues a finished delivery for a new series of attempts.
    pub async fn redeliver(&self, id: DeliveryId) -> Result<DeliverySummary, AppError> {
        self.require_log()?;
        let (current, _, _) = self
            .store()
            .get_delivery(id)
            .await?
            .ok_or(AppError::NotFound("delivery"))?;
        if current.status.is_queued() {
            return Err(AppError::field(
                "delivery",
                "is still queued; it will be attempted as scheduled",
            ));
        }
        // Queued again: new deliveries must not overtake it, and the worker claims it now.
        self.changing_webhook(
            current.webhook_id,
            self.store().redeliver(id, Timestamp::now()),
            |_| true,
        )
        .await?;
        let (summary, _, _) = self
            .store()
            .get_delivery(id)
            .await?
            .ok_or(AppError::NotFound("delivery"))?;
        Ok(summary)
    }

    /// Redelivers every Failed delivery of `webhook` created in `[since, until)` (Pro): a new
    /// attempt series each, due now. Returns how many were queued.
    pub async fn recover(
        &self,
        webhook: WebhookId,
        since: Timestamp,
        until: Option<Timestamp>,
    ) -> Result<u64, AppError> {
        self.check_window(webhook, since, until).await?;
        let n = self
            .changing_webhook(
                webhook,
                self.store()
                    .recover(webhook, since, until, Timestamp::now()),
                |n| *n > 0,
            )
            .await?;
        tracing::info!(webhook_id = %webhook, redelivered = n, "failed deliveries queued again");
        Ok(n)
    }

    /// How many deliveries [`App::recover`] would queue for that window, to confirm first.
    pub async fn recoverable(
        &self,
        webhook: WebhookId,
        since: Timestamp,
        until: Option<Timestamp>,
    ) -> Result<u64, AppError> {
        self.check_window(webhook, since, until).await?;
        Ok(self.store().recoverable(webhook, since, until).await?)
    }

    async fn check_window(
        &self,
        webhook: WebhookId,
        since: Timestamp,
        until: Option<Timestamp>,
    ) -> Result<(), AppError> {
        self.require_log()?;
        if until.is_some_and(|until| until <= since) {
            return Err(AppError::field("until", "must be after since"));
        }
        self.get_webhook(webhook).await?;
        Ok(())
    }
}
