//! The load generator: hyper's pooled HTTP/1.1 client, closed loop (N workers as fast as they
//! go) or open loop (a fixed offered rate).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// One request's outcome.
pub struct Sent {
    /// Ids in the `202` answer (event ids), with when their request was sent: a delivery may
    /// reach the receiver before the `202` reaches the client, so latency counts from the send.
    pub accepted: Vec<(String, Instant)>,
    /// How long the request took.
    pub latency: Duration,
}

/// What a load run produced.
#[derive(Default)]
pub struct LoadResult {
    pub elapsed: Duration,
    pub requests: usize,
    pub errors: usize,
    pub latencies: Vec<Duration>,
    pub accepted: Vec<(String, Instant)>,
    /// Open loop only: each answered request's send time (from the run's start) and latency,
    /// to see whether slow requests come together (a stall) or alone.
    pub timeline: Vec<(Duration, Duration)>,
}

/// A pooled client.
#[derive(Clone)]
pub struct Load {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Load {
    pub fn new(pool: usize) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(pool)
            .build(connector);
        Self { client }
    }

    /// POSTs `body`; parses event ids from a JSON answer when `parse` is set.
    pub async fn post(
        &self,
        uri: &Uri,
        token: Option<&str>,
        body: Bytes,
        parse: bool,
    ) -> anyhow::Result<Sent> {
        let started = Instant::now();
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(uri.clone())
            .header("content-type", "application/json");
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let response = self.client.request(req.body(Full::new(body))?).await?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        let at = Instant::now();
        anyhow::ensure!(
            status.is_success(),
            "HTTP {status}: {}",
            String::from_utf8_lossy(&bytes)
        );
        let mut accepted = Vec::new();
        if parse {
            let v: serde_json::Value = serde_json::from_slice(&bytes)?;
            match &v["data"] {
                serde_json::Value::Array(items) => {
                    for i in items {
                        accepted.push((i["id"].as_str().unwrap_or("").to_owned(), started));
                    }
                }
                one => accepted.push((one["id"].as_str().unwrap_or("").to_owned(), started)),
            }
        }
        Ok(Sent {
            accepted,
            latency: at - started,
        })
    }

    /// `concurrency` workers send requests `0..n` as fast as answers come back.
    pub async fn closed_loop<F>(
        &self,
        uri: Uri,
        token: Option<String>,
        concurrency: usize,
        n: usize,
        parse: bool,
        body: F,
    ) -> LoadResult
    where
        F: Fn(usize) -> Bytes + Send + Sync + 'static,
    {
        let next = Arc::new(AtomicUsize::new(0));
        let body = Arc::new(body);
        let out = Arc::new(Mutex::new(LoadResult::default()));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let (load, uri, token, next, body, out) = (
                self.clone(),
                uri.clone(),
                token.clone(),
                next.clone(),
                body.clone(),
                out.clone(),
            );
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    record(
                        &out,
                        load.post(&uri, token.as_deref(), body(i), parse).await,
                        None,
                    );
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
        let mut result = std::mem::take(&mut *out.lock().unwrap_or_else(|p| p.into_inner()));
        result.elapsed = started.elapsed();
        result
    }

    /// Offers `rate` requests per second for `duration`, whatever the answers' pace.
    pub async fn open_loop<F>(
        &self,
        uri: Uri,
        token: Option<String>,
        rate: u64,
        duration: Duration,
        parse: bool,
        body: F,
    ) -> LoadResult
    where
        F: Fn(usize) -> Bytes + Send + Sync + 'static,
    {
        let out = Arc::new(Mutex::new(LoadResult::default()));
        let started = Instant::now();
        let total = (rate as f64 * duration.as_secs_f64()) as usize;
        let mut tasks = Vec::with_capacity(total);
        for i in 0..total {
            let due = started + Duration::from_secs_f64(i as f64 / rate as f64);
            tokio::time::sleep_until(due.into()).await;
            let (load, uri, token, out, b) = (
                self.clone(),
                uri.clone(),
                token.clone(),
                out.clone(),
                body(i),
            );
            tasks.push(tokio::spawn(async move {
                let sent_at = started.elapsed();
                let result = load.post(&uri, token.as_deref(), b, parse).await;
                record(&out, result, Some(sent_at));
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
        let mut result = std::mem::take(&mut *out.lock().unwrap_or_else(|p| p.into_inner()));
        result.elapsed = started.elapsed();
        result
    }
}

/// Adds one request's outcome to a run's result (and to its timeline, given the send time).
fn record(out: &Mutex<LoadResult>, result: anyhow::Result<Sent>, sent_at: Option<Duration>) {
    if let Ok(mut o) = out.lock() {
        o.requests += 1;
        match result {
            Ok(sent) => {
                o.latencies.push(sent.latency);
                if let Some(at) = sent_at {
                    o.timeline.push((at, sent.latency));
                }
                o.accepted.extend(sent.accepted);
            }
            Err(_) => o.errors += 1,
        }
    }
}

/// The p-th percentile (0–100) of `values`, in milliseconds.
pub fn percentile_ms(values: &mut [Duration], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_unstable();
    let index = ((p / 100.0) * (values.len() - 1) as f64).round() as usize;
    values[index.min(values.len() - 1)].as_secs_f64() * 1000.0
}

/// The p50 and p99 of `values`, in milliseconds: the pair every latency figure reports.
pub fn p50_p99_ms(values: &mut [Duration]) -> (f64, f64) {
    (percentile_ms(values, 50.0), percentile_ms(values, 99.0))
}

#[cfg(test)]
mod percentile_tests {
    use super::*;

    #[test]
    fn percentiles_are_read_from_the_sorted_latencies_in_milliseconds() {
        let mut values: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        assert_eq!(percentile_ms(&mut values, 50.0), 51.0);
        assert_eq!(percentile_ms(&mut values, 99.0), 99.0);
        assert_eq!(percentile_ms(&mut values, 100.0), 100.0);
        assert_eq!(percentile_ms(&mut [], 99.0), 0.0);
        assert_eq!(p50_p99_ms(&mut values), (51.0, 99.0));
    }
}
