//! One signed POST to one receiver, and what came back.
//!
//! Pooled connections (HTTP/1.1 keep-alive, HTTP/2 by ALPN), rustls, a connect timeout and one
//! deadline for the whole exchange, no redirects, no environment proxies, and a response body
//! read up to 64 KiB of which 2 KiB are kept for the log.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{
    HeaderMap, HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE, RETRY_AFTER, USER_AGENT,
};
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use lwh_domain::custom_headers::CustomHeaders;
use lwh_domain::rotation::previous_still_signs;
use lwh_domain::signing::{learnomy_signature, standard_webhooks_signature};
use lwh_domain::throttle::Throttle;
use lwh_domain::{
    AttemptOutcome, DeliveryId, ErrorKind, EventId, Timestamp, WebhookId, WebhookSecret,
};
use lwh_formats::Renderer;
use lwh_url_policy::{HostResolver, Rejection, UrlPolicy};
use tokio::time::timeout_at;

use crate::guarded_resolver::{GuardRejection, GuardedResolver};

/// Most response-body bytes read from a receiver.
pub const MAX_RESPONSE_READ: usize = 64 * 1024;
/// Response-body bytes kept in the delivery log.
pub const RESPONSE_EXCERPT: usize = 2 * 1024;
/// Most bytes of a request's or a response's headers kept for the Delivery Log.
pub const HEADERS_KEPT: usize = 4 * 1024;

/// `User-Agent` of every request.
pub const USER_AGENT_VALUE: &str = lwh_domain::request_headers::USER_AGENT;

/// Where a webhook's deliveries go and how they are signed.
#[derive(Clone)]
pub struct Target {
    /// The webhook.
    pub webhook_id: WebhookId,
    /// Its delivery URL.
    pub url: String,
    /// Its secret.
    pub secret: WebhookSecret,
    /// The events it subscribes to, from which ingestion reserves hand-over slots.
    pub events: Vec<String>,
    /// During a secret rotation: the previous secret and when its overlap ends; until then
    /// it signs beside `secret` (docs/receivers.md, "Rotating the secret").
    pub previous: Option<(WebhookSecret, Timestamp)>,
    /// Its custom headers, sent on every attempt (values marked sensitive).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Its throttle: its deliveries are claimed paced and never handed over.
    pub throttle: Option<Throttle>,
    /// Its body format when it is not the stored payload itself (`None`: the Learnomy
    /// payload, sent as stored).
    pub renderer: Option<Arc<Renderer>>,
    /// The URL checked against the policy and turned into a request URI, once per target
    /// rather than per attempt (the URL and the policy cannot change under a target; an edit
    /// builds a new one).
    checked: std::sync::OnceLock<Result<Uri, Refusal>>,
}

impl Target {
    /// A target for `webhook_id`, subscribed to `events`.
    pub fn new(
        webhook_id: WebhookId,
        url: String,
        secret: WebhookSecret,
        events: Vec<String>,
        previous: Option<(WebhookSecret, Timestamp)>,
        custom: &CustomHeaders,
    ) -> Self {
        // Validated when saved; a pair that still does not parse is left out.
        let headers = custom
            .iter()
            .filter_map(|(name, value)| {
                let name = HeaderName::from_bytes(name.as_bytes()).ok()?;
                let mut value = HeaderValue::from_str(value).ok()?;
                value.set_sensitive(true);
                Some((name, value))
            })
            .collect();
        Self {
            webhook_id,
            url,
            secret,
            events,
            previous,
            headers,
            throttle: None,
            renderer: None,
            checked: std::sync::OnceLock::new(),
        }
    }

    /// The same target, sending bodies in `renderer`'s format.
    pub fn formatted(mut self, renderer: Renderer) -> Self {
        self.renderer = (!renderer.is_passthrough()).then(|| Arc::new(renderer));
        self
    }

    /// The same target, limited to `throttle` (`None`: unlimited).
    pub fn throttled(mut self, throttle: Option<Throttle>) -> Self {
        self.throttle = throttle;
        self
    }
}

/// Why a target's URL is not sent to, as the log records it.
#[derive(Clone)]
struct Refusal {
    kind: ErrorKind,
    message: String,
}

