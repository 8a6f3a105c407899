//! Payload formats: what a webhook's receiver gets in the body. `learnomy` (the default) is the
//! stored event payload itself, byte for byte; `slack`, `discord`, `teams` and `google_chat`
//! are the bodies those apps' incoming webhooks accept, with a readable sentence per event; a
//! `template` is the admin's own (MiniJinja, bounded). Every body is rendered from the stored
//! payload, deterministically, so each attempt of a delivery sends the same bytes, and the
//! signatures cover exactly what is sent.

pub mod chat;
pub mod sentence;
pub mod template;

use std::collections::HashMap;
use std::sync::Arc;

use lwh_domain::catalogue::PING_EVENT;
use lwh_domain::CatalogueEntry;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use lwh_domain::format::Format;
pub use sentence::Sentence;
pub use template::{Template, TemplateError};

/// The stored payload, read back: what chat bodies and templates are built from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    /// `evt_…`
    pub id: String,
    /// The event's slug.
    pub event: String,
    /// RFC 3339.
    pub created_at: String,
    /// The LMS's address, when configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_url: Option<String>,
    /// The event's data.
    pub data: Value,
}

/// Each event's label and sentence pattern, from the catalogue (and the ping's own).
#[derive(Debug, Default)]
pub struct Wording {
    by_slug: HashMap<String, (String, String)>,
}

impl Wording {
    /// The wording of `entries`, plus the Test ping's.
    pub fn new(entries: &[CatalogueEntry]) -> Self {
        let mut by_slug: HashMap<String, (String, String)> = entries
            .iter()
            .map(|e| (e.slug.clone(), (e.label.clone(), e.sentence.clone())))
            .collect();
        by_slug.insert(
            PING_EVENT.to_owned(),
            ("Test".to_owned(), "{message}".to_owned()),
        );
        Self { by_slug }
    }

    /// The label and sentence of `slug` (an unknown slug: the slug itself, no pattern).
    fn of<'a>(&'a self, slug: &'a str) -> (&'a str, &'a str) {
        self.by_slug
            .get(slug)
            .map_or((slug, ""), |(label, pattern)| {
                (label.as_str(), pattern.as_str())
            })
    }
}

/// Why a format cannot be used as configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// `template` without a template.
    #[error("is required when the format is template")]
    TemplateMissing,
    /// A template given with another format.
    #[error("is only used with the template format")]
    TemplateUnused,
    /// The template does not compile.
    #[error(transparent)]
    Template(#[from] TemplateError),
}

/// Why a body could not be rendered when sent (the attempt fails with this reason).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// The stored payload is not the Learnomy envelope (it always is; a corrupt row).
    #[error("the stored payload is not an event envelope")]
    NotAnEnvelope,
    /// The template failed or was stopped.
    #[error(transparent)]
    Template(#[from] TemplateError),
}

/// Turns stored payloads into one webhook's bodies.
#[derive(Debug)]
pub struct Renderer {
    format: Format,
    template: Option<Template>,
    wording: Arc<Wording>,
}

impl Renderer {
    /// The renderer for `format` (with its `template`), refusing what cannot work.
    pub fn new(
        format: Format,
        template: Option<&str>,
        wording: Arc<Wording>,
    ) -> Result<Self, FormatError> {
        let template = match (format, template) {
            (Format::Template, Some(source)) => Some(Template::compile(source)?),
            (Format::Template, None) => return Err(FormatError::TemplateMissing),
            (_, Some(_)) => return Err(FormatError::TemplateUnused),
            (_, None) => None,
        };
        Ok(Self {
            format,
            template,
            wording,
        })
    }

    /// The format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Whether bodies are the stored payload itself (no rendering).
    pub fn is_passthrough(&self) -> bool {
        self.format == Format::Learnomy
    }

    /// The body for a stored payload.
    pub fn render(&self, payload: &[u8]) -> Result<Vec<u8>, RenderError> {
        if self.is_passthrough() {
            return Ok(payload.to_vec());
        }
        let envelope: Envelope =
            serde_json::from_slice(payload).map_err(|_| RenderError::NotAnEnvelope)?;
        let (label, pattern) = self.wording.of(&envelope.event);
        let sentence = Sentence::build(pattern, label, &envelope.data);
        let message = chat::Message {
            label,
            sentence: &sentence,
            envelope: &envelope,
        };
        let body = match (self.format, &self.template) {
            (Format::Slack, _) => chat::slack(&message),
            (Format::Discord, _) => chat::discord(&message),
            (Format::Teams, _) => chat::teams(&message),
            (Format::GoogleChat, _) => chat::google_chat(&message),
            (Format::Template, Some(template)) => {
                let context = TemplateContext {
                    envelope: &envelope,
                    label,
                    sentence: sentence.plain(),
                    link: sentence.link(),
                };
                return Ok(template.render(&context)?.into_bytes());
            }
            (Format::Learnomy | Format::Template, _) => return Ok(payload.to_vec()),
        };
        // Serialising a JSON value cannot fail.
        Ok(serde_json::to_vec(&body).unwrap_or_default())
    }
}

