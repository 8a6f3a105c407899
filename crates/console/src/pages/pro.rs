//! `/admin/pro`: what Learnomy Pro adds — the page the Pro notices point to.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use maud::html;

use crate::layout::{page, Section};
use crate::session::Session;
use crate::ConsoleState;

/// The Pro Features page.
pub async fn show(State(state): State<ConsoleState>, session: Session) -> Response {
    let plan = state.app.settings().plan;
    page(
        "Learnomy Pro",
        &session,
        Section::Webhooks,
        html! {
            nav.breadcrumb aria-label="Breadcrumb" { a href="/admin/webhooks" { "Webhooks" } " / " span aria-current="page" { "Learnomy Pro" } }
            h1 { "Learnomy Pro" }
            p.lead {
                "This service runs the "
                strong { (if plan == lwh_domain::Plan::Pro { "Pro" } else { "Free" }) }
                " plan."
            }
            section.card {
                h2 { "What Pro adds to Outgoing Webhooks" }
                ul {
                    li { strong { "Unlimited webhooks" } " — the Free plan allows 3." }
                    li { strong { "The Pro lifecycle events" } " — learning paths, assignments, cohorts, spaces and gifts — and extra events of your own (" code { "extra_events" } " in the configuration)." }
                    li { strong { "The Delivery Log" } " — every delivery of each webhook with its attempts, response codes and payload, filters, and Redeliver." }
                }
                p {
                    "Pro is a setting of this service: " code { "plan = \"pro\"" } " in its configuration file (or "
                    code { "LEARNOMY_WEBHOOKS_PLAN=pro" } "), then restart it. Webhooks created on Pro keep working if the plan later becomes Free; only adding more is blocked while more than 3 exist."
                }
            }
        },
    )
    .into_response()
}
