//! Custom request headers per webhook (e.g. `Authorization` for a receiver behind auth): at most
//! ten, names that are valid header tokens and not ours, values kept like secrets — encrypted at
//! rest and never shown again after saving (shown as [`MASK`]).

use std::fmt;

use crate::validation::FieldError;

/// Most custom headers a webhook may carry.
pub const MAX_CUSTOM_HEADERS: usize = 10;
/// Longest header value accepted.
pub const MAX_VALUE_LEN: usize = 4096;
/// Longest header name accepted.
pub const MAX_NAME_LEN: usize = 64;
/// How a saved value is shown.
pub const MASK: &str = "••••••••";

/// Names a custom header may not take: those the HTTP layer owns and those we sign with.
const RESERVED: [&str; 6] = [
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "user-agent",
];
/// Prefixes of our own headers.
const RESERVED_PREFIXES: [&str; 2] = ["x-learnomy-", "webhook-"];

/// A webhook's custom headers: names as given, values secret (`Debug` never prints them).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct CustomHeaders(Vec<(String, String)>);

impl fmt::Debug for CustomHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl CustomHeaders {
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The names, in the order they were added.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(n, _)| n.as_str())
    }

    /// Names and values, for sending.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The form that is encrypted for storage (a JSON array of `[name, value]`).
    pub fn to_stored(&self) -> String {
        serde_json::to_string(&self.0).unwrap_or_else(|_| "[]".to_owned())
    }

    /// Reads what [`CustomHeaders::to_stored`] wrote.
    pub fn from_stored(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok().map(Self)
    }

    /// These headers with `changes` applied — a value sets (adding or replacing, names compared
    /// without case), `None` removes — or every problem, each naming its header
    /// (`headers.<Name>`).
    pub fn edited(&self, changes: &[(String, Option<String>)]) -> Result<Self, Vec<FieldError>> {
        let mut headers = self.0.clone();
        let mut errors = Vec::new();
        for (name, value) in changes {
            let field = format!("headers.{name}");
            match value {
                None => headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name)),
                Some(value) => {
                    if let Err(e) = check_name(name) {
                        errors.push(FieldError::new(field, e));
                        continue;
                    }
                    if let Err(e) = check_value(value) {
                        errors.push(FieldError::new(field, e));
                        continue;
                    }
                    match headers
                        .iter_mut()
                        .find(|(n, _)| n.eq_ignore_ascii_case(name))
                    {
                        Some(existing) => *existing = (name.clone(), value.clone()),
                        None => headers.push((name.clone(), value.clone())),
                    }
                }
            }
        }
        if headers.len() > MAX_CUSTOM_HEADERS {
            errors.push(FieldError::new(
                "headers",
                format!("at most {MAX_CUSTOM_HEADERS} custom headers"),
            ));
        }
        if errors.is_empty() {
            Ok(Self(headers))
        } else {
            Err(errors)
        }
    }
}

fn check_name(name: &str) -> Result<(), String> {
    let is_tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || name.len() > MAX_NAME_LEN || !name.bytes().all(is_tchar) {
        return Err(format!(
            "\"{name}\" is not a header name: use letters, digits and - (at most {MAX_NAME_LEN})"
        ));
    }
    let lower = name.to_ascii_lowercase();
    if RESERVED.contains(&lower.as_str()) || RESERVED_PREFIXES.iter().any(|p| lower.starts_with(p))
    {
        return Err(format!(
            "{name} is set by the service and cannot be a custom header"
        ));
    }
    Ok(())
}

fn check_value(value: &str) -> Result<(), String> {
    if value.len() > MAX_VALUE_LEN {
        return Err(format!(
            "the value is longer than {MAX_VALUE_LEN} characters"
        ));
    }
    if !value
        .bytes()
        .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
    {
        return Err("the value may contain only printable ASCII characters".to_owned());
    }
    if value.trim().is_empty() {
        return Err("the value is empty (send null to remove the header)".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(name: &str, value: &str) -> (String, Option<String>) {
        (name.to_owned(), Some(value.to_owned()))
    }

    #[test]
    fn headers_are_added_replaced_without_case_and_removed() {
        let h = CustomHeaders::default()
            .edited(&[set("Authorization", "Bearer a"), set("X-Team", "lms")])
            .unwrap();
        let h = h
            .edited(&[set("authorization", "Bearer b"), ("x-team".into(), None)])
            .unwrap();
        assert_eq!(
            h.iter().collect::<Vec<_>>(),
            [("authorization", "Bearer b")]
        );
        assert_eq!(CustomHeaders::from_stored(&h.to_stored()), Some(h.clone()));
        assert!(
            !format!("{h:?}").contains("Bearer"),
            "values never in Debug"
        );
    }

    #[test]
    fn reserved_malformed_and_too_many_are_refused_naming_the_header() {
        for name in [
            "Host",
            "content-type",
            "X-Learnomy-Signature",
            "Webhook-Id",
            "User-Agent",
        ] {
            let errors = CustomHeaders::default()
                .edited(&[set(name, "v")])
                .unwrap_err();
            assert_eq!(errors[0].field, format!("headers.{name}"));
            assert!(errors[0].message.contains("set by the service"), "{name}");
        }
        for name in ["", "Bad Name", "x:y", "ünïcode"] {
            let errors = CustomHeaders::default()
                .edited(&[set(name, "v")])
                .unwrap_err();
            assert_eq!(errors[0].field, format!("headers.{name}"));
        }
        let errors = CustomHeaders::default()
            .edited(&[set("X-Ok", "line\r\nInjected: 1")])
            .unwrap_err();
        assert!(errors[0].message.contains("printable"));
        let many: Vec<_> = (0..11).map(|i| set(&format!("X-H{i}"), "v")).collect();
        let errors = CustomHeaders::default().edited(&many).unwrap_err();
        assert_eq!(errors[0].field, "headers");
    }
}
