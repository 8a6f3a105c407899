//! Request bodies: strict JSON whose every problem names the field.
//!
//! axum's own `Json` rejection says "Failed to deserialize" in plain text; clients of an API
//! deserve a problem+json that says which field is wrong and why, so bodies are decoded here
//! with `serde_path_to_error`.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use lwh_domain::FieldError;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Largest request body accepted (256 KiB); larger bodies get `413 payload_too_large`.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// A JSON body decoded into `T` (which should `deny_unknown_fields`).
#[derive(Debug)]
pub struct StrictJson<T>(pub T);

impl<S, T> FromRequest<S> for StrictJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|ct| {
                let essence = ct
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                essence == "application/json" || essence.ends_with("+json")
            })
            .unwrap_or(false);
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Unsupported media type",
                "Send the body as JSON with Content-Type: application/json.",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                too_large()
            } else {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_body",
                    "Invalid body",
                    "The request body could not be read.",
                )
            }
        })?;
        decode(&bytes).map(StrictJson)
    }
}

/// `413 payload_too_large`.
pub fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "Payload too large",
        format!("The request body exceeds {} KiB.", MAX_BODY_BYTES / 1024),
    )
}

/// Decodes `bytes` as `T`: syntax errors are `400 invalid_json`, shape errors `422
/// validation_failed` naming the field.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.len() > MAX_BODY_BYTES {
        return Err(too_large());
    }
    // Parse first, then map: serde_json reports some type mistakes (a number where an enum is
    // expected) as syntax errors when decoding straight from text.
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| invalid_json(&e))?;
    if !value.is_object() {
        return Err(ApiError::validation(vec![FieldError::new(
            "body",
            "must be a JSON object",
        )]));
    }
    serde_path_to_error::deserialize::<_, T>(value).map_err(|err| {
        ApiError::validation(vec![field_error(
            &err.path().to_string(),
            &err.inner().to_string(),
        )])
    })
}

fn invalid_json(e: &serde_json::Error) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_json",
        "Invalid JSON",
        format!("The body is not valid JSON: {e}"),
    )
}

/// Names the field a serde error is about. serde_path_to_error's path already ends at an
/// unknown field; for a missing field it stops at the parent, so the name is taken from the
/// backquoted part of the message.
fn field_error(path: &str, message: &str) -> FieldError {
    let message = strip_position(message);
    let path = if path == "." { "" } else { path };
    if let Some(name) = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
    {
        let field = if path.is_empty() {
            name.to_owned()
        } else {
            format!("{path}.{name}")
        };
        return FieldError::new(field, format!("missing field `{name}`"));
    }
    let field = if path.is_empty() {
        "body".to_owned()
    } else {
        path.to_owned()
    };
    let message = match message.split_once(", expected one of") {
        Some((head, _)) if head.starts_with("unknown field") => head.to_owned(),
        _ => message,
    };
    FieldError::new(field, message)
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Input {
        url: String,
        events: Vec<String>,
        #[serde(default)]
        nested: Option<Nested>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Nested {
        a: u8,
    }

    fn field_of(body: &str) -> (u16, String) {
        let e = decode::<Input>(body.as_bytes()).unwrap_err();
        let p = e.problem();
        (
            p.status,
            p.errors
                .first()
                .map(|f| f.field.clone())
                .unwrap_or_default(),
        )
    }

    #[test]
    fn names_the_field_for_each_kind_of_mistake() {
        assert_eq!(field_of(r#"{"url": 5, "events": []}"#), (422, "url".into()));
        assert_eq!(
            field_of(r#"{"url": "x", "events": [1]}"#),
            (422, "events[0]".into())
        );
        assert_eq!(field_of(r#"{"events": []}"#), (422, "url".into()));
        assert_eq!(
            field_of(r#"{"url": "x", "events": [], "colour": 1}"#),
            (422, "colour".into())
        );
        assert_eq!(
            field_of(r#"{"url": "x", "events": [], "nested": {"b": 1}}"#),
            (422, "nested.b".into())
        );
        assert_eq!(field_of(r#"[1, 2]"#), (422, "body".into()));
        assert_eq!(field_of(r#""text""#), (422, "body".into()));
    }

    #[test]
    fn syntax_errors_are_invalid_json() {
        for body in ["{", "", "nope", r#"{"url": "x", "events": []} trailing"#] {
            assert_eq!(
                decode::<Input>(body.as_bytes()).unwrap_err().problem().code,
                "invalid_json",
                "{body}"
            );
        }
    }

    #[test]
    fn oversize_bodies_are_refused() {
        let big = vec![b' '; MAX_BODY_BYTES + 1];
        assert_eq!(decode::<Input>(&big).unwrap_err().problem().status, 413);
    }
}
