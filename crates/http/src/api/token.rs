//! `GET /api/v1/token`: what the calling token may do, so a client (the WordPress plugin's
//! "Check connection") can tell its admin in words before anything fails.

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::api::views::Data;
use crate::auth::{AnyScope, Authorized};
use crate::error::{ApiError, Problem};
use crate::AppState;

/// The calling token and the service it talks to.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenView {
    /// `tok_` + ULID.
    #[schema(example = "tok_01JDQ8V3W4X5Y6Z7A8B9C0D1E2")]
    pub id: String,
    /// The name given when it was created.
    #[schema(example = "wordpress")]
    pub name: String,
    /// The scopes it holds, e.g. `["events:write", "webhooks:manage"]`.
    #[schema(example = json!(["events:write", "webhooks:manage"]))]
    pub scopes: Vec<&'static str>,
    /// The service's plan: `free` or `pro`.
    #[schema(example = "free")]
    pub plan: &'static str,
    /// The service's version.
    #[schema(example = "0.1.0")]
    pub version: &'static str,
}

/// The token making this request: its scopes, and the service's plan and version. Any valid
/// token may call it, whatever its scopes.
#[utoipa::path(
    get,
    path = "/api/v1/token",
    tag = "tokens",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The calling token", body = Data<TokenView>),
        (status = 401, description = "No or unknown token", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn get_token(
    auth: Authorized<AnyScope>,
    State(state): State<AppState>,
) -> Result<Json<Data<TokenView>>, ApiError> {
    let identity = auth.identity;
    Ok(Json(Data::new(TokenView {
        id: identity.id.to_string(),
        name: identity.name,
        scopes: identity.scopes.iter().map(|s| s.as_str()).collect(),
        plan: state.app.settings().plan.as_str(),
        version: env!("CARGO_PKG_VERSION"),
    })))
}
