//! What an operation can refuse, in the product's terms. The HTTP layer maps each variant to a
//! status and problem `code`; the console shows the same messages beside the fields.

use lwh_domain::FieldError;
use lwh_storage::StoreError;

/// Why an operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Input is malformed; every problem is listed by field.
    #[error("the input is not valid")]
    Validation(Vec<FieldError>),
    /// The URL is refused by the SSRF policy; the message names the rule.
    #[error("the URL is not allowed: {}", .0.message)]
    UrlNotAllowed(FieldError),
    /// The event slug is not in this plan's catalogue (ingestion).
    #[error("{}", .0.message)]
    UnknownEvent(FieldError),
    /// The Free plan's cap is used up.
    #[error("the Free plan allows {0} webhooks; upgrade to Learnomy Pro for unlimited webhooks")]
    PlanLimitReached(u64),
    /// The feature is Pro only.
    #[error("{0} is available in Learnomy Pro")]
    ProRequired(&'static str),
    /// The thing does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A name is already taken.
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// The change cannot be made in the current state; the text says what to do first.
    #[error("{0}")]
    WrongState(&'static str),
    /// The database is unreachable; retry later.
    #[error("storage is unavailable, retry shortly")]
    Unavailable(#[source] StoreError),
    /// A bug or corrupted data; logged, never shown in detail.
    #[error("internal error")]
    Internal(String),
}

impl AppError {
    /// A validation error about one field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        AppError::Validation(vec![FieldError::new(field, message)])
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => AppError::Conflict(what),
            StoreError::LimitReached => {
                AppError::PlanLimitReached(lwh_domain::plan::FREE_WEBHOOK_LIMIT)
            }
            e if e.is_unavailable() => AppError::Unavailable(e),
            e => AppError::Internal(e.to_string()),
        }
    }
}