/// One request to make.
#[derive(Clone, Copy)]
pub struct Outgoing<'a> {
    /// `X-Learnomy-Delivery`.
    pub delivery_id: DeliveryId,
    /// Standard Webhooks `webhook-id`.
    pub event_id: EventId,
    /// `X-Learnomy-Event`.
    pub event: &'a str,
    /// The stored body bytes, shared with the request (no copy per attempt).
    pub payload: &'a Arc<[u8]>,
}

/// The connection stack: TLS (or plain HTTP) over TCP connections to guarded addresses.
type Connector = HttpsConnector<HttpConnector<GuardedResolver>>;

/// The HTTP client for deliveries. Cheap to share (`Arc`s inside).
///
/// hyper's pooled client is used directly: a general-purpose client's per-request layers
/// (default-header merge, redirect bookkeeping, URL re-parsing) were ~12 % of the service's
/// CPU per delivery, for features a webhook sender does not use (docs/performance.md).
#[derive(Clone)]
pub struct Sender {
    client: Client<Connector, Full<Bytes>>,
    policy: UrlPolicy,
    request_timeout: Duration,
}

impl Sender {
    /// A client with the configured timeouts that connects only where `policy` allows:
    /// HTTP/1.1 keep-alive or HTTP/2 by ALPN, rustls with the Mozilla roots, no redirects, no
    /// environment proxies.
    pub fn new(
        policy: UrlPolicy,
        resolver: Arc<dyn HostResolver>,
        connect_timeout: Duration,
        request_timeout: Duration,
    ) -> Result<Self, rustls::Error> {
        let mut tcp =
            HttpConnector::new_with_resolver(GuardedResolver::new(policy.clone(), resolver));
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(connect_timeout));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())?
            .https_or_http()
            .enable_all_versions()
            .wrap_connector(tcp);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(60))
            // Many webhooks can share one host (Zapier, a CRM), each with its own in-flight
            // slots: keeping only a few idle connections per host made every burst open new
            // ones. Connections exist only up to the in-flight peak and close after 60 s idle.
            .pool_max_idle_per_host(crate::worker::MAX_IN_FLIGHT_TOTAL)
            .build(connector);
        Ok(Self {
            client,
            policy,
            request_timeout,
        })
    }

    /// Sends one attempt; never fails — every problem becomes an [`AttemptOutcome`].
    pub async fn send(&self, target: &Target, out: &Outgoing<'_>) -> AttemptOutcome {
        let started = Instant::now();
        let elapsed = |started: Instant| started.elapsed().as_millis() as i64;
        // The URL was checked when saved; check again (IP literals, a policy changed between
        // runs). Names are checked again at connect time by the guarded resolver.
        let uri = match target
            .checked
            .get_or_init(|| request_uri(&self.policy, &target.url))
        {
            Ok(uri) => uri.clone(),
            Err(refusal) => {
                return failure(refusal.kind, refusal.message.clone(), elapsed(started))
            }
        };
        // A chat body or a template is rendered from the stored payload, the same bytes on
        // every attempt; the signatures cover what is sent.
        let rendered: Arc<[u8]>;
        let out = match &target.renderer {
            None => out,
            Some(renderer) => match renderer.render(out.payload) {
                Ok(body) => {
                    rendered = Arc::from(body);
                    &Outgoing {
                        payload: &rendered,
                        ..*out
                    }
                }
                Err(e) => return failure(ErrorKind::Template, e.to_string(), elapsed(started)),
            },
        };
        let mut request = Request::new(Full::new(Bytes::from_owner(out.payload.clone())));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = uri;
        *request.headers_mut() = signed_headers(target, out, Timestamp::now());
        let sent = Some(varying_lines(request.headers()));
        // One deadline for the whole exchange: connect, TLS, headers and body.
        let deadline = tokio::time::Instant::from_std(started) + self.request_timeout;
        let response = match timeout_at(deadline, self.client.request(request)).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                let (kind, message) = classify(&e);
                return AttemptOutcome {
                    request_headers: sent,
                    ..failure(kind, message, elapsed(started))
                };
            }
            Err(_) => {
                return AttemptOutcome {
                    request_headers: sent,
                    ..failure(ErrorKind::Timeout, TIMED_OUT.to_owned(), elapsed(started))
                }
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let received = header_lines(response.headers());
        let (excerpt, body_error) = read_excerpt(response.into_body(), deadline).await;
        // A 2xx whose body never finishes (a receiver dribbling bytes past the timeout) is not
        // a completed exchange: it is a failure, of the kind that ended it.
        let (error_kind, error) = match body_error {
            Some((kind, e)) => (Some(kind), Some(format!("HTTP {status}, then {e}"))),
            None if (200..300).contains(&status) => (None, None),
            None if (300..400).contains(&status) => (
                Some(ErrorKind::HttpStatus),
                Some(format!("HTTP {status}: redirects are not followed")),
            ),
            None => (Some(ErrorKind::HttpStatus), Some(format!("HTTP {status}"))),
        };
        AttemptOutcome {
            status_code: Some(status),
            error_kind,
            error,
            response_excerpt: Some(excerpt).filter(|e| !e.is_empty()),
            retry_after_secs: retry_after.filter(|_| status == 429 || status == 503),
            duration_ms: elapsed(started),
            request_headers: sent,
            response_headers: Some(received),
        }
    }
}

