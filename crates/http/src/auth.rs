//! Bearer-token authentication for the API, with the required scope in the extractor's type so
//! a handler cannot forget to check it.

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use lwh_app::tokens::TokenIdentity;
use lwh_app::Scope;

use crate::error::ApiError;
use crate::AppState;

/// A scope, as a type.
pub trait RequiredScope: Send + Sync + 'static {
    /// The scope the route needs; `None` for routes any valid token may call.
    const SCOPE: Option<Scope>;
}

/// Routes that manage webhooks and read the delivery log.
pub struct Manage;
impl RequiredScope for Manage {
    const SCOPE: Option<Scope> = Some(Scope::WebhooksManage);
}

/// Event ingestion.
pub struct Ingest;
impl RequiredScope for Ingest {
    const SCOPE: Option<Scope> = Some(Scope::EventsWrite);
}

/// Routes about the token itself (`GET /api/v1/token`), which a client must be able to call
/// whatever its scopes, to learn them.
pub struct AnyScope;
impl RequiredScope for AnyScope {
    const SCOPE: Option<Scope> = None;
}

/// A request authenticated with a token whose scope grants `S`: 401 without a valid token,
/// 403 when the scope is too narrow.
pub struct Authorized<S: RequiredScope> {
    /// The token that authenticated the request.
    pub identity: TokenIdentity,
    _scope: PhantomData<S>,
}

impl<S: RequiredScope> FromRequestParts<AppState> for Authorized<S> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts.headers.get(AUTHORIZATION).ok_or_else(|| {
            ApiError::unauthorized("Send an API token as Authorization: Bearer lwh_…")
        })?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(|| {
                ApiError::unauthorized("The Authorization header must be: Bearer <token>")
            })?;
        let identity = state
            .app
            .authenticate_token(token)
            .await?
            .ok_or_else(|| ApiError::unauthorized("The API token is unknown or revoked."))?;
        if let Some(required) = S::SCOPE {
            if !identity.scopes.grants(required) {
                return Err(ApiError::forbidden(format!(
                    "This token has scope {}; this route needs {required}.",
                    identity.scopes
                )));
            }
        }
        Ok(Self {
            identity,
            _scope: PhantomData,
        })
    }
}
