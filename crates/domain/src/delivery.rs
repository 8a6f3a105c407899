//! Deliveries and attempts: statuses, outcomes and error kinds, in the words of the Delivery Log.

use serde::Serialize;

/// Where a delivery stands (seed, Delivery Log).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Queued or held, not yet attempted.
    Pending,
    /// Failed at least once; the next attempt is scheduled (or held).
    Retrying,
    /// A 2xx answer was received.
    Delivered,
    /// Every attempt was used, or the delivery was cancelled.
    Failed,
}

impl DeliveryStatus {
    /// Every status, in filter order.
    pub const ALL: [DeliveryStatus; 4] = [
        DeliveryStatus::Pending,
        DeliveryStatus::Retrying,
        DeliveryStatus::Delivered,
        DeliveryStatus::Failed,
    ];

    /// Stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Retrying => "retrying",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    /// Name shown to people.
    pub fn label(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "Pending",
            DeliveryStatus::Retrying => "Retrying",
            DeliveryStatus::Delivered => "Delivered",
            DeliveryStatus::Failed => "Failed",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether more attempts may follow.
    pub fn is_queued(self) -> bool {
        matches!(self, DeliveryStatus::Pending | DeliveryStatus::Retrying)
    }
}

/// Why an attempt failed without (or with a non-2xx) HTTP answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// No complete answer within `request_timeout` (or no connection within `connect_timeout`).
    Timeout,
    /// The connection was refused, reset, or the peer did not speak HTTP.
    Connect,
    /// The host name did not resolve.
    Dns,
    /// The TLS handshake failed (untrusted certificate, wrong name, …).
    Tls,
    /// The URL or a resolved address is refused by the SSRF policy; nothing was sent.
    Blocked,
    /// The receiver answered with a status other than 2xx (including 3xx: redirects are not
    /// followed).
    HttpStatus,
    /// The webhook's template failed or was stopped (too long, too large); nothing was sent.
    /// Not retried: the same template fails the same way (fix it, then redeliver).
    Template,
}

impl ErrorKind {
    /// Stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::Connect => "connect",
            ErrorKind::Dns => "dns",
            ErrorKind::Tls => "tls",
            ErrorKind::Blocked => "blocked",
            ErrorKind::HttpStatus => "http_status",
            ErrorKind::Template => "template",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<Self> {
        [
            ErrorKind::Timeout,
            ErrorKind::Connect,
            ErrorKind::Dns,
            ErrorKind::Tls,
            ErrorKind::Blocked,
            ErrorKind::HttpStatus,
            ErrorKind::Template,
        ]
        .into_iter()
        .find(|k| k.as_str() == text)
    }
}

/// What one attempt produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptOutcome {
    /// The HTTP status, when an answer arrived.
    pub status_code: Option<u16>,
    /// `None` for a 2xx answer.
    pub error_kind: Option<ErrorKind>,
    /// Human detail of the failure.
    pub error: Option<String>,
    /// The first 2 KiB of the response body.
    pub response_excerpt: Option<String>,
    /// `Retry-After` in seconds, from a 429 or 503 answer.
    pub retry_after_secs: Option<u64>,
    /// Milliseconds from start to end of the attempt.
    pub duration_ms: i64,
    /// The request's headers that vary per attempt (signatures, timestamp), one `name: value`
    /// per line, for the Delivery Log — the rest derive from the delivery
    /// ([`crate::request_headers`]); `None` when no request was made (a URL the policy
    /// refuses).
    pub request_headers: Option<String>,
    /// The response's headers as received, in the same form (at most 4 KiB); `None` without
    /// an answer.
    pub response_headers: Option<String>,
}

impl AttemptOutcome {
    /// Whether the receiver accepted the delivery (any 2xx).
    pub fn delivered(&self) -> bool {
        self.error_kind.is_none() && self.status_code.is_some_and(|c| (200..300).contains(&c))
    }

    /// Whether the receiver said the endpoint is gone for good.
    pub fn gone(&self) -> bool {
        self.status_code == Some(410)
    }

    /// A one-line summary for logs and the console ("200", "timeout", …).
    pub fn summary(&self) -> String {
        match (self.status_code, self.error_kind) {
            (Some(code), _) => code.to_string(),
            (None, Some(kind)) => kind.as_str().to_owned(),
            (None, None) => "unknown".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(code: Option<u16>, kind: Option<ErrorKind>) -> AttemptOutcome {
        AttemptOutcome {
            status_code: code,
            error_kind: kind,
            error: None,
            response_excerpt: None,
            retry_after_secs: None,
            duration_ms: 1,
            request_headers: None,
            response_headers: None,
        }
    }

    #[test]
    fn only_2xx_is_delivered() {
        assert!(outcome(Some(200), None).delivered());
        assert!(outcome(Some(204), None).delivered());
        assert!(!outcome(Some(301), Some(ErrorKind::HttpStatus)).delivered());
        assert!(!outcome(Some(500), Some(ErrorKind::HttpStatus)).delivered());
        assert!(!outcome(None, Some(ErrorKind::Timeout)).delivered());
        assert!(outcome(Some(410), Some(ErrorKind::HttpStatus)).gone());
    }

    #[test]
    fn names_round_trip() {
        for s in DeliveryStatus::ALL {
            assert_eq!(DeliveryStatus::parse(s.as_str()), Some(s));
        }
        for k in ["timeout", "connect", "dns", "tls", "blocked", "http_status"] {
            assert_eq!(ErrorKind::parse(k).unwrap().as_str(), k);
        }
    }
}
