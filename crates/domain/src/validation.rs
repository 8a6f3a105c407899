//! Field-level validation errors, shared by the API (problem+json `errors`) and the console
//! (messages beside each field).

use serde::Serialize;

/// One thing wrong with one input field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The input's name as the client sent it, e.g. `url` or `events[2]`.
    pub field: String,
    /// What is wrong, in a sentence a site admin understands.
    pub message: String,
}

impl FieldError {
    /// An error about `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}
