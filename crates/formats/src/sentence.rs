//! A readable sentence per event — "Jane Doe completed *Introduction to Pottery*" — from the
//! catalogue's pattern (`sentence = "{user} completed {course}"`) and the event's data, kept as
//! pieces so each chat app can mark titles and links up its own way and escape the rest.
//!
//! A placeholder `{x}` becomes, from the data: for `{user}`, `user_name` (else "user #7" from
//! `user_id`); otherwise `x_title` (a title, linked when `x_url` is there), else "x #id" from
//! `x_id`, else the value of `x` itself — so an event from an LMS that sends ids only still
//! reads as a sentence.

use serde_json::Value;

/// One part of a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Words of the pattern, or a value shown as is (ids, scores, amounts).
    Text(String),
    /// A person's name.
    Name(String),
    /// The title of a course, lesson, quiz… with its page when the data has one.
    Title {
        /// The title.
        text: String,
        /// Its URL.
        url: Option<String>,
    },
}

/// A sentence ready to be marked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sentence {
    /// In reading order.
    pub pieces: Vec<Piece>,
}

/// Names for ids whose placeholder is not the word itself.
const NOUNS: [(&str, &str); 2] = [("path", "learning path"), ("plan", "plan")];

impl Sentence {
    /// The sentence for `pattern` over `data`; `fallback` (the event's label) when the
    /// pattern is empty.
    pub fn build(pattern: &str, fallback: &str, data: &Value) -> Self {
        let pattern = if pattern.is_empty() {
            fallback
        } else {
            pattern
        };
        let mut pieces = Vec::new();
        let mut rest = pattern;
        while let Some(open) = rest.find('{') {
            let Some(close) = rest[open..].find('}').map(|c| open + c) else {
                break;
            };
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_owned()));
            }
            pieces.push(resolve(&rest[open + 1..close], data));
            rest = &rest[close + 1..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_owned()));
        }
        capitalize(&mut pieces);
        Self { pieces }
    }

    /// The sentence as plain text (notifications, previews, templates).
    pub fn plain(&self) -> String {
        self.pieces
            .iter()
            .map(|p| match p {
                Piece::Text(t) | Piece::Name(t) => t.as_str(),
                Piece::Title { text, .. } => text.as_str(),
            })
            .collect()
    }

    /// The first linked title's URL: the message's link.
    pub fn link(&self) -> Option<&str> {
        self.pieces.iter().find_map(|p| match p {
            Piece::Title { url: Some(url), .. } => Some(url.as_str()),
            _ => None,
        })
    }

    /// The sentence marked up: `text` escapes plain words, `title` marks a title (with its
    /// URL), `name` a person's name (escaped like text).
    pub fn markup(
        &self,
        text: impl Fn(&str) -> String,
        title: impl Fn(&str, Option<&str>) -> String,
    ) -> String {
        self.pieces
            .iter()
            .map(|p| match p {
                Piece::Text(t) | Piece::Name(t) => text(t),
                Piece::Title { text, url } => title(text, url.as_deref()),
            })
            .collect()
    }
}

/// A value as text: strings as they are, numbers and booleans printed, anything else absent.
fn scalar(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// An `http(s)` URL from the data (anything else is not linked).
fn web_url(v: Option<&Value>) -> Option<String> {
    scalar(v).filter(|u| u.starts_with("https://") || u.starts_with("http://"))
}

fn resolve(name: &str, data: &Value) -> Piece {
    let field = |suffix: &str| data.get(format!("{name}{suffix}"));
    if name == "user" {
        if let Some(n) = scalar(data.get("user_name")) {
            return Piece::Name(n);
        }
    }
    if let Some(title) = scalar(field("_title")) {
        return Piece::Title {
            text: title,
            url: web_url(field("_url")),
        };
    }
    if let Some(id) = scalar(field("_id")) {
        let noun = NOUNS
            .iter()
            .find(|(n, _)| *n == name)
            .map_or_else(|| name.replace('_', " "), |(_, noun)| (*noun).to_owned());
        return Piece::Text(format!("{noun} #{id}"));
    }
    match scalar(data.get(name)) {
        Some(value) => Piece::Text(value),
        None if name == "user" => Piece::Text("someone".to_owned()),
        None => Piece::Text("?".to_owned()),
    }
}

/// Starts the sentence with a capital when it starts with generated words ("user #7 …").
fn capitalize(pieces: &mut [Piece]) {
    if let Some(Piece::Text(first)) = pieces.first_mut() {
        let mut chars = first.chars();
        if let Some(c) = chars.next() {
            *first = c.to_uppercase().chain(chars).collect();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_and_titles_come_from_the_enriched_data() {
        let data = json!({"user_id": 7, "user_name": "Jane Doe", "course_id": 42,
            "course_title": "Intro to Rust", "course_url": "https://academy.example/c/rust/"});
        let s = Sentence::build("{user} completed {course}", "Course completed", &data);
        assert_eq!(s.plain(), "Jane Doe completed Intro to Rust");
        assert_eq!(s.link(), Some("https://academy.example/c/rust/"));
        assert_eq!(
            s.markup(str::to_owned, |t, u| format!("[{t}]({})", u.unwrap_or(""))),
            "Jane Doe completed [Intro to Rust](https://academy.example/c/rust/)"
        );
    }

    #[test]
    fn ids_stand_in_when_names_are_absent() {
        let data = json!({"user_id": 7, "path_id": 6, "score": 85});
        let s = Sentence::build("{user} completed {path} with {score}", "", &data);
        assert_eq!(s.plain(), "User #7 completed learning path #6 with 85");
        assert_eq!(s.link(), None);
        let nobody = Sentence::build("{user} did {thing}", "", &json!({}));
        assert_eq!(nobody.plain(), "Someone did ?");
    }

    #[test]
    fn only_web_links_are_linked_and_an_empty_pattern_falls_back() {
        let data = json!({"course_title": "X", "course_url": "javascript:alert(1)"});
        let s = Sentence::build("{course} was published", "", &data);
        assert_eq!(s.link(), None);
        let label = Sentence::build("", "Custom thing happened", &data);
        assert_eq!(label.plain(), "Custom thing happened");
        let unclosed = Sentence::build("{user} did {", "", &json!({"user_name": "Ann"}));
        assert_eq!(unclosed.plain(), "Ann did {");
    }
}
