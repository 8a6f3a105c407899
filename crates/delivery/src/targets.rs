//! Each webhook's URL and decrypted secret, cached per worker and refreshed when the webhook's
//! `updated_at` moves (an edit in any process).

use std::collections::HashMap;
use std::sync::Arc;

use lwh_app::App;
use lwh_domain::{Timestamp, WebhookId};

use crate::sender::Target;

/// Cached targets of the Active webhooks.
#[derive(Default)]
pub struct Targets {
    cached: HashMap<WebhookId, (Timestamp, Arc<Target>)>,
}

impl Targets {
    /// Brings the cache in line with the active list; returns the webhooks that can be served.
    pub async fn refresh(
        &mut self,
        app: &App,
        active: &[(WebhookId, Timestamp)],
    ) -> Vec<WebhookId> {
        self.cached
            .retain(|id, _| active.iter().any(|(a, _)| a == id));
        let mut ready = Vec::with_capacity(active.len());
        for (id, updated_at) in active {
            let fresh = self.cached.get(id).is_some_and(|(at, _)| at == updated_at);
            if !fresh {
                match load(app, *id).await {
                    Some(target) => {
                        self.cached.insert(*id, (*updated_at, Arc::new(target)));
                    }
                    None => continue,
                }
            }
            ready.push(*id);
        }
        ready
    }

    /// The target of a webhook in the cache.
    pub fn get(&self, id: &WebhookId) -> Option<Arc<Target>> {
        self.cached.get(id).map(|(_, t)| t.clone())
    }
}

/// Loads and decrypts one webhook's target; logs and skips it on failure.
pub async fn load(app: &App, id: WebhookId) -> Option<Target> {
    let webhook = match app.get_webhook(id).await {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(webhook_id = %id, error = %e, "cannot load webhook");
            return None;
        }
    };
    let renderer = match app.renderer(&webhook) {
        Ok(r) => r,
        Err(e) => {
            // Checked when saved; a stored template that no longer compiles is not sent to.
            tracing::error!(webhook_id = %id, error = %e, "the webhook's format cannot be used");
            return None;
        }
    };
    let secrets = app.webhook_secret(&webhook).and_then(|secret| {
        Ok((
            secret,
            app.previous_secret(&webhook)?,
            app.custom_headers(&webhook)?,
        ))
    });
    match secrets {
        Ok((secret, previous, headers)) => {
            let previous = previous.zip(webhook.rotation_ends_at);
            Some(
                Target::new(id, webhook.url, secret, webhook.events, previous, &headers)
                    .throttled(webhook.throttle)
                    .formatted(renderer),
            )
        }
        Err(e) => {
            tracing::error!(webhook_id = %id, error = %e, "cannot decrypt the webhook's secret");
            None
        }
    }
}
