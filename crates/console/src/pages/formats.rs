//! The form's body format: the format selector, the template field (shown for a custom
//! template), and a preview of the body with an event's example data — rendered with the
//! page, and again by the script whenever the format, the template or the event changes.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::Form;
use lwh_app::formats::FormatRequest;
use lwh_app::AppError;
use lwh_domain::format::Format;
use lwh_domain::CatalogueEntry;
use maud::{html, Markup};
use serde::Deserialize;

use crate::session::{Refusal, Session};
use crate::ConsoleState;

/// The event previews show when the form has none checked.
const DEFAULT_EVENT: &str = "course_completed";

/// The body format part of a webhook form, as sent.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct FormatFields {
    /// A format name; blank: the Learnomy payload.
    #[serde(default)]
    pub format: String,
    /// The template; only used with the template format.
    #[serde(default)]
    pub template: String,
}

impl FormatFields {
    /// The fields of a saved webhook.
    pub fn of(format: Format, template: Option<&str>) -> Self {
        Self {
            format: format.as_str().to_owned(),
            template: template.unwrap_or_default().to_owned(),
        }
    }

    /// What the form asks for: the template only with the template format (the field stays
    /// in the page, hidden, when another format is chosen).
    pub fn request(&self) -> FormatRequest {
        let format = match self.format.trim() {
            "" => Format::Learnomy.as_str().to_owned(),
            name => name.to_owned(),
        };
        let template = (format == Format::Template.as_str()).then(|| self.template.clone());
        FormatRequest {
            format: Some(format),
            template,
        }
    }

    fn is_template(&self) -> bool {
        self.format == Format::Template.as_str()
    }
}

/// The preview's text: the body, or why there is none.
pub fn preview_text(state: &ConsoleState, fields: &FormatFields, event: &str) -> String {
    match state.app.preview_body(&fields.request(), event) {
        Ok(body) => body,
        Err(AppError::Validation(errors)) => errors
            .iter()
            .map(|e| format!("The {} cannot be used: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("\n"),
        Err(e) => e.to_string(),
    }
}

/// The event to preview first: the first one checked, else a course completion.
pub fn preview_event<'a>(checked: &'a [String], catalogue: &'a [CatalogueEntry]) -> &'a str {
    checked
        .iter()
        .find(|slug| catalogue.iter().any(|e| &e.slug == *slug))
        .map(String::as_str)
        .unwrap_or(DEFAULT_EVENT)
}

/// The format selector, the template field and the preview.
pub fn field(
    fields: &FormatFields,
    errors: (Option<&str>, Option<&str>),
    catalogue: &[CatalogueEntry],
    event: &str,
    preview: &str,
) -> Markup {
    let (format_error, template_error) = errors;
    let chosen = Format::parse(fields.format.trim()).unwrap_or_default();
    html! {
        fieldset.field.body-format #body-format aria-describedby="format-help" {
            legend { "Body format" }
            label for="format" { "Send as" }
            select #format name="format" aria-invalid=[format_error.map(|_| "true")] {
                @for f in Format::ALL {
                    option value=(f.as_str()) selected[f == chosen] { (f.label()) }
                }
            }
            p #format-help .help {
                "Learnomy JSON is the signed payload your own endpoint verifies. For Slack, Discord, "
                "Microsoft Teams or Google Chat, paste that app's incoming webhook URL: it gets a "
                "readable message (\"Jane Doe completed Introduction to Pottery\") in its own format. "
                "A custom template builds any body you need."
            }
            @if let Some(e) = format_error { p #format-error .field-error role="alert" { (e) } }
            div #template-field hidden[!fields.is_template() && template_error.is_none()] {
                label for="template" { "Template" }
                textarea #template .mono name="template" rows="8" spellcheck="false" maxlength="16384"
                    aria-describedby="template-help template-error" aria-invalid=[template_error.map(|_| "true")]
                    autofocus[template_error.is_some()] { (fields.template) }
                p #template-help .help {
                    "MiniJinja over the event: " code { "id" } ", " code { "event" } ", " code { "created_at" } ", "
                    code { "site_url" } ", " code { "data" } ", " code { "label" } ", " code { "sentence" } ", "
                    code { "link" } ". Values are inserted as JSON, quotes included: "
                    code { "{\"text\": {{ sentence }}}" } "."
                }
                @if let Some(e) = template_error { p #template-error .field-error role="alert" { (e) } }
            }
            div.preview {
                label for="preview-event" { "Preview with the example data of" }
                select #preview-event {
                    @for e in catalogue {
                        option value=(e.slug) selected[e.slug == event] { (e.label) }
                    }
                }
                pre #format-preview .mono aria-live="polite" tabindex="0" { (preview) }
            }
        }
    }
}

/// What the script sends to preview.
#[derive(Debug, Deserialize)]
pub struct PreviewForm {
    #[serde(default, rename = "_csrf")]
    csrf: String,
    #[serde(flatten)]
    fields: FormatFields,
    #[serde(default)]
    event: String,
}

/// `POST /admin/formats/preview`: the preview's text for the form's current choice (plain
/// text; 422 with the reason when the template cannot be used).
pub async fn preview(
    State(state): State<ConsoleState>,
    session: Session,
    Form(form): Form<PreviewForm>,
) -> Response {
    if !session.csrf_ok(&form.csrf) {
        return Refusal::Csrf.into_response();
    }
    match state.app.preview_body(&form.fields.request(), &form.event) {
        Ok(body) => body.into_response(),
        Err(AppError::Validation(_)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            preview_text(&state, &form.fields, &form.event),
        )
            .into_response(),
        Err(e) => super::error_response(e),
    }
}
