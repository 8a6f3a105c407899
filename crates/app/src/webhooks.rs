//! Managing webhooks: create, edit, pause/disable/re-activate, delete, list.

use lwh_domain::custom_headers::CustomHeaders;
use lwh_domain::service_events::Recovery;
use lwh_domain::throttle::Throttle;
use lwh_domain::{FieldError, Plan, Timestamp, WebhookId, WebhookSecret, WebhookStatus};
use lwh_storage::{NewWebhook, Rotation, WebhookChanges, WebhookRecord};
use serde::Serialize;

use crate::app::App;
use crate::error::AppError;
use crate::formats::{check_format, FormatRequest};
use lwh_domain::ordering::DeliveryOrder;

/// Most event slugs a single request may list (the catalogue is far smaller).
const MAX_EVENTS_IN_REQUEST: usize = 500;

/// A webhook just created, with its secret — the only time the secret is returned.
#[derive(Debug)]
pub struct CreatedWebhook {
    /// The stored webhook.
    pub webhook: WebhookRecord,
    /// The secret, to show once.
    pub secret: WebhookSecret,
}

/// A rotation just started, with the new secret — the only time it is returned.
#[derive(Debug)]
pub struct RotatedSecret {
    /// The webhook, with the overlap's end.
    pub webhook: WebhookRecord,
    /// The new secret, to show once.
    pub secret: WebhookSecret,
}

/// Slot usage for the page header and the API list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Webhooks that exist.
    pub used: u64,
    /// The plan's cap; `None` on Pro.
    pub limit: Option<u64>,
    /// The running plan.
    pub plan: Plan,
}

impl Usage {
    /// Whether another webhook may be created.
    pub fn can_add(&self) -> bool {
        self.plan.allows_another_webhook(self.used)
    }
}

/// An edit request; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct WebhookEdit {
    /// New delivery URL.
    pub url: Option<String>,
    /// New event list.
    pub events: Option<Vec<String>>,
    /// Requested status: Active, Paused or Disabled.
    pub status: Option<WebhookStatus>,
    /// Custom header changes: a value sets (adds or replaces), `None` removes.
    pub headers: Option<Vec<(String, Option<String>)>>,
    /// New throttle in deliveries a second (`Some(None)` removes it).
    pub max_per_second: Option<Option<i64>>,
    /// New body format and/or template.
    pub format: FormatRequest,
    /// New delivery order.
    pub ordering: Option<DeliveryOrder>,
}

/// How a new webhook's deliveries are shaped and ordered (both have defaults).
#[derive(Debug, Clone, Default)]
pub struct WebhookOptions {
    /// Body format and template.
    pub format: FormatRequest,
    /// Delivery order.
    pub ordering: DeliveryOrder,
}

/// Custom header changes: a value sets (adds or replaces), `None` removes.
pub type HeaderChanges = [(String, Option<String>)];

/// Checks a requested `max_per_second` (`None`: unlimited).
fn check_throttle(max_per_second: Option<i64>) -> Result<Option<Throttle>, FieldError> {
    max_per_second
        .map(Throttle::new)
        .transpose()
        .map_err(|e| FieldError::new("max_per_second", e.to_string()))
}

impl App {
    /// Creates a webhook after checking the plan cap, the URL (syntax and SSRF, with DNS), the
    /// events and the optional client secret; its body is the Learnomy payload.
    pub async fn create_webhook(
        &self,
        url: &str,
        events: &[String],
        secret: Option<&str>,
        headers: &HeaderChanges,
        max_per_second: Option<i64>,
    ) -> Result<CreatedWebhook, AppError> {
        self.create_webhook_formatted(
            url,
            events,
            secret,
            headers,
            max_per_second,
            &WebhookOptions::default(),
        )
        .await
    }

