//! A real HTTP receiver on 127.0.0.1 that records every request and answers from a script.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;

/// How the receiver answers.
#[derive(Clone, Debug)]
pub enum Answer {
    /// This status, empty body.
    Status(u16),
    /// This status with `Retry-After`.
    StatusRetryAfter(u16, u64),
    /// A redirect to another URL.
    Redirect(u16),
    /// Never answers (holds the connection).
    Hang,
    /// 200 after this many milliseconds.
    SlowOk(u64),
    /// 200 when `X-Learnomy-Signature` or `X-Learnomy-Signature-Next` is the body's
    /// signature under one of these secrets (a receiver in the middle of a rotation), else 401.
    Verify(Vec<String>),
    /// 500 at random this many times in a hundred (recorded as refused), else 200.
    Flaky(u32),
}

/// One request as received.
#[derive(Clone, Debug)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
    /// Whether an `Answer::Verify` refused it (401) or an `Answer::Flaky` failed it (500).
    pub refused: bool,
}

impl Received {
    /// A header as text.
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap_or("").to_owned())
            .unwrap_or_default()
    }

    /// The parsed body.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }

    /// Checks the request the way a receiver would: our signature over the bytes received,
    /// and a Standard Webhooks library's verification.
    #[allow(dead_code)] // not every test binary checks signatures
    pub fn assert_signed(&self, secret: &str) {
        assert!(
            lwh_domain::signing::verify_learnomy_signature(
                secret,
                &self.body,
                &self.header("x-learnomy-signature")
            ),
            "X-Learnomy-Signature does not verify"
        );
        let whsec = lwh_domain::signing::standard_webhooks_secret(secret);
        let mut headers = HeaderMap::new();
        for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
            headers.insert(name, self.header(name).parse().expect("header"));
        }
        standardwebhooks::Webhook::new(&whsec)
            .expect("whsec")
            .verify(&self.body, &headers)
            .expect("Standard Webhooks verifies it");
    }
}

#[derive(Default)]
struct Inner {
    script: VecDeque<Answer>,
    fallback: Option<Answer>,
    received: Vec<Received>,
}

/// A running receiver. Cheap to clone.
#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
}

impl Receiver {
    /// Starts a receiver answering 200 unless scripted otherwise.
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner {
            fallback: Some(Answer::Status(200)),
            ..Inner::default()
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let addr = listener.local_addr().expect("addr");
        let app = Router::new().fallback(handle).with_state(inner.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, inner }
    }

    /// The URL of this receiver.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answers these, in order, then the fallback.
    pub fn script(&self, answers: &[Answer]) {
        self.inner
            .lock()
            .unwrap()
            .script
            .extend(answers.iter().cloned());
    }

    /// The answer once the script is used up.
    pub fn always(&self, answer: Answer) {
        let mut inner = self.inner.lock().unwrap();
        inner.script.clear();
        inner.fallback = Some(answer);
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().unwrap().received.clone()
    }

    /// How many requests arrived.
    pub fn count(&self) -> usize {
        self.inner.lock().unwrap().received.len()
    }

    /// Waits until at least `n` requests arrived, or panics after `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "receiver got {} requests, expected {n}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until a delivery of every one of `event_ids` arrived (by `webhook-id`), or panics
    /// after `timeout` saying how many never did; returns (distinct events seen, duplicates).
    pub async fn wait_for_events<'a>(
        &self,
        event_ids: impl IntoIterator<Item = &'a String>,
        timeout: Duration,
    ) -> (usize, usize) {
        let wanted: Vec<&String> = event_ids.into_iter().collect();
        let deadline = Instant::now() + timeout;
        loop {
            let mut seen: std::collections::HashMap<String, usize> = Default::default();
            for r in self.received() {
                *seen.entry(r.header("webhook-id")).or_default() += 1;
            }
            let missing = wanted.iter().filter(|id| !seen.contains_key(**id)).count();
            if missing == 0 {
                return (seen.len(), seen.values().map(|n| n - 1).sum());
            }
            assert!(
                Instant::now() < deadline,
                "{missing} of {} accepted events never arrived",
                wanted.len()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

async fn handle(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let answer = {
        let mut inner = inner.lock().unwrap();
        let next = inner.script.pop_front();
        let answer = next
            .or_else(|| inner.fallback.clone())
            .unwrap_or(Answer::Status(200));
        let refused = match &answer {
            Answer::Verify(secrets) => !secrets.iter().any(|secret| {
                ["x-learnomy-signature", "x-learnomy-signature-next"]
                    .iter()
                    .filter_map(|name| headers.get(*name).and_then(|v| v.to_str().ok()))
                    .any(|sig| lwh_domain::signing::verify_learnomy_signature(secret, &body, sig))
            }),
            Answer::Flaky(percent) => rand::random::<u32>() % 100 < *percent,
            _ => false,
        };
        let failed = if matches!(answer, Answer::Flaky(_)) {
            500
        } else {
            401
        };
        inner.received.push(Received {
            headers,
            body,
            at: Instant::now(),
            refused,
        });
        if refused {
            Answer::Status(failed)
        } else {
            answer
        }
    };
    match answer {
        Answer::Status(code) => StatusCode::from_u16(code)
            .unwrap_or(StatusCode::OK)
            .into_response(),
        Answer::StatusRetryAfter(code, secs) => (
            StatusCode::from_u16(code).unwrap_or(StatusCode::OK),
            [("retry-after", secs.to_string())],
        )
            .into_response(),
        Answer::Redirect(code) => (
            StatusCode::from_u16(code).unwrap_or(StatusCode::FOUND),
            [("location", "http://127.0.0.1:1/elsewhere")],
        )
            .into_response(),
        Answer::SlowOk(ms) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            StatusCode::OK.into_response()
        }
        Answer::Verify(_) | Answer::Flaky(_) => StatusCode::OK.into_response(),
        Answer::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::OK.into_response()
        }
    }
}
