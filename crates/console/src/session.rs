//! Console sessions: a random cookie (stored as a SHA-256 hash), `HttpOnly`,
//! `SameSite=Strict`, `Secure` behind TLS, with a CSRF token every form must echo.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use lwh_app::tokens::{hash_token, random_token};
use lwh_domain::{Timestamp, UserId};

use crate::ConsoleState;

/// Name of the session cookie.
pub const COOKIE: &str = "lwh_session";
/// How long a session lasts.
pub const SESSION_HOURS: i64 = 12;

/// A signed-in admin.
#[derive(Debug, Clone)]
pub struct Session {
    /// Their login name, for the header.
    pub user_name: String,
    /// The token forms must carry in `_csrf`.
    pub csrf: String,
    /// Hash of the cookie value (to end the session).
    pub token_hash: String,
}

impl Session {
    /// Whether `given` is this session's CSRF token (constant-time comparison).
    pub fn csrf_ok(&self, given: &str) -> bool {
        same_secret(&self.csrf, given)
    }
}

/// Whether two secrets are equal, in time that does not depend on where they differ.
pub fn same_secret(expected: &str, given: &str) -> bool {
    let (a, b) = (expected.as_bytes(), given.as_bytes());
    !a.is_empty()
        && a.len() == b.len()
        && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Why a console request is refused: not signed in (to the login page) or a bad CSRF token.
#[derive(Debug)]
pub enum Refusal {
    /// No valid session. For a page (`GET`), the path and query asked for, to come back to
    /// after signing in.
    SignedOut {
        /// Whether the request was a `GET` (a page; anything else gets a 401).
        get: bool,
        /// `/admin/…?…` as asked for.
        wanted: String,
    },
    /// The form's CSRF token is missing or wrong.
    Csrf,
}

/// `path` when it is a console page worth coming back to after signing in: under `/admin/`,
/// not the sign-in, sign-out or setup pages, and never another site (`//host`, `/\\host`).
pub fn return_path(path: &str) -> Option<&str> {
    let page = path.split('?').next().unwrap_or("");
    let console = page.starts_with("/admin/") && page.len() > "/admin/".len();
    let own = ["/admin/login", "/admin/logout", "/admin/setup"]
        .iter()
        .any(|p| page.starts_with(p));
    let elsewhere =
        path.contains("//") || path.contains('\\') || path.chars().any(char::is_control);
    (console && !own && !elsewhere && path.len() <= 512).then_some(path)
}

/// `text` as a query-string value: unreserved characters and `/` as they are, the rest as
/// `%XX`.
fn query_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::SignedOut { get: true, wanted } => match return_path(&wanted) {
                Some(path) => {
                    Redirect::to(&format!("/admin/login?next={}", query_escape(path)))
                        .into_response()
                }
                None => Redirect::to("/admin/login").into_response(),
            },
            Refusal::SignedOut { get: false, .. } => (
                axum::http::StatusCode::UNAUTHORIZED,
                [("content-type", "text/plain; charset=utf-8")],
                "Your session has ended. Sign in again at /admin/login.",
            )
                .into_response(),
            Refusal::Csrf => (
                axum::http::StatusCode::FORBIDDEN,
                [("content-type", "text/plain; charset=utf-8")],
                "This form has expired or did not come from this console. Reload the page and try again.",
            )
                .into_response(),
        }
    }
}

impl FromRequestParts<ConsoleState> for Session {
    type Rejection = Refusal;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ConsoleState,
    ) -> Result<Self, Self::Rejection> {
        let signed_out = Refusal::SignedOut {
            get: parts.method == Method::GET,
            wanted: parts
                .uri
                .path_and_query()
                .map_or_else(String::new, |p| p.as_str().to_owned()),
        };
        let jar = CookieJar::from_headers(&parts.headers);
        let Some(cookie) = jar.get(COOKIE) else {
            return Err(signed_out);
        };
        let token_hash = hash_token(cookie.value());
        match state
            .app
            .store()
            .find_session(&token_hash, Timestamp::now())
            .await
        {
            Ok(Some(s)) => Ok(Session {
                user_name: s.user_name,
                csrf: s.csrf_token,
                token_hash,
            }),
            Ok(None) => Err(signed_out),
            Err(e) => {
                tracing::warn!(error = %e, "session lookup failed");
                Err(signed_out)
            }
        }
    }
}

/// Starts a session for `user`; returns the cookie to set.
pub async fn start(
    state: &ConsoleState,
    user: UserId,
    headers: &HeaderMap,
) -> Result<Cookie<'static>, lwh_app::AppError> {
    let value = random_token("", 43);
    let csrf = random_token("", 32);
    let now = Timestamp::now();
    let expires = now.plus_millis(SESSION_HOURS * 3600 * 1000);
    state
        .app
        .store()
        .insert_session(&hash_token(&value), user, &csrf, now, expires)
        .await?;
    Ok(session_cookie(value, headers))
}

/// The session cookie with its protections; `Secure` when the request came over TLS (directly
/// or through a proxy that says so with `X-Forwarded-Proto: https`).
pub fn session_cookie(value: String, headers: &HeaderMap) -> Cookie<'static> {
    let behind_tls = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    Cookie::build((COOKIE, value))
        .path("/admin")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(behind_tls)
        .max_age(time_hours(SESSION_HOURS))
        .build()
}

fn time_hours(hours: i64) -> time::Duration {
    time::Duration::hours(hours)
}

#[cfg(test)]
mod return_tests {
    use super::*;

    #[test]
    fn only_console_pages_are_returned_to() {
        assert_eq!(
            return_path("/admin/webhooks/wh_1/log?status=failed"),
            Some("/admin/webhooks/wh_1/log?status=failed")
        );
        for refused in [
            "",
            "/admin/",
            "/admin/login",
            "/admin/logout",
            "/admin/setup?token=x",
            "//evil.example/admin/x",
            "/admin//evil.example",
            "/admin/\\evil.example",
            "/api/v1/webhooks",
            "https://evil.example/admin/x",
        ] {
            assert_eq!(return_path(refused), None, "{refused}");
        }
    }

    #[test]
    fn the_return_path_is_escaped_as_a_query_value() {
        assert_eq!(
            query_escape("/admin/x?status=a&cursor=b+c"),
            "/admin/x%3Fstatus%3Da%26cursor%3Db%2Bc"
        );
    }
}