const TIMED_OUT: &str = "no complete answer before the timeout";

/// The policy-checked URL as a request URI (the fragment is the receiver's own business and
/// is never sent).
fn request_uri(policy: &UrlPolicy, url: &str) -> Result<Uri, Refusal> {
    let mut url = policy.check_url(url).map_err(|rejection| Refusal {
        kind: blocked_kind(&rejection),
        message: rejection.to_string(),
    })?;
    url.set_fragment(None);
    url.as_str().parse::<Uri>().map_err(|e| Refusal {
        kind: ErrorKind::Connect,
        message: format!("the URL cannot be sent: {e}"),
    })
}

/// The request headers listed in docs/concepts.md ("Headers"). During a rotation's overlap
/// `X-Learnomy-Signature` keeps the previous secret's signature (what receivers verify until
/// they switch), `X-Learnomy-Signature-Next` carries the new one's, and `webhook-signature`
/// both (`v1,<new> v1,<previous>`, as the Standard Webhooks specification allows).
pub fn signed_headers(target: &Target, out: &Outgoing<'_>, now: Timestamp) -> HeaderMap {
    let secret = target.secret.expose();
    let previous = target
        .previous
        .as_ref()
        .filter(|(_, ends_at)| previous_still_signs(Some(*ends_at), now))
        .map(|(s, _)| s.expose());
    let event_id = out.event_id.to_string();
    let timestamp = now.unix_seconds();
    let mut h = HeaderMap::with_capacity(11);
    let mut put = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    };
    let mut standard = standard_webhooks_signature(secret, &event_id, timestamp, out.payload);
    match previous {
        None => put(
            "x-learnomy-signature",
            learnomy_signature(secret, out.payload),
        ),
        Some(previous) => {
            put(
                "x-learnomy-signature",
                learnomy_signature(previous, out.payload),
            );
            put(
                "x-learnomy-signature-next",
                learnomy_signature(secret, out.payload),
            );
            standard.push(' ');
            standard.push_str(&standard_webhooks_signature(
                previous,
                &event_id,
                timestamp,
                out.payload,
            ));
        }
    }
    put("x-learnomy-event", out.event.to_owned());
    put("x-learnomy-delivery", out.delivery_id.to_string());
    put("x-learnomy-webhook", target.webhook_id.to_string());
    put("webhook-signature", standard);
    put("webhook-id", event_id);
    put("webhook-timestamp", timestamp.to_string());
    for (name, value) in &target.headers {
        h.insert(name.clone(), value.clone());
    }
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
    h.insert(ACCEPT, HeaderValue::from_static("*/*"));
    h
}

fn failure(kind: ErrorKind, message: String, duration_ms: i64) -> AttemptOutcome {
    AttemptOutcome {
        status_code: None,
        error_kind: Some(kind),
        error: Some(message),
        response_excerpt: None,
        retry_after_secs: None,
        duration_ms,
        request_headers: None,
        response_headers: None,
    }
}

/// The request headers that vary per attempt (signatures, timestamp), as stored for the
/// Delivery Log; the rest derive from the delivery (`lwh_domain::request_headers`).
fn varying_lines(headers: &HeaderMap) -> String {
    let mut text = String::with_capacity(200);
    for name in lwh_domain::request_headers::VARYING {
        if let Some(value) = headers.get(name).and_then(|v| v.to_str().ok()) {
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(name);
            text.push_str(": ");
            text.push_str(value);
        }
    }
    text
}

