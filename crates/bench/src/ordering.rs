//! The ordering scenario (§15): what keeping each key's order costs. 100 keys × 50 events
//! (keys interleaved, batches of 500) go to a webhook whose receiver fails one request in five,
//! once with `ordering = "none"` and once with `"by_key"`, alternating which goes first; the
//! rate is events delivered (answered 2xx) per second from the first request sent to the last
//! delivery. Retries are quick (20 ms by default, twelve of them) so the figure measures the
//! ordering, not the retry schedule: with the default schedule a failed head holds its key for
//! the first retry's delay, by design. A key's failed heads wait in line one after another, so
//! the delay bounds the by-key rate (~12 retries per key: ~250 ms at 20 ms); `--ordering-retry-ms
//! 1` shows the rate with that wait all but removed.

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::receiver::Receiver;
use crate::service::{Backend, Service};

/// Keys per run.
pub const KEYS: usize = 100;
/// Events per key per run.
pub const PER_KEY: usize = 50;
/// Share of requests the receiver fails, in percent.
pub const FAIL_PERCENT: u64 = 20;

/// Retries in the scenario's schedule (all after the same delay).
const RETRIES: usize = 12;

/// The retry schedule the scenario's service runs with: [`RETRIES`] retries `delay_ms` apart.
fn retry_schedule(delay_ms: u64) -> String {
    serde_json::to_string(&vec![format!("{delay_ms}ms"); RETRIES]).unwrap_or_default()
}

/// One backend's runs: events per second, unordered and by key, run by run.
pub struct OrderingRuns {
    pub backend: Backend,
    pub unordered: Vec<f64>,
    pub by_key: Vec<f64>,
}

/// Measures `runs` pairs on each backend and returns the Markdown section.
pub async fn run(
    bin: &std::path::Path,
    backends: &[Backend],
    runs: usize,
    in_flight: usize,
    retry_ms: u64,
) -> anyhow::Result<String> {
    let mut measured = Vec::new();
    for backend in backends {
        measured.push(measure(bin, *backend, runs, in_flight, retry_ms).await?);
    }
    Ok(render(&measured, in_flight, retry_ms))
}

async fn measure(
    bin: &std::path::Path,
    backend: Backend,
    runs: usize,
    in_flight: usize,
    retry_ms: u64,
) -> anyhow::Result<OrderingRuns> {
    let schedule = retry_schedule(retry_ms);
    let svc = Service::start_with(
        bin,
        backend,
        0,
        in_flight,
        &[("LEARNOMY_WEBHOOKS_RETRY_SCHEDULE", schedule.as_str())],
    )
    .await?;
    let unordered_rx = Receiver::start_failing(false, FAIL_PERCENT).await?;
    let by_key_rx = Receiver::start_failing(false, FAIL_PERCENT).await?;
    for (rx, event, ordering) in [
        (&unordered_rx, "course_completed", "none"),
        (&by_key_rx, "student_enrolled", "by_key"),
    ] {
        svc.api(
            reqwest::Method::POST,
            "/api/v1/webhooks",
            serde_json::json!({
                "url": format!("http://{}/{ordering}", rx.addr),
                "events": [event],
                "ordering": ordering,
            }),
        )
        .await?;
    }
    let mut report = OrderingRuns {
        backend,
        unordered: Vec::new(),
        by_key: Vec::new(),
    };
    for run in 0..runs {
        let base = run * KEYS * PER_KEY * 2;
        let unordered = || rate(&svc, &unordered_rx, "course_completed", base);
        let by_key = || rate(&svc, &by_key_rx, "student_enrolled", base + KEYS * PER_KEY);
        let (u, k) = if run % 2 == 0 {
            let u = unordered().await?;
            (u, by_key().await?)
        } else {
            let k = by_key().await?;
            (unordered().await?, k)
        };
        eprintln!(
            "  {backend:?} ordering run {run}: unordered {u:.0}/s, by key {k:.0}/s ({:.0} %)",
            100.0 * k / u
        );
        report.unordered.push(u);
        report.by_key.push(k);
    }
    svc.stop().await;
    Ok(report)
}

/// Sends one run's events (`n` from `base`) and returns events delivered per second.
async fn rate(svc: &Service, rx: &Receiver, event: &str, base: usize) -> anyhow::Result<f64> {
    let cpu_before = svc.cpu_seconds();
    let before = rx.distinct();
    let total = KEYS * PER_KEY;
    let client = reqwest::Client::builder().no_proxy().build()?;
    let started = Instant::now();
    for chunk in 0..total.div_ceil(500) {
        let events: Vec<serde_json::Value> = (chunk * 500..((chunk + 1) * 500).min(total))
            .map(|i| {
                serde_json::json!({
                    "event": event,
                    "data": {"n": base + i, "round": i / KEYS},
                    "ordering_key": format!("user:{}", i % KEYS),
                })
            })
            .collect();
        let body = Bytes::from(serde_json::to_vec(
            &serde_json::json!({ "events": events }),
        )?);
        let res = client
            .post(svc.url("/api/v1/events/batch"))
            .bearer_auth(&svc.token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?;
        anyhow::ensure!(res.status().is_success(), "batch: {}", res.status());
    }
    let deadline = started + Duration::from_secs(300);
    while rx.distinct() < before + total {
        anyhow::ensure!(
            Instant::now() < deadline,
            "{} of {total} delivered after 300 s",
            rx.distinct() - before
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!(
        "    {event}: {elapsed:.2} s, service CPU {:.3} s per 1,000 events",
        (svc.cpu_seconds() - cpu_before) * 1000.0 / total as f64
    );
    Ok(total as f64 / elapsed)
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
}

fn render(measured: &[OrderingRuns], in_flight: usize, retry_ms: u64) -> String {
    let mut text = format!(
        "### Ordering by key\n\n{KEYS} keys × {PER_KEY} events per run (keys interleaved, batches \
         of 500), a receiver failing {FAIL_PERCENT} % of requests, {RETRIES} retries \
         {retry_ms} ms apart, \
         {in_flight} requests in flight per webhook; events delivered per second from the \
         first request to the last delivery. Runs alternate which mode goes first.\n\n\
         | backend | unordered (runs) | by key (runs) | by key / unordered (median) |\n\
         |---|---|---|---|\n"
    );
    for m in measured {
        let runs = |v: &[f64]| {
            v.iter()
                .map(|r| format!("{r:.0}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (u, k) = (median(&m.unordered), median(&m.by_key));
        text.push_str(&format!(
            "| {:?} | {u:.0}/s ({}) | {k:.0}/s ({}) | {:.0} % |\n",
            m.backend,
            runs(&m.unordered),
            runs(&m.by_key),
            100.0 * k / u
        ));
    }
    text
}
