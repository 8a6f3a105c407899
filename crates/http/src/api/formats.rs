//! `POST /api/v1/formats/preview`: the body a format (or a template) would send for an event,
//! with the event's example data — what the console and the WordPress plugin show beside the
//! format selector.

use axum::extract::State;
use axum::Json;
use lwh_app::formats::FormatRequest;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::views::Data;
use crate::auth::{Authorized, Manage};
use crate::error::{ApiError, Problem};
use crate::json::StrictJson;
use crate::AppState;

/// What to preview.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    /// `learnomy`, `slack`, `discord`, `teams`, `google_chat` or `template`.
    #[schema(example = "slack")]
    pub format: String,
    /// The template, with `template`.
    #[serde(default)]
    pub template: Option<String>,
    /// An event slug from the catalogue; its example data fills the body.
    #[schema(example = "course_completed")]
    pub event: String,
}

/// The rendered body.
#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewView {
    /// The body as it would be POSTed (JSON bodies indented for reading).
    pub body: String,
}

/// Renders a body for an event's example data; nothing is sent.
#[utoipa::path(
    post,
    path = "/api/v1/formats/preview",
    tag = "webhooks",
    security(("bearer" = [])),
    request_body = PreviewRequest,
    responses(
        (status = 200, description = "The body", body = Data<PreviewView>),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or unknown token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token scope too narrow", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over 256 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed` naming `format`, `template` (with the line, or why rendering stopped) or `event`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn preview(
    _auth: Authorized<Manage>,
    State(state): State<AppState>,
    StrictJson(body): StrictJson<PreviewRequest>,
) -> Result<Json<Data<PreviewView>>, ApiError> {
    let request = FormatRequest {
        format: Some(body.format),
        template: body.template,
    };
    let body = state.app.preview_body(&request, &body.event)?;
    Ok(Json(Data::new(PreviewView { body })))
}