/// What a template sees: the envelope's fields, and the event's label, sentence and link.
#[derive(Serialize)]
struct TemplateContext<'a> {
    #[serde(flatten)]
    envelope: &'a Envelope,
    label: &'a str,
    sentence: String,
    link: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use lwh_domain::catalogue::Catalogue;

    fn payload(entry: &CatalogueEntry) -> Vec<u8> {
        lwh_domain::payload::render(
            "evt_01JDQ0000000000000000000AB".parse().unwrap(),
            &entry.slug,
            lwh_domain::Timestamp::from_millis(1_764_547_200_000),
            Some("https://academy.example"),
            &entry.example,
        )
    }

    /// The words a message must carry for `entry`'s example: the learner's name and the
    /// title of what the event is about, when the data has them.
    fn expected_words(entry: &CatalogueEntry) -> Vec<String> {
        [
            "user_name",
            "course_title",
            "lesson_title",
            "quiz_title",
            "path_title",
        ]
        .iter()
        .filter_map(|f| entry.example.get(*f).and_then(Value::as_str))
        .map(str::to_owned)
        .collect()
    }

    #[test]
    fn every_catalogue_event_reads_as_a_sentence_in_every_chat_format() {
        let entries = Catalogue::builtin_entries().unwrap();
        let wording = Arc::new(Wording::new(&entries));
        for entry in &entries {
            assert!(!entry.sentence.is_empty(), "{} has no sentence", entry.slug);
            let sentence = Sentence::build(&entry.sentence, &entry.label, &entry.example);
            assert!(
                !sentence.plain().contains('?'),
                "{}: {}",
                entry.slug,
                sentence.plain()
            );
            for format in [
                Format::Slack,
                Format::Discord,
                Format::Teams,
                Format::GoogleChat,
            ] {
                let renderer = Renderer::new(format, None, wording.clone()).unwrap();
                let body: Value =
                    serde_json::from_slice(&renderer.render(&payload(entry)).unwrap()).unwrap();
                let text = body.to_string();
                for word in expected_words(entry) {
                    assert!(
                        text.contains(&word),
                        "{format:?} {}: {word} missing in {text}",
                        entry.slug
                    );
                }
                assert!(
                    text.contains(&entry.label),
                    "{format:?} {}: no label",
                    entry.slug
                );
            }
        }
    }

    #[test]
    fn the_learnomy_format_sends_the_stored_bytes_and_templates_see_the_envelope() {
        let entries = Catalogue::builtin_entries().unwrap();
        let wording = Arc::new(Wording::new(&entries));
        let entry = entries
            .iter()
            .find(|e| e.slug == "course_completed")
            .unwrap();
        let stored = payload(entry);
        let plain = Renderer::new(Format::Learnomy, None, wording.clone()).unwrap();
        assert!(plain.is_passthrough());
        assert_eq!(plain.render(&stored).unwrap(), stored);
        let template = Renderer::new(
            Format::Template,
            Some(r#"{"t": {{ sentence }}, "e": {{ event }}, "site": {{ site_url }}, "link": {{ link }}}"#),
            wording,
        )
        .unwrap();
        let body: Value = serde_json::from_slice(&template.render(&stored).unwrap()).unwrap();
        assert_eq!(body["t"], "Jane Doe completed Introduction to Pottery");
        assert_eq!(body["e"], "course_completed");
        assert_eq!(body["site"], "https://academy.example");
        assert_eq!(
            body["link"],
            "https://academy.example/courses/introduction-to-pottery/"
        );
    }

    #[test]
    fn formats_refuse_templates_they_do_not_use() {
        let wording = Arc::new(Wording::default());
        assert_eq!(
            Renderer::new(Format::Template, None, wording.clone()).unwrap_err(),
            FormatError::TemplateMissing
        );
        assert_eq!(
            Renderer::new(Format::Slack, Some("{}"), wording).unwrap_err(),
            FormatError::TemplateUnused
        );
        for f in Format::ALL {
            assert_eq!(Format::parse(f.as_str()), Some(f));
        }
    }
}
