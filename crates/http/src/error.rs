//! RFC 9457 problem details: the one way every error leaves the API.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use lwh_app::AppError;
use lwh_domain::FieldError;
use serde::Serialize;
use utoipa::ToSchema;

/// An `application/problem+json` body, with Learnomy's machine-readable `code`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// Always `about:blank`: `code` carries the machine-readable kind.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Short summary of the problem kind.
    pub title: &'static str,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong in this request.
    pub detail: String,
    /// Stable code: `unauthorized`, `forbidden`, `plan_limit_reached`, `pro_required`,
    /// `not_found`, `payload_too_large`, `invalid_json`, `validation_failed`,
    /// `url_not_allowed`, `unknown_event`, `unavailable`, `internal`, … (every one in
    /// [`ERROR_CODES`]).
    pub code: &'static str,
    /// Per-field problems, for validation errors.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<FieldErrorSchema>)]
    pub errors: Vec<FieldError>,
}

/// Every problem `code` the API answers with, its HTTP status and when — the list in
/// `docs/api.md` is checked against this one, and this one against the constructors in the
/// sources, by `tests/docs.rs`.
pub const ERROR_CODES: &[(&str, u16, &str)] = &[
    ("invalid_json", 400, "the body is not valid JSON"),
    ("invalid_body", 400, "the body cannot be read"),
    (
        "unauthorized",
        401,
        "no token, or an unknown or revoked one",
    ),
    (
        "forbidden",
        403,
        "the token's scopes do not allow this route",
    ),
    (
        "plan_limit_reached",
        403,
        "the Free plan's 3 webhooks exist",
    ),
    (
        "pro_required",
        403,
        "the delivery log and redelivery need Pro",
    ),
    ("not_found", 404, "no such webhook, delivery or route"),
    (
        "method_not_allowed",
        405,
        "the route exists, not with this method",
    ),
    (
        "request_timeout",
        408,
        "the request was not received and answered within http_request_timeout",
    ),
    (
        "conflict",
        409,
        "the change conflicts with the current state",
    ),
    ("payload_too_large", 413, "the body is over 256 KiB"),
    (
        "unsupported_media_type",
        415,
        "the body is not sent as application/json",
    ),
    (
        "validation_failed",
        422,
        "a field is invalid; `errors` names each",
    ),
    (
        "url_not_allowed",
        422,
        "the SSRF policy refuses the URL; the detail names the rule",
    ),
    (
        "unknown_event",
        422,
        "the event is not in this plan's catalogue",
    ),
    ("internal", 500, "a bug: never expected, logged"),
    (
        "unavailable",
        503,
        "the database cannot be reached or written; retry after Retry-After",
    ),
];

/// One field's problem.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct FieldErrorSchema {
    /// The input's name, e.g. `url` or `events[2]`.
    field: String,
    /// What is wrong.
    message: String,
}

/// An error on its way to becoming a problem response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    problem: Problem,
    retry_after: Option<u32>,
    www_authenticate: bool,
}

impl ApiError {
    /// A problem with no field errors.
    pub fn new(
        status: StatusCode,
        code: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            problem: Problem {
                kind: "about:blank",
                title,
                status: status.as_u16(),
                detail: detail.into(),
                code,
                errors: Vec::new(),
            },
            retry_after: None,
            www_authenticate: false,
        }
    }

    /// 422 `validation_failed` listing every field problem.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            _ => format!("{} fields are invalid", errors.len()),
        };
        let mut e = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "Validation failed",
            detail,
        );
        e.problem.errors = errors;
        e
    }

    /// 401 `unauthorized`.
    pub fn unauthorized(detail: &str) -> Self {
        let mut e = Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            detail,
        );
        e.www_authenticate = true;
        e
    }

    /// 403 `forbidden` (the token's scope does not allow this).
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", detail)
    }

    /// 404 `not_found`.
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "Not found",
            format!("{what} not found"),
        )
    }

    /// 408 `request_timeout`: the request (its body included) took longer than the server
    /// allows one client to hold it.
    pub fn request_timeout(limit: std::time::Duration) -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            "Request timeout",
            format!(
                "The request was not received and answered within {} s.",
                limit.as_secs_f64()
            ),
        )
    }

    /// The problem body (for tests and the console).
    pub fn problem(&self) -> &Problem {
        &self.problem
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Validation(errors) => ApiError::validation(errors),
            AppError::UrlNotAllowed(field) => {
                let mut e = ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "url_not_allowed",
                    "URL not allowed",
                    format!("The delivery URL {}", field.message),
                );
                e.problem.errors = vec![field];
                e
            }
            AppError::UnknownEvent(field) => {
                let mut e = ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "unknown_event",
                    "Unknown event",
                    field.message.clone(),
                );
                e.problem.errors = vec![field];
                e
            }
            AppError::PlanLimitReached(limit) => ApiError::new(
                StatusCode::FORBIDDEN,
                "plan_limit_reached",
                "Plan limit reached",
                format!("The Free plan allows {limit} webhooks. Learnomy Pro removes this limit."),
            ),
            AppError::ProRequired(what) => ApiError::new(
                StatusCode::FORBIDDEN,
                "pro_required",
                "Pro feature",
                format!("{what} is available in Learnomy Pro."),
            ),
            AppError::NotFound(what) => ApiError::not_found(what),
            AppError::Conflict(what) => ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                "Conflict",
                format!("{what} already exists"),
            ),
            AppError::WrongState(what) => ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                "Conflict",
                what.to_owned(),
            ),
            AppError::Unavailable(source) => {
                tracing::warn!(error = %source, "storage unavailable");
                let mut e = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "Service unavailable",
                    "Storage is temporarily unavailable; retry shortly.",
                );
                e.retry_after = Some(5);
                e
            }
            AppError::Internal(message) => {
                tracing::error!(error = %message, "internal error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "Internal error",
                    "An internal error occurred; it has been logged.",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.www_authenticate {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// Fallback for unknown paths.
pub async fn not_found() -> ApiError {
    ApiError::not_found("route")
}

/// Fallback for a known path with the wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "Method not allowed",
        "This route does not accept that method.",
    )
}

/// A handler panicked: log it and answer a problem instead of dropping the connection.
pub fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "Internal error",
        "An internal error occurred; it has been logged.",
    )
    .into_response()
}
