//! Body formats on the application side: checking a requested format and template when a
//! webhook is saved (errors name `format` or `template`), the renderer a delivering process
//! builds for a webhook, and the preview of a body with an event's example data.

use lwh_domain::format::Format;
use lwh_domain::{FieldError, Timestamp};
use lwh_formats::{FormatError, Renderer, Template};
use lwh_storage::WebhookRecord;

use crate::app::App;
use crate::error::AppError;

/// A webhook's body format as requested: `format` (a name) and `template` (a source).
#[derive(Debug, Clone, Default)]
pub struct FormatRequest {
    /// `learnomy`, `slack`, `discord`, `teams`, `google_chat` or `template`.
    pub format: Option<String>,
    /// The template's source, with `template`.
    pub template: Option<String>,
}

impl FormatRequest {
    /// Whether the request asks for a change.
    pub fn is_empty(&self) -> bool {
        self.format.is_none() && self.template.is_none()
    }
}

/// The format and template to store, given the request and (for an edit) what is stored: a
/// template alone replaces the stored template of a `template` webhook; another format drops
/// the stored template.
pub fn check_format(
    request: &FormatRequest,
    current: Option<(Format, Option<&str>)>,
) -> Result<(Format, Option<String>), FieldError> {
    let format = match request.format.as_deref() {
        Some(name) => Format::parse(name).ok_or_else(|| {
            FieldError::new(
                "format",
                "must be learnomy, slack, discord, teams, google_chat or template",
            )
        })?,
        None => current.map_or(Format::Learnomy, |(f, _)| f),
    };
    let template = match (&request.template, format) {
        (Some(source), _) => Some(source.clone()),
        (None, Format::Template) => current
            .filter(|(f, _)| *f == Format::Template)
            .and_then(|(_, t)| t.map(str::to_owned)),
        (None, _) => None,
    };
    match (format, template.as_deref()) {
        (Format::Template, Some(source)) => Template::compile(source)
            .map(|_| (format, template.clone()))
            .map_err(|e| FieldError::new("template", e.to_string())),
        (Format::Template, None) => Err(FieldError::new(
            "template",
            FormatError::TemplateMissing.to_string(),
        )),
        (_, Some(_)) => Err(FieldError::new(
            "template",
            FormatError::TemplateUnused.to_string(),
        )),
        (_, None) => Ok((format, None)),
    }
}

impl App {
    /// What `webhook` sends for a stored `payload` when its format is not the payload itself
    /// (the Delivery Log shows it beside the payload), rendered with its current format;
    /// `None` for the Learnomy format or a webhook gone.
    pub async fn body_for(&self, webhook: lwh_domain::WebhookId, payload: &[u8]) -> Option<String> {
        let webhook = self.store().get_webhook(webhook).await.ok()??;
        let renderer = self.renderer(&webhook).ok()?;
        if renderer.is_passthrough() {
            return None;
        }
        Some(match renderer.render(payload) {
            Ok(body) => {
                let text = String::from_utf8_lossy(&body).into_owned();
                match serde_json::from_str::<serde_json::Value>(&text) {
                    Ok(v) if webhook.format != Format::Template => {
                        serde_json::to_string_pretty(&v).unwrap_or(text)
                    }
                    _ => text,
                }
            }
            Err(e) => format!("(not sent: {e})"),
        })
    }

    /// The renderer of `webhook`'s bodies (its template compiled once).
    pub fn renderer(&self, webhook: &WebhookRecord) -> Result<Renderer, FormatError> {
        Renderer::new(webhook.format, webhook.template.as_deref(), self.wording())
    }

    /// The body `format` (with `template`) would send for `event` with its example data: what
    /// the console and the API's preview show.
    pub fn preview_body(&self, request: &FormatRequest, event: &str) -> Result<String, AppError> {
        let entry = self
            .catalogue()
            .get(event)
            .ok_or_else(|| AppError::field("event", "is not in this plan's catalogue"))?;
        let (format, template) =
            check_format(request, None).map_err(|e| AppError::Validation(vec![e]))?;
        let renderer = Renderer::new(format, template.as_deref(), self.wording())
            .map_err(|e| AppError::field("template", e.to_string()))?;
        let site_url = Some(self.settings().site_url.as_str());
        let payload = lwh_domain::payload::render(
            lwh_domain::EventId::generate(),
            &entry.slug,
            Timestamp::now(),
            site_url,
            &entry.example,
        );
        let body = renderer
            .render(&payload)
            .map_err(|e| AppError::field("template", e.to_string()))?;
        let text = String::from_utf8_lossy(&body).into_owned();
        // JSON bodies are shown indented; a template's own text as it is.
        Ok(match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(v) if format != Format::Template => serde_json::to_string_pretty(&v).unwrap_or(text),
            _ => text,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(format: Option<&str>, template: Option<&str>) -> FormatRequest {
        FormatRequest {
            format: format.map(str::to_owned),
            template: template.map(str::to_owned),
        }
    }

    #[test]
    fn formats_and_templates_are_checked_together() {
        assert_eq!(
            check_format(&req(None, None), None),
            Ok((Format::Learnomy, None))
        );
        assert_eq!(
            check_format(&req(Some("slack"), None), None),
            Ok((Format::Slack, None))
        );
        assert_eq!(
            check_format(&req(Some("irc"), None), None)
                .unwrap_err()
                .field,
            "format"
        );
        assert_eq!(
            check_format(&req(Some("template"), None), None)
                .unwrap_err()
                .field,
            "template"
        );
        assert_eq!(
            check_format(&req(Some("slack"), Some("{}")), None)
                .unwrap_err()
                .field,
            "template"
        );
        let broken = check_format(&req(Some("template"), Some("{{ x ")), None).unwrap_err();
        assert!(broken.message.starts_with("line 1"), "{}", broken.message);
        // An edit: a new template alone keeps the format; another format drops the template.
        let stored = Some((Format::Template, Some("{{ id }}")));
        assert_eq!(
            check_format(&req(None, Some("{{ event }}")), stored),
            Ok((Format::Template, Some("{{ event }}".to_owned())))
        );
        assert_eq!(
            check_format(&req(Some("template"), None), stored),
            Ok((Format::Template, Some("{{ id }}".to_owned())))
        );
        assert_eq!(
            check_format(&req(Some("discord"), None), stored),
            Ok((Format::Discord, None))
        );
    }
}
