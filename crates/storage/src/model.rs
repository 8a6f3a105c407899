//! Plain data passed in and out of the store.

use lwh_domain::format::Format;
use lwh_domain::ordering::DeliveryOrder;
use lwh_domain::throttle::Throttle;
use lwh_domain::{Timestamp, TokenId, UserId, WebhookId, WebhookStatus};

/// A webhook as stored, including its encrypted secret (never leaves the server).
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookRecord {
    /// `wh_…`
    pub id: WebhookId,
    /// Delivery URL as saved.
    pub url: String,
    /// Subscribed event slugs, in the saved order.
    pub events: Vec<String>,
    /// Current status.
    pub status: WebhookStatus,
    /// Why the webhook is Failed (or why it last changed status).
    pub status_reason: Option<String>,
    /// When the status last changed.
    pub status_changed_at: Timestamp,
    /// Most recent delivery attempt, `None` shows as "Never".
    pub last_triggered_at: Option<Timestamp>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last edit time.
    pub updated_at: Timestamp,
    /// Nonce ‖ ciphertext of the secret, bound to `id`.
    pub secret_ciphertext: Vec<u8>,
    /// During a secret rotation's overlap: the previous secret, sealed the same way; it still
    /// signs beside the current one until `rotation_ends_at`, then it is destroyed.
    pub previous_secret_ciphertext: Option<Vec<u8>>,
    /// When the rotation's overlap ends (`None`: no rotation in progress).
    pub rotation_ends_at: Option<Timestamp>,
    /// The custom request headers, sealed (`None`: none).
    pub headers_ciphertext: Option<Vec<u8>>,
    /// At most this many attempts a second (`None`: unlimited).
    pub throttle: Option<Throttle>,
    /// The body format.
    pub format: Format,
    /// The template's source, with [`Format::Template`].
    pub template: Option<String>,
    /// Whether deliveries with the same ordering key go one at a time, in order.
    pub ordering: DeliveryOrder,
}

/// What creating a webhook stores.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    /// Pre-generated id (the secret is sealed to it).
    pub id: WebhookId,
    /// Validated URL.
    pub url: String,
    /// Validated, normalised event slugs.
    pub events: Vec<String>,
    /// Sealed secret.
    pub secret_ciphertext: Vec<u8>,
    /// Sealed custom headers, if any.
    pub headers_ciphertext: Option<Vec<u8>>,
    /// Its throttle, if any.
    pub throttle: Option<Throttle>,
    /// Its body format, with the template's source for [`Format::Template`].
    pub format: Format,
    /// The template, validated.
    pub template: Option<String>,
    /// Its delivery order.
    pub ordering: DeliveryOrder,
    /// Creation time.
    pub now: Timestamp,
}

/// An edit: each `Some` field replaces the stored value. The secret cannot be edited.
#[derive(Debug, Clone, Default)]
pub struct WebhookChanges {
    /// New URL.
    pub url: Option<String>,
    /// New subscription list.
    pub events: Option<Vec<String>>,
    /// New status requested by an admin (Active, Paused or Disabled).
    pub status: Option<WebhookStatus>,
    /// New sealed custom headers (`Some(None)` removes them all).
    pub headers_ciphertext: Option<Option<Vec<u8>>>,
    /// New throttle (`Some(None)` removes it).
    pub throttle: Option<Option<Throttle>>,
    /// New body format with its template (which goes with every other format).
    pub format: Option<(Format, Option<String>)>,
    /// New delivery order (leaving `by_key` releases every waiting delivery at once).
    pub ordering: Option<DeliveryOrder>,
}

/// A console user.
#[derive(Debug, Clone)]
pub struct UserRecord {
    /// `usr_…`
    pub id: UserId,
    /// Login name.
    pub name: String,
    /// argon2id PHC string.
    pub password_hash: String,
}

/// A signed-in console session.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    /// Who is signed in.
    pub user_id: UserId,
    /// Their name, for the header.
    pub user_name: String,
    /// The CSRF token every state-changing request must carry.
    pub csrf_token: String,
    /// When the session ends.
    pub expires_at: Timestamp,
}