    /// [`App::create_webhook`] with a body format (and template), checked like the rest, and a
    /// delivery order.
    pub async fn create_webhook_formatted(
        &self,
        url: &str,
        events: &[String],
        secret: Option<&str>,
        headers: &HeaderChanges,
        max_per_second: Option<i64>,
        options: &WebhookOptions,
    ) -> Result<CreatedWebhook, AppError> {
        let usage = self.usage().await?;
        if !usage.can_add() {
            return Err(AppError::PlanLimitReached(usage.limit.unwrap_or_default()));
        }
        let mut errors = Vec::new();
        let url_syntax = self
            .check_url_syntax(url)
            .map_err(|e| errors.extend(e))
            .ok();
        let events = self.check_events(events).map_err(|e| errors.extend(e)).ok();
        let secret = match secret {
            None => Some(WebhookSecret::generate()),
            Some(text) => WebhookSecret::parse(text)
                .map_err(|e| errors.push(FieldError::new("secret", e.to_string())))
                .ok(),
        };
        let headers = CustomHeaders::default()
            .edited(headers)
            .map_err(|e| errors.extend(e))
            .ok();
        let throttle = check_throttle(max_per_second)
            .map_err(|e| errors.push(e))
            .ok();
        let body = check_format(&options.format, None)
            .map_err(|e| errors.push(e))
            .ok();
        let (
            Some(url_syntax),
            Some(events),
            Some(secret),
            Some(headers),
            Some(throttle),
            Some((format, template)),
        ) = (url_syntax, events, secret, headers, throttle, body)
        else {
            return Err(AppError::Validation(errors));
        };
        let url = self.check_url_reachable(url_syntax?).await?;

        let id = WebhookId::generate();
        let new = NewWebhook {
            id,
            url,
            events,
            secret_ciphertext: self.master_key().seal(&secret, &id.to_string()),
            headers_ciphertext: self.seal_headers(id, &headers),
            throttle,
            format,
            template,
            ordering: options.ordering,
            now: Timestamp::now(),
        };
        // The worker's claim loop reads the Active list again before its next claims.
        let webhook = self
            .changing_webhook(
                id,
                self.store()
                    .insert_webhook(&new, self.settings().plan.webhook_limit()),
                |_| false,
            )
            .await?;
        tracing::info!(webhook_id = %id, "webhook created");
        Ok(CreatedWebhook { webhook, secret })
    }

    /// Edits URL, events and/or status. The secret is never changed by an edit. An admin
    /// re-activating a Failed webhook reports `webhook_recovered` (how: admin).
    pub async fn update_webhook(
        &self,
        id: WebhookId,
        edit: WebhookEdit,
    ) -> Result<WebhookRecord, AppError> {
        self.update_webhook_as(id, edit, Recovery::Admin).await
    }

    /// [`App::update_webhook`], saying how a Failed webhook made Active recovered (a probe, a
    /// Test, an admin) in the `webhook_recovered` it reports.
    pub async fn update_webhook_as(
        &self,
        id: WebhookId,
        edit: WebhookEdit,
        how: Recovery,
    ) -> Result<WebhookRecord, AppError> {
        // Only a change to Active can be a recovery: read the status it changes from.
        let was_failed = match edit.status {
            Some(WebhookStatus::Active) => {
                self.get_webhook(id).await?.status == WebhookStatus::Failed
            }
            _ => false,
        };
        let mut errors = Vec::new();
        let url = edit
            .url
            .as_deref()
            .map(|u| self.check_url_syntax(u))
            .transpose()
            .map_err(|e| errors.extend(e))
            .ok()
            .flatten();
        let events = edit
            .events
            .as_deref()
            .map(|e| self.check_events(e))
            .transpose()
            .map_err(|e| errors.extend(e))
            .ok()
            .flatten();
        if let Some(target) = edit.status {
            if !target.admin_may_request() {
                errors.push(FieldError::new(
                    "status",
                    "must be active, paused or disabled (Failed is set automatically)",
                ));
            }
        }
        let headers = match &edit.headers {
            Some(changes) => {
                let current = self.custom_headers(&self.get_webhook(id).await?)?;
                match current.edited(changes) {
                    Ok(headers) => Some(self.seal_headers(id, &headers)),
                    Err(e) => {
                        errors.extend(e);
                        None
                    }
                }
            }
            None => None,
        };
        let throttle = edit
            .max_per_second
            .map(check_throttle)
            .transpose()
            .map_err(|e| errors.push(e))
            .ok()
            .flatten();
        let body = if edit.format.is_empty() {
            None
        } else {
            let current = self.get_webhook(id).await?;
            check_format(
                &edit.format,
                Some((current.format, current.template.as_deref())),
            )
            .map_err(|e| errors.push(e))
            .ok()
        };
        if !errors.is_empty() {
            return Err(AppError::Validation(errors));
        }
        let url = match url {
            Some(u) => Some(self.check_url_reachable(u?).await?),
            None => None,
        };
        let changes = WebhookChanges {
            url,
            events,
            status: edit.status,
            headers_ciphertext: headers,
            throttle,
            format: body,
            ordering: edit.ordering,
        };
        // No delivery goes to a target the worker cached before the edit; an Active webhook's
        // released deliveries are claimed now.
        let updated = self
            .changing_webhook(
                id,
                self.store().update_webhook(id, &changes, Timestamp::now()),
                |updated| updated.as_ref().is_some_and(|w| w.status.sends()),
            )
            .await?
            .ok_or(AppError::NotFound("webhook"))?;
        tracing::info!(webhook_id = %id, status = updated.status.as_str(), "webhook updated");
        if was_failed && updated.status == WebhookStatus::Active {
            self.report_recovered(id, &updated.url, how).await;
        }
        Ok(updated)
    }