/// Headers as the Delivery Log shows them: one `name: value` per line, in the order they
/// were sent or received, the whole at most [`HEADERS_KEPT`] bytes (a receiver's huge headers
/// cost the log nothing more). A value that is not visible ASCII is shown lossily.
pub fn header_lines(headers: &HeaderMap) -> String {
    let mut text = String::with_capacity(512);
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        let line_len = name.as_str().len() + 2 + value.len() + 1;
        if text.len() + line_len > HEADERS_KEPT {
            text.push('…');
            break;
        }
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(name.as_str());
        text.push_str(": ");
        text.push_str(&value);
    }
    text
}

fn blocked_kind(rejection: &Rejection) -> ErrorKind {
    match rejection {
        Rejection::DoesNotResolve(_) => ErrorKind::Dns,
        _ => ErrorKind::Blocked,
    }
}

/// Reads up to [`MAX_RESPONSE_READ`] bytes before `deadline` and keeps the first
/// [`RESPONSE_EXCERPT`] as text; past that the connection is dropped, so a huge body costs
/// nothing.
async fn read_excerpt(
    mut body: Incoming,
    deadline: tokio::time::Instant,
) -> (String, Option<(ErrorKind, String)>) {
    let mut kept: Vec<u8> = Vec::new();
    let mut read = 0usize;
    let mut error = None;
    while read < MAX_RESPONSE_READ {
        match timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => {
                let Ok(chunk) = frame.into_data() else {
                    continue; // trailers
                };
                read += chunk.len();
                let room = RESPONSE_EXCERPT.saturating_sub(kept.len());
                kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(None) => break,
            Ok(Some(Err(_))) => {
                error = Some((
                    ErrorKind::Connect,
                    "the response body was cut short".to_owned(),
                ));
                break;
            }
            Err(_) => {
                error = Some((
                    ErrorKind::Timeout,
                    "the response body did not finish before the timeout".to_owned(),
                ));
                break;
            }
        }
    }
    (String::from_utf8_lossy(&kept).into_owned(), error)
}

/// Sorts a client failure into the log's error kinds, with a readable message.
fn classify(e: &hyper_util::client::legacy::Error) -> (ErrorKind, String) {
    let mut source: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(GuardRejection(rejection)) = err.downcast_ref::<GuardRejection>() {
            return (blocked_kind(rejection), rejection.to_string());
        }
        if err.downcast_ref::<rustls::Error>().is_some() {
            return (ErrorKind::Tls, format!("TLS handshake failed: {err}"));
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::TimedOut {
                return (ErrorKind::Timeout, TIMED_OUT.to_owned());
            }
            if let Some(inner) = io.get_ref() {
                if inner.downcast_ref::<rustls::Error>().is_some() {
                    return (ErrorKind::Tls, format!("TLS handshake failed: {inner}"));
                }
            }
        }
        source = err.source();
    }
    let detail = root_cause(e);
    // rustls' error can sit inside an io::Error whose source() skips it; its text is stable.
    let lower = detail.to_ascii_lowercase();
    if ["certificate", "tls", "handshake", "alert"]
        .iter()
        .any(|w| lower.contains(w))
    {
        return (ErrorKind::Tls, format!("TLS handshake failed: {detail}"));
    }
    (ErrorKind::Connect, format!("connection failed: {detail}"))
}

fn root_cause(e: &hyper_util::client::legacy::Error) -> String {
    let mut last: &(dyn StdError + 'static) = e;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lines_keep_order_and_stop_at_the_cap() {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        h.append("x-many", HeaderValue::from_static("one"));
        h.append("x-many", HeaderValue::from_static("two"));
        assert_eq!(
            header_lines(&h),
            "content-type: application/json\nx-many: one\nx-many: two"
        );
        let big = "v".repeat(1000);
        let mut h = HeaderMap::new();
        for i in 0..10 {
            h.insert(
                HeaderName::from_bytes(format!("x-big-{i}").as_bytes()).expect("name"),
                HeaderValue::from_str(&big).expect("value"),
            );
        }
        let text = header_lines(&h);
        assert!(
            text.len() <= HEADERS_KEPT + '…'.len_utf8(),
            "{}",
            text.len()
        );
        assert!(text.ends_with('…'), "cut short, and says so");
        assert_eq!(text.lines().count(), 4, "whole lines only");
    }
}
