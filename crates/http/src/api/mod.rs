//! The REST API under `/api/v1`, assembled with its OpenAPI 3.1 document: every route is
//! registered through `utoipa-axum`, so the document is generated from the handlers themselves.

mod catalogue;
mod deliveries;
mod events;
mod formats;
mod rotation;
mod stats;
mod token;
mod views;
mod webhooks;

use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi as OpenApiDoc;
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Authorized, Manage};
use crate::AppState;

pub use events::{BatchRequest, EventRequest};
pub use views::{Data, WebhookView};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Learnomy Outgoing Webhooks API",
        description = "Manage outgoing webhooks and report LMS events. Success bodies are `{\"data\": …}`; errors are RFC 9457 `application/problem+json` with a machine-readable `code`.",
        license(name = "MIT")
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "catalogue", description = "Events that can fire a webhook"),
        (name = "webhooks", description = "Webhook management"),
        (name = "events", description = "Event ingestion for the LMS"),
        (name = "deliveries", description = "The delivery log (Pro)"),
        (name = "tokens", description = "The calling API token")
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("lwh_…")
                    .description(Some(
                        "An API token from `learnomy-webhooks token create`. A token holds one or both scopes: `events:write` may only ingest events; `webhooks:manage` may do everything.",
                    ))
                    .build(),
            ),
        );
    }
}

/// The API router and the OpenAPI document describing it.
pub fn router_with_openapi() -> (Router<AppState>, OpenApiDoc) {
    let (router, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(catalogue::get_catalogue))
        .routes(routes!(token::get_token))
        .routes(routes!(webhooks::list_webhooks, webhooks::create_webhook))
        .routes(routes!(
            webhooks::get_webhook,
            webhooks::update_webhook,
            webhooks::delete_webhook
        ))
        .routes(routes!(rotation::rotate_secret))
        .routes(routes!(rotation::complete_rotation))
        .routes(routes!(deliveries::test_webhook))
        .routes(routes!(deliveries::list_deliveries))
        .routes(routes!(deliveries::recover))
        .routes(routes!(stats::get_stats))
        .routes(routes!(formats::preview))
        .routes(routes!(deliveries::get_delivery))
        .routes(routes!(deliveries::redeliver))
        .routes(routes!(events::ingest_event))
        .routes(routes!(events::ingest_batch))
        .split_for_parts();
    let served = doc.clone();
    let router = router.route(
        "/api/v1/openapi.json",
        get(move |_auth: Authorized<Manage>| {
            let doc = served.clone();
            async move { Json(doc) }
        }),
    );
    (router, doc)
}

/// The OpenAPI document as JSON text (for `docs/` and tests).
pub fn openapi_json() -> String {
    router_with_openapi().1.to_pretty_json().unwrap_or_default()
}
