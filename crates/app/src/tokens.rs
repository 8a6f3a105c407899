//! API tokens (`lwh_…`): created once, stored as a SHA-256 hash, checked by hash.
//!
//! Tokens are 40 random alphanumerics (≈238 bits), so a fast hash is enough — there is nothing
//! to brute-force — and a lookup costs one indexed query.

use std::fmt;

use lwh_domain::{Timestamp, TokenId};
use lwh_storage::{ApiTokenRecord, NewApiToken};
use rand::distributions::Alphanumeric;
use rand::Rng;
use sha2::{Digest, Sha256};

use crate::app::App;
use crate::error::AppError;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Ingestion only (`POST /api/v1/events…`) — what the LMS needs.
    EventsWrite,
    /// Everything, including webhook management.
    WebhooksManage,
}

impl Scope {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::EventsWrite => "events:write",
            Scope::WebhooksManage => "webhooks:manage",
        }
    }

    /// Parses a wire name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "events:write" => Some(Scope::EventsWrite),
            "webhooks:manage" => Some(Scope::WebhooksManage),
            _ => None,
        }
    }

    /// Whether a token of this scope may do what `required` demands.
    pub fn grants(self, required: Scope) -> bool {
        self == Scope::WebhooksManage || self == required
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The scopes one token holds — one or several, as `token create --scope events:write --scope
/// webhooks:manage` asks, so one token can serve an LMS that both reports events and manages
/// webhooks. Stored as the wire names separated by spaces (OAuth 2's convention, RFC 6749 §3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scopes {
    events_write: bool,
    webhooks_manage: bool,
}

impl Scopes {
    /// Every scope, in wire order.
    pub const ALL: [Scope; 2] = [Scope::EventsWrite, Scope::WebhooksManage];

    /// A set of the given scopes.
    pub fn of(scopes: &[Scope]) -> Self {
        let mut set = Self::default();
        for scope in scopes {
            set.insert(*scope);
        }
        set
    }

    /// Adds one scope.
    pub fn insert(&mut self, scope: Scope) {
        match scope {
            Scope::EventsWrite => self.events_write = true,
            Scope::WebhooksManage => self.webhooks_manage = true,
        }
    }

    /// Whether the set holds `scope` itself (not merely something that grants it).
    pub fn contains(self, scope: Scope) -> bool {
        match scope {
            Scope::EventsWrite => self.events_write,
            Scope::WebhooksManage => self.webhooks_manage,
        }
    }

    /// Whether no scope is held (a token needs at least one).
    pub fn is_empty(self) -> bool {
        !self.events_write && !self.webhooks_manage
    }

    /// The scopes held, in wire order.
    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Self::ALL.into_iter().filter(move |s| self.contains(*s))
    }

    /// Whether a token with these scopes may do what `required` demands.
    pub fn grants(self, required: Scope) -> bool {
        self.iter().any(|s| s.grants(required))
    }

    /// Parses the stored form: wire names separated by spaces; `None` if a name is unknown or
    /// there is none.
    pub fn parse(text: &str) -> Option<Self> {
        let mut set = Self::default();
        for name in text.split_whitespace() {
            set.insert(Scope::parse(name)?);
        }
        (!set.is_empty()).then_some(set)
    }
}

impl From<Scope> for Scopes {
    fn from(scope: Scope) -> Self {
        Self::of(&[scope])
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for scope in self.iter() {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(scope.as_str())?;
            first = false;
        }
        Ok(())
    }
}

/// A token just created: the only moment its value exists outside the client.
pub struct CreatedToken {
    /// The stored record.
    pub record: ApiTokenRecord,
    /// The token itself.
    pub token: String,
}

impl fmt::Debug for CreatedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreatedToken")
            .field("record", &self.record)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// A request's verified identity.
#[derive(Debug, Clone)]
pub struct TokenIdentity {
    /// Which token.
    pub id: TokenId,
    /// The name it was given, to say which token a client holds.
    pub name: String,
    /// What it may do.
    pub scopes: Scopes,
}

/// How long a verified token is trusted without asking the database again. A token revoked in
/// this process stops working at once; revoked from another process (PostgreSQL scale-out),
/// within this time.
pub const TOKEN_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(1);
/// Most verified tokens kept (the cache is emptied when full).
const TOKEN_CACHE_MAX: usize = 1_000;

/// Recently verified tokens by hash, so a busy LMS does not cost a query per request.
#[derive(Default)]
pub(crate) struct TokenCache {
    entries:
        std::sync::Mutex<std::collections::HashMap<String, (TokenIdentity, std::time::Instant)>>,
}

impl TokenCache {
    fn get(&self, hash: &str) -> Option<TokenIdentity> {
        let entries = self.entries.lock().ok()?;
        let (identity, at) = entries.get(hash)?;
        (at.elapsed() < TOKEN_CACHE_TTL).then(|| identity.clone())
    }

    fn put(&self, hash: String, identity: TokenIdentity) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= TOKEN_CACHE_MAX {
                entries.clear();
            }
            entries.insert(hash, (identity, std::time::Instant::now()));
        }
    }

    fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }
}