    /// Starts a secret rotation: `secret` (or a generated one) signs from now on, and the
    /// current secret keeps signing beside it for `overlap` ("24h" when `None`, at most 7
    /// days), after which it is destroyed.
    pub async fn rotate_secret(
        &self,
        id: WebhookId,
        secret: Option<&str>,
        overlap: Option<&str>,
    ) -> Result<RotatedSecret, AppError> {
        let mut errors = Vec::new();
        let secret = match secret {
            None => Some(WebhookSecret::generate()),
            Some(text) => WebhookSecret::parse(text)
                .map_err(|e| errors.push(FieldError::new("secret", e.to_string())))
                .ok(),
        };
        let overlap = lwh_domain::rotation::parse_overlap(overlap)
            .map_err(|e| errors.push(FieldError::new("overlap", e.to_string())))
            .ok();
        let (Some(secret), Some(overlap)) = (secret, overlap) else {
            return Err(AppError::Validation(errors));
        };
        let now = Timestamp::now();
        let ends_at = now.plus_millis(overlap.as_millis() as i64);
        let sealed = self.master_key().seal(&secret, &id.to_string());
        let rotation = self
            .changing_webhook(
                id,
                self.store().rotate_secret(id, &sealed, ends_at, now),
                |_| false,
            )
            .await?;
        match rotation {
            Rotation::Started(webhook) => {
                tracing::info!(webhook_id = %id, rotation_ends_at = %ends_at.to_rfc3339(), "secret rotation started");
                Ok(RotatedSecret {
                    webhook: *webhook,
                    secret,
                })
            }
            Rotation::InProgress => Err(AppError::WrongState(
                "a secret rotation is in progress: finish it first (rotate-secret/complete)",
            )),
            Rotation::NotFound => Err(AppError::NotFound("webhook")),
        }
    }

    /// Ends a webhook's rotation now: only the new secret signs, the previous one is
    /// destroyed. Without a rotation in progress, changes nothing.
    pub async fn finish_rotation(&self, id: WebhookId) -> Result<WebhookRecord, AppError> {
        let webhook = self
            .changing_webhook(
                id,
                self.store().finish_rotation(id, Timestamp::now()),
                |_| false,
            )
            .await?
            .ok_or(AppError::NotFound("webhook"))?;
        tracing::info!(webhook_id = %id, "secret rotation finished");
        Ok(webhook)
    }

    /// Destroys the previous secrets of rotations whose overlap has ended (the engine calls
    /// this every second).
    pub async fn finish_due_rotations(&self) -> Result<(), AppError> {
        for id in self.store().finish_due_rotations(Timestamp::now()).await? {
            self.changing_webhook(id, async { Ok::<_, AppError>(()) }, |_| false)
                .await?;
            tracing::info!(webhook_id = %id, "secret rotation ended: the previous secret is destroyed");
        }
        Ok(())
    }

    /// A webhook's custom headers, decrypted for sending (never for showing: see
    /// [`lwh_domain::custom_headers::MASK`]).
    pub fn custom_headers(&self, webhook: &WebhookRecord) -> Result<CustomHeaders, AppError> {
        let Some(sealed) = &webhook.headers_ciphertext else {
            return Ok(CustomHeaders::default());
        };
        let text = self
            .master_key()
            .open_text(sealed, &headers_aad(webhook.id))
            .map_err(|e| AppError::Internal(e.to_string()))?;
        CustomHeaders::from_stored(&text)
            .ok_or_else(|| AppError::Internal(format!("webhook {} headers unreadable", webhook.id)))
    }

    fn seal_headers(&self, id: WebhookId, headers: &CustomHeaders) -> Option<Vec<u8>> {
        (!headers.is_empty()).then(|| {
            self.master_key()
                .seal_text(&headers.to_stored(), &headers_aad(id))
        })
    }

    /// The previous secret of a webhook in a rotation's overlap, decrypted for signing.
    pub fn previous_secret(
        &self,
        webhook: &WebhookRecord,
    ) -> Result<Option<WebhookSecret>, AppError> {
        let Some(sealed) = &webhook.previous_secret_ciphertext else {
            return Ok(None);
        };
        self.master_key()
            .open(sealed, &webhook.id.to_string())
            .map(Some)
            .map_err(|e| AppError::Internal(e.to_string()))
    }