/// An API token as listed (the token itself is never stored).
#[derive(Debug, Clone)]
pub struct ApiTokenRecord {
    /// `tok_…`
    pub id: TokenId,
    /// Name given at creation.
    pub name: String,
    /// First characters of the token, to recognise it.
    pub prefix: String,
    /// Scope names separated by spaces: `events:write`, `webhooks:manage` or both.
    pub scope: String,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last time it authenticated a request (updated at most once a minute).
    pub last_used_at: Option<Timestamp>,
    /// When it was revoked.
    pub revoked_at: Option<Timestamp>,
}

/// What creating an API token stores.
#[derive(Debug, Clone)]
pub struct NewApiToken {
    /// `tok_…`
    pub id: TokenId,
    /// Human name.
    pub name: String,
    /// SHA-256 hex of the token.
    pub token_hash: String,
    /// First characters of the token.
    pub prefix: String,
    /// Scope name.
    pub scope: String,
    /// Creation time.
    pub now: Timestamp,
}

/// An event to store at ingestion.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// `evt_…`
    pub id: lwh_domain::EventId,
    /// Catalogue slug (or `ping`).
    pub slug: String,
    /// The exact bytes every attempt will POST (shared with deliveries handed straight to a
    /// worker at ingestion).
    pub payload: std::sync::Arc<[u8]>,
    /// Client key making a retried request harmless for 24 h.
    pub idempotency_key: Option<String>,
    /// For a service event: the webhook it is about, which never receives it.
    pub about: Option<WebhookId>,
    /// Deliveries to `by_key` webhooks with the same key go one at a time, in acceptance order.
    pub ordering_key: Option<String>,
}

/// What ingestion did with one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestOutcome {
    /// The event's id (the first one's, for a repeated idempotency key).
    pub event_id: lwh_domain::EventId,
    /// Deliveries created for it.
    pub deliveries: u64,
    /// True when the idempotency key matched an earlier event and nothing was created.
    pub duplicate: bool,
}

/// A delivery a worker has claimed, with everything needed to send it.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    /// `dlv_…`, the `X-Learnomy-Delivery` header.
    pub id: lwh_domain::DeliveryId,
    /// Target webhook.
    pub webhook_id: WebhookId,
    /// The event, whose id is the Standard Webhooks `webhook-id`.
    pub event_id: lwh_domain::EventId,
    /// The event slug, the `X-Learnomy-Event` header.
    pub event: String,
    /// Body bytes, identical on every attempt.
    pub payload: std::sync::Arc<[u8]>,
    /// Attempts already made (all series).
    pub attempts: i64,
    /// Attempts made before the current series began (redelivery starts a new series).
    pub series_start: i64,
    /// A throttled webhook's delivery: not to be sent before this turn (`None`: at once).
    pub send_at: Option<Timestamp>,
    /// Its ordering key, when the next one of the key waits for it to finish.
    pub ordering_key: Option<String>,
}

/// What a throttled webhook's claim took, and what stopped it.
#[derive(Debug, Clone)]
pub struct PacedClaim {
    /// The deliveries, each with its turn.
    pub claimed: Vec<ClaimedDelivery>,
    /// How many the pace allowed (fewer claimed: the queue ran dry).
    pub allowed: usize,
    /// The webhook's next free turn.
    pub next_turn: Timestamp,
}

impl ClaimedDelivery {
    /// The number the coming attempt will carry in the log (1-based, across series).
    pub fn next_attempt_number(&self) -> i64 {
        self.attempts + 1
    }

    /// The coming attempt's position in the current series (1-based), for the retry schedule.
    pub fn attempt_in_series(&self) -> u32 {
        (self.attempts - self.series_start + 1).max(1) as u32
    }
}

