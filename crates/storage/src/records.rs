//! Plain data passed in and out of the store.

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
    /// `events:write` or `webhooks:manage`.
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
