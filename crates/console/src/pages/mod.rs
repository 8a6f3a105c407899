//! One module per console page.

pub mod api_reference;
pub mod formats;
pub mod log;
pub mod login;
pub mod pro;
pub mod replay;
pub mod rotation;
pub mod setup;
pub mod tokens;
pub mod webhooks;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use lwh_app::AppError;

/// A plain error page for failures that are not about a form field.
pub fn error_response(e: AppError) -> Response {
    let (status, message) = match &e {
        AppError::NotFound(what) => (StatusCode::NOT_FOUND, format!("{what} not found")),
        AppError::ProRequired(what) => (
            StatusCode::FORBIDDEN,
            format!("{what} is available in Learnomy Pro."),
        ),
        AppError::Unavailable(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "The database is unavailable; try again shortly.".to_owned(),
        ),
        AppError::Internal(detail) => {
            tracing::error!(error = %detail, "console error");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong; it has been logged.".to_owned(),
            )
        }
        other => (StatusCode::UNPROCESSABLE_ENTITY, other.to_string()),
    };
    (
        status,
        [("content-type", "text/plain; charset=utf-8")],
        message,
    )
        .into_response()
}