/// One finished attempt to store.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    /// The delivery.
    pub delivery_id: lwh_domain::DeliveryId,
    /// Its webhook.
    pub webhook_id: WebhookId,
    /// Attempt number (1-based, across series).
    pub number: i64,
    /// When the attempt started.
    pub started_at: Timestamp,
    /// What came back.
    pub outcome: lwh_domain::AttemptOutcome,
    /// What happens next (decided by [`lwh_domain::NextStep::after`]).
    pub next: lwh_domain::NextStep,
    /// The delivery's ordering key: when it finishes, the next one of the key is made due.
    pub ordering_key: Option<String>,
    /// Whether the recording worker takes that next one itself, in this attempt's slot
    /// (its webhook's queue was seen drained, so nothing else of the webhook waits for the
    /// slot); otherwise the next one is due in the queue like any delivery.
    pub take_next: bool,
    /// Whether the recording worker takes its webhook's next due delivery from the queue into
    /// this attempt's slot, claimed in the same transaction as this result (its webhook is
    /// unthrottled and its queue may hold work). The slot is never idle between the two, and
    /// it still holds at most one delivery sent and not recorded.
    pub refill: bool,
}

/// The automatic-Failed rules, from settings.
#[derive(Debug, Clone, Copy)]
pub struct FailureRules {
    /// `failed_after` in milliseconds.
    pub failed_after_ms: i64,
    /// `failed_probe_interval` in milliseconds.
    pub probe_interval_ms: i64,
}

/// A delivery as the log lists it.
#[derive(Debug, Clone)]
pub struct DeliverySummary {
    /// `dlv_…`
    pub id: lwh_domain::DeliveryId,
    /// Its webhook.
    pub webhook_id: WebhookId,
    /// Its event.
    pub event_id: lwh_domain::EventId,
    /// The event slug.
    pub event: String,
    /// Current status.
    pub status: lwh_domain::DeliveryStatus,
    /// Attempts made, all series.
    pub attempts: i64,
    /// Failed attempts in the current series (the "retry count").
    pub retry_count: i64,
    /// Attempts made before the current series: more than 0 when the delivery was redelivered.
    pub series_start: i64,
    /// When the latest attempt started (`None` before the first).
    pub last_attempt_at: Option<Timestamp>,
    /// Status code of the latest attempt.
    pub last_status_code: Option<i64>,
    /// Error of the latest attempt (or why it was cancelled).
    pub last_error: Option<String>,
    /// When the next attempt is due (`None` when finished, held by the webhook's status, or
    /// waiting behind an earlier delivery of its ordering key).
    pub next_attempt_at: Option<Timestamp>,
    /// Its ordering key (deliveries to `by_key` webhooks only).
    pub ordering_key: Option<String>,
    /// Waiting until an earlier delivery with the same ordering key is finished.
    pub waiting: bool,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

/// One attempt as the log shows it.
#[derive(Debug, Clone)]
pub struct AttemptRow {
    /// 1-based number.
    pub number: i64,
    /// Start time.
    pub started_at: Timestamp,
    /// Duration.
    pub duration_ms: i64,
    /// HTTP status, if any answer.
    pub status_code: Option<i64>,
    /// Error kind name, if failed.
    pub error_kind: Option<String>,
    /// Error detail.
    pub error: Option<String>,
    /// First 2 KiB of the response body.
    pub response_excerpt: Option<String>,
    /// The request's headers, one `name: value` per line (the stored varying ones completed
    /// with those derived from the delivery).
    pub request_headers: Option<String>,
    /// The response's headers, one `name: value` per line.
    pub response_headers: Option<String>,
}

/// Queue figures for `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct QueueStats {
    /// Deliveries with a due time (due now, scheduled retries, claimed).
    pub scheduled: i64,
    /// Of those, due now or overdue.
    pub due_now: i64,
    /// Age of the oldest due delivery in milliseconds.
    pub oldest_due_age_ms: i64,
    /// Deliveries waiting behind an earlier one of their ordering key (by_key webhooks): not
    /// due until it finishes, so not in `scheduled`.
    pub waiting: i64,
    /// Webhooks per status name.
    pub webhooks_by_status: Vec<(String, i64)>,
}