/// SHA-256 hex of a token or session cookie, the only form stored.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// `prefix` followed by `len` random alphanumerics from the OS CSPRNG.
pub fn random_token(prefix: &str, len: usize) -> String {
    let body: String = rand::rngs::OsRng
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect();
    format!("{prefix}{body}")
}

impl App {
    /// Creates a token holding `scopes`; the value is returned here and never again.
    pub async fn create_api_token(
        &self,
        scopes: impl Into<Scopes>,
        name: &str,
    ) -> Result<CreatedToken, AppError> {
        let scopes = scopes.into();
        if scopes.is_empty() {
            return Err(AppError::field("scope", "choose at least one scope"));
        }
        let name = name.trim();
        if name.chars().count() > 100 {
            return Err(AppError::field("name", "must be at most 100 characters"));
        }
        let token = random_token("lwh_", 40);
        let new = NewApiToken {
            id: TokenId::generate(),
            name: if name.is_empty() {
                "unnamed".to_owned()
            } else {
                name.to_owned()
            },
            token_hash: hash_token(&token),
            prefix: token.chars().take(12).collect(),
            scope: scopes.to_string(),
            now: Timestamp::now(),
        };
        self.store().insert_api_token(&new).await?;
        let record = ApiTokenRecord {
            id: new.id,
            name: new.name,
            prefix: new.prefix,
            scope: new.scope,
            created_at: new.now,
            last_used_at: None,
            revoked_at: None,
        };
        tracing::info!(token_id = %record.id, scopes = %scopes, "API token created");
        Ok(CreatedToken { record, token })
    }

    /// The identity behind a bearer token, or `None` if it is unknown or revoked.
    pub async fn authenticate_token(&self, token: &str) -> Result<Option<TokenIdentity>, AppError> {
        if !token.starts_with("lwh_") || token.len() > 200 {
            return Ok(None);
        }
        let hash = hash_token(token);
        if let Some(identity) = self.token_cache().get(&hash) {
            return Ok(Some(identity));
        }
        let Some(record) = self.store().find_api_token(&hash).await? else {
            return Ok(None);
        };
        let Some(scopes) = Scopes::parse(&record.scope) else {
            return Err(AppError::Internal(format!(
                "token {} has scope {}",
                record.id, record.scope
            )));
        };
        let now = Timestamp::now();
        if record
            .last_used_at
            .is_none_or(|t| now.millis() - t.millis() > 60_000)
        {
            self.store().touch_api_token(record.id, now).await?;
        }
        let identity = TokenIdentity {
            id: record.id,
            name: record.name,
            scopes,
        };
        self.token_cache().put(hash, identity.clone());
        Ok(Some(identity))
    }

    /// Every token, newest first.
    pub async fn list_api_tokens(&self) -> Result<Vec<ApiTokenRecord>, AppError> {
        Ok(self.store().list_api_tokens().await?)
    }

    /// Revokes a token at once.
    pub async fn revoke_api_token(&self, id: TokenId) -> Result<(), AppError> {
        let revoked = self.store().revoke_api_token(id, Timestamp::now()).await?;
        self.token_cache().clear();
        if revoked {
            tracing::info!(token_id = %id, "API token revoked");
            Ok(())
        } else {
            Err(AppError::NotFound("token"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manage_grants_everything_and_write_only_itself() {
        assert!(Scope::WebhooksManage.grants(Scope::EventsWrite));
        assert!(Scope::WebhooksManage.grants(Scope::WebhooksManage));
        assert!(Scope::EventsWrite.grants(Scope::EventsWrite));
        assert!(!Scope::EventsWrite.grants(Scope::WebhooksManage));
        assert_eq!(Scope::parse("events:write"), Some(Scope::EventsWrite));
        assert_eq!(Scope::parse("admin"), None);
    }

    #[test]
    fn a_token_may_hold_several_scopes() {
        let both = Scopes::parse("events:write webhooks:manage").unwrap();
        assert_eq!(both.to_string(), "events:write webhooks:manage");
        assert_eq!(
            Scopes::parse("webhooks:manage  events:write"),
            Some(both),
            "order and spacing do not matter"
        );
        assert!(both.grants(Scope::EventsWrite) && both.grants(Scope::WebhooksManage));
        let write = Scopes::parse("events:write").unwrap();
        assert!(write.grants(Scope::EventsWrite) && !write.grants(Scope::WebhooksManage));
        assert_eq!(Scopes::parse(""), None);
        assert_eq!(Scopes::parse("events:write admin"), None);
        assert_eq!(
            Scopes::from(Scope::WebhooksManage).to_string(),
            "webhooks:manage"
        );
    }

    #[test]
    fn tokens_are_prefixed_random_and_hashed() {
        let a = random_token("lwh_", 40);
        assert!(a.starts_with("lwh_") && a.len() == 44);
        assert_ne!(a, random_token("lwh_", 40));
        assert_eq!(hash_token(&a).len(), 64);
        assert!(!hash_token(&a).contains(&a[4..]));
    }
}
