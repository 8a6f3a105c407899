//! Health at a glance: a webhook's attempts, success rate and durations over the last day or
//! week, from the hourly counters the store keeps (never a scan of the attempts), on every
//! plan — for the stats endpoint and the console's charts.

use std::collections::BTreeMap;

use lwh_domain::stats::{summarize, Window, WindowStats};
use lwh_domain::{Timestamp, WebhookId};

use crate::{App, AppError};

impl App {
    /// `webhook`'s figures for the window ending now.
    pub async fn webhook_stats(
        &self,
        webhook: WebhookId,
        window: Window,
    ) -> Result<WindowStats, AppError> {
        self.get_webhook(webhook).await?;
        let now = Timestamp::now();
        let rows = self
            .store()
            .webhook_stats(webhook, window.first_hour(now))
            .await?;
        Ok(summarize(window, now, &rows))
    }

    /// Every webhook's figures for the window ending now, in one read (the console's table);
    /// webhooks without attempts in it are absent.
    pub async fn all_webhook_stats(
        &self,
        window: Window,
    ) -> Result<BTreeMap<WebhookId, WindowStats>, AppError> {
        let now = Timestamp::now();
        let all = self
            .store()
            .all_webhook_stats(window.first_hour(now))
            .await?;
        Ok(all
            .into_iter()
            .map(|(webhook, rows)| (webhook, summarize(window, now, &rows)))
            .collect())
    }
}
