//! `GET /api/v1/catalogue`: the events a webhook can subscribe to on this plan.

use axum::extract::State;
use axum::Json;
use lwh_domain::CatalogueEntry;
use serde::Serialize;
use utoipa::ToSchema;

use crate::api::views::Data;
use crate::auth::{Authorized, Manage};
use crate::error::{ApiError, Problem};
use crate::AppState;

/// One subscribable event.
#[derive(Debug, Serialize, ToSchema)]
pub struct CatalogueEntryView {
    /// Machine name, e.g. `course_completed`.
    pub slug: String,
    /// Human name.
    pub label: String,
    /// When it fires.
    pub description: String,
    /// Console group heading.
    pub group: String,
    /// Whether it is a Pro event.
    pub pro: bool,
    /// Whether the service itself sends it (`webhook_failed`, `webhook_recovered`,
    /// `delivery_exhausted`): subscribe to it, but `POST /api/v1/events` refuses it.
    pub service: bool,
    /// An example `data` object.
    #[schema(value_type = Object)]
    pub example: serde_json::Value,
}

impl From<&CatalogueEntry> for CatalogueEntryView {
    fn from(e: &CatalogueEntry) -> Self {
        Self {
            slug: e.slug.clone(),
            label: e.label.clone(),
            description: e.description.clone(),
            group: e.group.clone(),
            pro: e.pro,
            service: e.service,
            example: e.example.clone(),
        }
    }
}

/// The event catalogue of the running plan, in console order.
#[utoipa::path(
    get,
    path = "/api/v1/catalogue",
    tag = "catalogue",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The catalogue", body = Data<Vec<CatalogueEntryView>>),
        (status = 401, description = "No or unknown token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token scope too narrow", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn get_catalogue(
    _auth: Authorized<Manage>,
    State(state): State<AppState>,
) -> Result<Json<Data<Vec<CatalogueEntryView>>>, ApiError> {
    let entries = state
        .app
        .catalogue()
        .entries()
        .iter()
        .map(Into::into)
        .collect();
    Ok(Json(Data::new(entries)))
}
