//! `/admin/api`: the OpenAPI document rendered as a page — every route, what it needs and what
//! it answers — for admins who would rather read than load the JSON into a tool.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use maud::html;
use serde_json::Value;

use crate::layout::{page, with_code, Section};
use crate::session::Session;
use crate::ConsoleState;

/// The API reference page.
pub async fn show(State(state): State<ConsoleState>, session: Session) -> Response {
    let doc: Value = serde_json::from_str(&state.openapi).unwrap_or_default();
    let empty = serde_json::Map::new();
    let paths = doc["paths"].as_object().unwrap_or(&empty);
    page(
        "API reference",
        &session,
        Section::Api,
        html! {
            div.page-header { h1 { "API reference" } }
            p.lead {
                "Every route of the REST API, generated from the code. The machine-readable OpenAPI 3.1 document is at "
                code { "/api/v1/openapi.json" } " (send a " code { "webhooks:manage" } " token). "
                "Authenticate with " code { "Authorization: Bearer lwh_…" } "; errors are "
                code { "application/problem+json" } " with a " code { "code" } "."
            }
            @for (path, item) in paths {
                @for (method, op) in item.as_object().unwrap_or(&empty) {
                    section.card.api-route {
                        h2 { span class={"method method-" (method)} { (method.to_uppercase()) } " " code { (path) } }
                        @if let Some(summary) = op["summary"].as_str() { p { (with_code(summary)) } }
                        @if let Some(description) = op["description"].as_str() { p.muted { (with_code(description)) } }
                        @if let Some(params) = op["parameters"].as_array() {
                            h3 { "Parameters" }
                            ul { @for p in params {
                                li { code { (p["name"].as_str().unwrap_or("")) } " (" (p["in"].as_str().unwrap_or("")) ") — " (with_code(p["description"].as_str().unwrap_or(""))) }
                            } }
                        }
                        @if let Some(body) = op["requestBody"]["content"]["application/json"]["schema"]["$ref"].as_str() {
                            h3 { "Request body" }
                            p { code { (body.rsplit('/').next().unwrap_or(body)) } }
                        }
                        h3 { "Responses" }
                        ul { @for (status, r) in op["responses"].as_object().unwrap_or(&empty) {
                            li { strong { (status) } " — " (with_code(r["description"].as_str().unwrap_or(""))) }
                        } }
                    }
                }
            }
        },
    )
    .into_response()
}
