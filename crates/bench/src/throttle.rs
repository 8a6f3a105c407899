//! The throttle scenario: a webhook limited to 50 deliveries a second is sent 5,000 events at
//! once; its receiver measures the rate it got, and an unthrottled webhook beside it is
//! measured while the throttled one drains, against its rate alone.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::load::Load;
use crate::receiver::Receiver;
use crate::service::Service;
use crate::{batch_body, throughput_on};

/// The limit the scenario sets.
pub const LIMIT: u32 = 50;

/// The event only the unthrottled neighbour subscribes to.
const NEIGHBOUR_EVENT: &str = "student_enrolled";

/// What the throttle scenario measured on one backend.
#[derive(Serialize, Deserialize, Clone, Default, Debug)]
pub struct ThrottleReport {
    /// The throttled webhook's `max_per_second`.
    pub limit: u32,
    /// Events sent to it, all at once.
    pub events: usize,
    /// Distinct events its receiver got.
    pub received: usize,
    /// Events its receiver got more than once.
    pub duplicates: u64,
    /// First to last arrival: (received − 1) / span.
    pub rate_per_s: f64,
    /// The most arrivals within any one second.
    pub busiest_second: usize,
    /// Events per neighbour run (absent in older reports).
    #[serde(default)]
    pub neighbour_events: usize,
    /// The unthrottled neighbour's rate with the throttled webhook idle (median of the runs).
    pub neighbour_alone_per_s: f64,
    /// Its rate while the throttled webhook drains its backlog (median of the runs).
    pub neighbour_beside_per_s: f64,
}

/// Runs the scenario: the neighbour alone `runs` times, then 5,000 (`events`) events for the
/// throttled webhook and the neighbour `runs` times while they drain.
pub async fn measure(
    svc: &Service,
    load: &Load,
    events: usize,
    neighbour_events: usize,
    runs: usize,
) -> anyhow::Result<ThrottleReport> {
    let throttled = Receiver::start(false).await?;
    let neighbour = Receiver::start(false).await?;
    svc.api(
        reqwest::Method::POST,
        "/api/v1/webhooks",
        serde_json::json!({
            "url": format!("http://{}/throttled", throttled.addr),
            "events": ["certificate_issued"],
            "max_per_second": LIMIT,
        }),
    )
    .await?;
    svc.webhook(
        &format!("http://{}/neighbour", neighbour.addr),
        NEIGHBOUR_EVENT,
    )
    .await?;
    // One run of the neighbour's events, ids from `base`: its delivered rate.
    let neighbour_rate = |base: usize| {
        throughput_on(
            svc,
            &neighbour,
            load,
            NEIGHBOUR_EVENT,
            neighbour_events,
            base,
        )
    };
    let mut alone = Vec::new();
    for run in 0..runs {
        let rate = neighbour_rate(20_000_000 + run * 100_000).await?;
        eprintln!("    neighbour alone: {rate:.0}/s");
        alone.push(rate);
    }

    let uri: hyper::Uri = svc.url("/api/v1/events/batch").parse()?;
    let per = 500;
    let sent = load
        .closed_loop(
            uri,
            Some(svc.token.clone()),
            2,
            events / per,
            true,
            move |i| batch_body("certificate_issued", 30_000_000 + i * per, per),
        )
        .await;
    anyhow::ensure!(
        sent.accepted.len() * per >= events,
        "{} of {} batches accepted",
        sent.accepted.len(),
        events / per
    );
    let mut beside = Vec::new();
    for run in 0..runs {
        let rate = neighbour_rate(40_000_000 + run * 100_000).await?;
        let draining = throttled.distinct() < events;
        eprintln!("    neighbour beside the throttled backlog: {rate:.0}/s (backlog still draining: {draining})");
        anyhow::ensure!(
            draining,
            "the throttled backlog drained before the neighbour's runs ended: use fewer runs or more events"
        );
        beside.push(rate);
    }

    // At 50/s the backlog takes events / 50 seconds; allow half as long again.
    let deadline =
        Instant::now() + Duration::from_secs((events as u64 / u64::from(LIMIT)) * 3 / 2 + 30);
    while throttled.distinct() < events && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Anything sent twice would arrive by now.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (mut arrivals, duplicates) = throttled
        .arrivals
        .lock()
        .map(|a| (a.first.values().copied().collect::<Vec<_>>(), a.duplicates))
        .unwrap_or_default();
    arrivals.sort();
    let span = match (arrivals.first(), arrivals.last()) {
        (Some(first), Some(last)) => last.duration_since(*first).as_secs_f64(),
        _ => 0.0,
    };
    let report = ThrottleReport {
        limit: LIMIT,
        events,
        received: arrivals.len(),
        duplicates,
        rate_per_s: arrivals.len().saturating_sub(1) as f64 / span.max(f64::EPSILON),
        busiest_second: lwh_domain::throttle::most_within_a_second(&arrivals),
        neighbour_events,
        neighbour_alone_per_s: crate::report::median(alone),
        neighbour_beside_per_s: crate::report::median(beside),
    };
    eprintln!(
        "    throttled to {LIMIT}/s: {} of {} received at {:.2}/s (busiest second {}), {} duplicates",
        report.received, events, report.rate_per_s, report.busiest_second, report.duplicates
    );
    Ok(report)
}