    /// Deletes a webhook and everything queued for it.
    pub async fn delete_webhook(&self, id: WebhookId) -> Result<(), AppError> {
        let deleted = self
            .changing_webhook(id, self.store().delete_webhook(id), |_| false)
            .await?;
        if deleted {
            tracing::info!(webhook_id = %id, "webhook deleted");
            Ok(())
        } else {
            Err(AppError::NotFound("webhook"))
        }
    }

    /// One webhook.
    pub async fn get_webhook(&self, id: WebhookId) -> Result<WebhookRecord, AppError> {
        self.store()
            .get_webhook(id)
            .await?
            .ok_or(AppError::NotFound("webhook"))
    }

    /// What a webhook's recent deliveries say (last attempt's outcome, failing streak, how
    /// many deliveries are queued), for the console's rows; on every plan.
    pub async fn webhook_activity(
        &self,
        id: WebhookId,
    ) -> Result<lwh_storage::WebhookActivity, AppError> {
        Ok(self.store().webhook_activity(id).await?)
    }

    /// Every webhook with the slot usage.
    pub async fn list_webhooks(&self) -> Result<(Vec<WebhookRecord>, Usage), AppError> {
        let webhooks = self.store().list_webhooks().await?;
        let usage = Usage {
            used: webhooks.len() as u64,
            limit: self.settings().plan.webhook_limit(),
            plan: self.settings().plan,
        };
        Ok((webhooks, usage))
    }

    /// Slot usage alone.
    pub async fn usage(&self) -> Result<Usage, AppError> {
        Ok(Usage {
            used: self.store().count_webhooks().await?,
            limit: self.settings().plan.webhook_limit(),
            plan: self.settings().plan,
        })
    }

    /// The secret of a stored webhook, decrypted for signing.
    pub fn webhook_secret(&self, webhook: &WebhookRecord) -> Result<WebhookSecret, AppError> {
        self.master_key()
            .open(&webhook.secret_ciphertext, &webhook.id.to_string())
            .map_err(|e| AppError::Internal(e.to_string()))
    }

    /// Syntax, scheme, user-info and length rules (field errors, `validation_failed`), then
    /// the address rules for IP-literal hosts (an `Err` inside `Ok`: `url_not_allowed`, raised
    /// only once every field is otherwise valid) — no DNS yet.
    fn check_url_syntax(&self, text: &str) -> Result<Result<url::Url, AppError>, Vec<FieldError>> {
        match self.policy().check_url(text) {
            Ok(url) => Ok(Ok(url)),
            Err(rejection) if rejection.is_ssrf() => Ok(Err(AppError::UrlNotAllowed(
                FieldError::new("url", rejection.to_string()),
            ))),
            Err(rejection) => Err(vec![FieldError::new("url", rejection.to_string())]),
        }
    }

    /// The SSRF part that needs DNS: every resolved address must be allowed. Refusals are
    /// `url_not_allowed`, whose message names the rule.
    async fn check_url_reachable(&self, url: url::Url) -> Result<String, AppError> {
        match self.policy().resolve(&url, self.resolver().as_ref()).await {
            Ok(_) => Ok(url.to_string()),
            Err(rejection) => Err(AppError::UrlNotAllowed(FieldError::new(
                "url",
                rejection.to_string(),
            ))),
        }
    }

    /// A non-empty list of events this plan offers, normalised to catalogue order.
    fn check_events(&self, events: &[String]) -> Result<Vec<String>, Vec<FieldError>> {
        if events.is_empty() {
            return Err(vec![FieldError::new("events", "choose at least one event")]);
        }
        if events.len() > MAX_EVENTS_IN_REQUEST {
            return Err(vec![FieldError::new(
                "events",
                format!("list at most {MAX_EVENTS_IN_REQUEST} events"),
            )]);
        }
        let errors: Vec<FieldError> = events
            .iter()
            .enumerate()
            .filter(|(_, slug)| !self.catalogue().contains(slug))
            .map(|(i, slug)| {
                let message = if lwh_domain::Catalogue::is_builtin_pro_event(slug) {
                    format!("{slug:?} is a Pro event: it is available in Learnomy Pro")
                } else {
                    format!("{slug:?} is not an event of the catalogue")
                };
                FieldError::new(format!("events[{i}]"), message)
            })
            .collect();
        if errors.is_empty() {
            Ok(self.catalogue().normalize(events))
        } else {
            Err(errors)
        }
    }
}

/// What a webhook's sealed headers are bound to (not its secret's binding: the two ciphertexts
/// cannot be swapped).
fn headers_aad(id: WebhookId) -> String {
    format!("{id}#headers")
}
