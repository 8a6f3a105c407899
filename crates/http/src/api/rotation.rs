//! Secret rotation: a new secret signs at once while the previous one keeps signing beside it
//! for an overlap, so receivers switch keys without a failed delivery.

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::views::{Data, WebhookView};
use crate::api::webhooks::{parse_id, view};
use crate::auth::{Authorized, Manage};
use crate::error::{ApiError, Problem};
use crate::json::StrictJson;
use crate::AppState;

/// Starting a rotation (`{}` generates the secret and overlaps for 24 h).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecretRequest {
    /// The new secret (16–128 printable ASCII characters); omit it to get a random
    /// 32-character key.
    #[serde(default)]
    pub secret: Option<String>,
    /// How long the previous secret keeps signing beside the new one: `24h` when omitted, at
    /// most `7d`; `0s` ends it at once.
    #[serde(default)]
    #[schema(example = "24h")]
    pub overlap: Option<String>,
}

/// The answer to starting a rotation: the only response that carries the new secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedSecretView {
    /// The webhook; `rotation_ends_at` says when the previous secret stops signing.
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// The new secret. Store it now: it is never returned again.
    #[schema(example = "k3F9mQ2xV7pL0sT4wZ8cR1bN6yH5dJ2a")]
    pub secret: String,
}

/// Starts a secret rotation. Until the overlap ends, `X-Learnomy-Signature` is still made with
/// the previous secret, `X-Learnomy-Signature-Next` with the new one, and `webhook-signature`
/// carries both; then the previous secret is destroyed.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/{id}/rotate-secret",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Webhook id (`wh_…`)")),
    request_body = RotateSecretRequest,
    responses(
        (status = 200, description = "Rotating; `secret` is shown this once", body = Data<RotatedSecretView>),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or unknown token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token scope too narrow", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such webhook", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`conflict`: a rotation is still in its overlap; complete it first", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over 256 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`: `secret` or `overlap`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn rotate_secret(
    _auth: Authorized<Manage>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    StrictJson(body): StrictJson<RotateSecretRequest>,
) -> Result<Json<Data<RotatedSecretView>>, ApiError> {
    let id = parse_id(&id)?;
    let rotated = state
        .app
        .rotate_secret(id, body.secret.as_deref(), body.overlap.as_deref())
        .await?;
    Ok(Json(Data::new(RotatedSecretView {
        webhook: view(&state, &rotated.webhook).await?,
        secret: rotated.secret.expose().to_owned(),
    })))
}

/// Ends the rotation now: only the new secret signs and the previous one is destroyed. Without
/// a rotation in progress, changes nothing.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/{id}/rotate-secret/complete",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Webhook id (`wh_…`)")),
    responses(
        (status = 200, description = "The webhook, with no rotation in progress", body = Data<WebhookView>),
        (status = 401, description = "No or unknown token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token scope too narrow", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such webhook", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn complete_rotation(
    _auth: Authorized<Manage>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Data<WebhookView>>, ApiError> {
    let id = parse_id(&id)?;
    let webhook = state.app.finish_rotation(id).await?;
    Ok(Json(Data::new(view(&state, &webhook).await?)))
}
