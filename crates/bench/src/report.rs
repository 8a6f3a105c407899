//! docs/benchmarks.md, .json and .svg from one run.

use std::fmt::Write as _;
use std::path::Path;

use crate::{Report, Throughput};

/// The middle value (the upper one of an even count); 0 when empty.
pub fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

fn med(runs: &[Throughput], f: impl Fn(&Throughput) -> f64) -> f64 {
    median(runs.iter().map(f).collect())
}

/// Writes the three files.
pub fn write(report: &Report, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        dir.join("benchmarks.json"),
        serde_json::to_string_pretty(report)?,
    )?;
    let ceiling = median(report.ceiling_per_s.clone());
    let mut bars: Vec<(String, f64)> = vec![("loopback ceiling".into(), ceiling)];
    let mut md = String::new();
    let _ = writeln!(md, "# Benchmarks\n");
    let _ = writeln!(
        md,
        "Produced by `cargo run --release -p bench{}` on {}. Everything ran on 127.0.0.1 in one run: a hyper receiver answering 204, a hyper load generator, and the service as separate processes ({}). Throughput and latency figures are medians of {} run(s). Machines here are noisy: compare ratios within one run, not absolute numbers across runs.\n",
        if report.quick { " -- --quick" } else { "" },
        report.machine,
        report
            .backends
            .iter()
            .map(|b| format!("{}: {}", b.backend, processes(b.workers)))
            .collect::<Vec<_>>()
            .join("; "),
        report.ceiling_per_s.len()
    );
    let _ = writeln!(md, "**Loopback ceiling** (same load generator straight to the receiver, 64 connections, 500-byte body): **{ceiling:.0} requests/s**.\n");
    let _ = writeln!(md, "![Throughput by scenario](benchmarks.svg)\n");
    let _ = writeln!(md, "## Throughput\n");
    let _ = writeln!(md, "| scenario | events accepted/s | deliveries/s (end to end) | % of ceiling | CPU s / 1,000 deliveries (service; PostgreSQL server) | duplicates | missing |");
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|");
    for b in &report.backends {
        for (shape, name, runs) in [
            (
                "fan-out 1",
                "fan-out 1 (one event per request, concurrency 32)",
                &b.fanout1,
            ),
            (
                "fan-out 10",
                "fan-out 10 (one event per request, concurrency 32)",
                &b.fanout10_single,
            ),
            (
                "fan-out 10 batched",
                "fan-out 10 (batches of 100 events, concurrency 8)",
                &b.fanout10,
            ),
        ] {
            if runs.is_empty() {
                continue;
            }
            let delivered = med(runs, |t| t.delivered_per_s);
            throughput_row(&mut md, &format!("{} {name}", b.backend), runs, ceiling);
            bars.push((format!("{} {shape}", b.backend), delivered));
        }
    }
    process_counts_section(&mut md, report, ceiling);
    let _ = writeln!(md, "\nEvery run checks that each accepted (event, webhook) pair arrived: *missing* counts pairs that never did, *duplicates* pairs that arrived more than once.\n");
    latency_section(&mut md, report);
    let _ = writeln!(md, "\n## Backlog and isolation\n");
    if let Some(events) = report
        .backends
        .first()
        .map(|b| b.isolation_events)
        .filter(|n| *n > 0)
    {
        let _ = writeln!(md, "Isolation: {events} events per run, one per request (concurrency 32), to a healthy webhook alone, and with a second webhook subscribed whose receiver accepts connections and never answers (each of its requests hangs until the 5 s request timeout, then is retried). Runs alone and beside alternate, the second webhook disabled for the runs alone (no delivery is created for it), and which of a pair's two runs goes first alternates too, so the machine's drift falls on both sides alike; its requests in flight when it is disabled hang on until their timeout. The table gives the medians; every pair's figure follows it.\n");
    }
    let _ = writeln!(md, "| backend | held deliveries | peak RSS while held | peak RSS while draining | drain rate | vs empty-queue fan-out 1 | healthy rate alone | beside a dead endpoint | kept |");
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for b in &report.backends {
        let empty = med(&b.fanout1, |t| t.delivered_per_s);
        let _ = writeln!(
            md,
            "| {} | {} | {:.0} MB | {:.0} MB | {:.0}/s | {:.0} % | {:.0}/s | {:.0}/s | {:.0} % |",
            b.backend,
            b.backlog,
            b.backlog_peak_rss_held_mb,
            b.backlog_peak_rss_draining_mb,
            b.backlog_drain_per_s,
            100.0 * b.backlog_drain_per_s / empty.max(1.0),
            b.isolation_alone_per_s,
            b.isolation_beside_dead_per_s,
            100.0 * b.isolation_beside_dead_per_s / b.isolation_alone_per_s.max(1.0),
        );
    }
    for b in report
        .backends
        .iter()
        .filter(|b| !b.isolation_pairs.is_empty())
    {
        let pairs: Vec<String> = b
            .isolation_pairs
            .iter()
            .map(|(alone, beside)| {
                format!(
                    "{:.0} % ({beside:.0}/s of {alone:.0}/s)",
                    100.0 * beside / alone.max(1.0)
                )
            })
            .collect();
        let _ = writeln!(
            md,
            "\nIsolation, {}, every pair in the order run: {}.",
            b.backend,
            pairs.join(", ")
        );
    }
    for b in &report.backends {
        if let (Some(e), Some(q)) = (b.metrics_scrape_empty_ms, b.metrics_scrape_backlog_ms) {
            let _ = writeln!(
                md,
                "\n`/metrics` scrape ({}, 50 in a row, p50 / max): {:.2} / {:.2} ms with an empty queue, {:.2} / {:.2} ms with {} deliveries queued.",
                b.backend, e.0, e.1, q.0, q.1, b.backlog
            );
        }
    }
    throttle_section(&mut md, report);
    goals(&mut md, report);
    let _ = writeln!(md, "\nWhat each optimisation bought, and where the time goes now: [performance.md](performance.md).");
    std::fs::write(dir.join("benchmarks.md"), md)?;
    std::fs::write(dir.join("benchmarks.svg"), svg(&bars))?;
    Ok(())
}

/// The latency runs (absent from partial runs that skipped them).
fn latency_section(md: &mut String, report: &Report) {
    if report.backends.iter().all(|b| b.latency_offered_per_s == 0) {
        return;
    }
    let _ = writeln!(
        md,
        "## Latency at {} events/s offered\n",
        report
            .backends
            .first()
            .map_or(1000, |b| b.latency_offered_per_s)
    );
    if let Some(window) = report
        .backends
        .first()
        .map(|b| b.latency_window_s)
        .filter(|w| *w > 0)
    {
        let _ = writeln!(md, "Each run offers the load for {window} s; the table gives the median of the runs' percentiles. Before each run the page cache is written back (`sync`) and the service left idle for 2 s, so the gigabytes the throughput runs wrote are not flushed during it.\n");
    }
    let _ = writeln!(md, "*accept→deliver* runs from the moment the event's POST is sent to the moment the receiver has the delivery (it includes ingestion; a handed-over delivery can arrive before the `202` does).\n");
    let _ = writeln!(
        md,
        "| backend | ingestion p50 | ingestion p99 | accept→deliver p50 | accept→deliver p99 |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|");
    for b in &report.backends {
        let _ = writeln!(
            md,
            "| {} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms |",
            b.backend, b.ingest_p50_ms, b.ingest_p99_ms, b.deliver_p50_ms, b.deliver_p99_ms
        );
    }
    if let Some((p50, p99)) = report.loopback_latency_ms {
        let _ = writeln!(md, "\nThe machine itself, at the same offered load (the load generator straight to the receiver, no service): p50 {p50:.2} ms, p99 {p99:.2} ms.");
    }
    if let Some((p50, p99)) = report.disk_commit_ms {
        let _ = writeln!(md, "\nThe disk itself, at the same rate (16 KiB written and fdatasynced 1,000 times a second on the databases' disk, no service — about one commit each; every accepted event waits for at least one): p50 {p50:.2} ms, p99 {p99:.2} ms.");
    }
}

/// `serve` alone, or with its workers.
fn processes(workers: usize) -> String {
    match workers {
        0 => "`serve` alone".to_owned(),
        1 => "`serve` + 1 `worker`".to_owned(),
        n => format!("`serve` + {n} `worker`s"),
    }
}

/// One row of a throughput table: medians of the runs.
fn throughput_row(md: &mut String, scenario: &str, runs: &[Throughput], ceiling: f64) {
    let delivered = med(runs, |t| t.delivered_per_s);
    let _ = writeln!(
        md,
        "| {scenario} | {:.0} | **{:.0}** | {:.1} % | {:.3}{} | {} | {} |",
        med(runs, |t| t.accepted_per_s),
        delivered,
        100.0 * delivered / ceiling.max(1.0),
        med(runs, |t| t.cpu_s_per_1000),
        if runs.iter().any(|t| t.database_cpu_s_per_1000.is_some()) {
            format!(
                "; {:.3}",
                med(runs, |t| t.database_cpu_s_per_1000.unwrap_or(0.0))
            )
        } else {
            String::new()
        },
        runs.iter().map(|t| t.duplicates).sum::<u64>(),
        runs.iter().map(|t| t.missing).sum::<usize>(),
    );
}

/// The throughput scenarios again with more processes (PostgreSQL's `worker`s), beside
/// `serve` alone.
fn process_counts_section(md: &mut String, report: &Report, ceiling: f64) {
    for b in report
        .backends
        .iter()
        .filter(|b| !b.process_counts.is_empty())
    {
        let _ = writeln!(md, "\n### {} with more processes\n", b.backend);
        let _ = writeln!(md, "The same runs with `worker` processes beside `serve`, each process count in its own deployment (fan-out 10: one event per request). The cores are two: every process, the database server, the load generator and the receiver share them.\n");
        let _ = writeln!(md, "| processes | scenario | events accepted/s | deliveries/s (end to end) | % of ceiling | CPU s / 1,000 deliveries (service; PostgreSQL server) | duplicates | missing |");
        let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|");
        let counts = std::iter::once((b.workers, &b.fanout1, &b.fanout10_single)).chain(
            b.process_counts
                .iter()
                .map(|p| (p.workers, &p.fanout1, &p.fanout10_single)),
        );
        for (workers, fanout1, fanout10) in counts {
            for (name, runs) in [("fan-out 1", fanout1), ("fan-out 10", fanout10)] {
                throughput_row(
                    md,
                    &format!("{} | {name}", processes(workers)),
                    runs,
                    ceiling,
                );
            }
        }
    }
}

/// The throttle scenario: the rate the throttled webhook's receiver measured, and the
/// unthrottled neighbour's rate beside it.
fn throttle_section(md: &mut String, report: &Report) {
    let measured: Vec<_> = report
        .backends
        .iter()
        .filter_map(|b| b.throttle.as_ref().map(|t| (&b.backend, t)))
        .collect();
    let Some((_, first)) = measured.first() else {
        return;
    };
    let _ = writeln!(md, "\n## Throttle\n");
    let _ = writeln!(md, "A webhook with `max_per_second: {}` is sent {} events at once (batches of 500); its receiver measures the rate from the first arrival to the last, and the most arrivals within any one second. An unthrottled webhook on another event is measured alone first (the throttled one idle), then while the throttled backlog drains ({} events per run, one per request, concurrency 32).\n", first.limit, first.events, first.neighbour_events);
    let _ = writeln!(md, "| backend | received | rate measured | vs limit | busiest second | duplicates | neighbour alone | neighbour beside | kept |");
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (backend, t) in &measured {
        let _ = writeln!(
            md,
            "| {} | {} of {} | {:.2}/s | {:+.1} % | {} | {} | {:.0}/s | {:.0}/s | {:.0} % |",
            backend,
            t.received,
            t.events,
            t.rate_per_s,
            100.0 * (t.rate_per_s / f64::from(t.limit) - 1.0),
            t.busiest_second,
            t.duplicates,
            t.neighbour_alone_per_s,
            t.neighbour_beside_per_s,
            100.0 * t.neighbour_beside_per_s / t.neighbour_alone_per_s.max(1.0),
        );
    }
}

/// Svix (open source, PostgreSQL + Redis) measured on this machine kind by the same method, as
/// quoted in the performance issue: deliveries/s at fan-out 1 and at fan-out 10.
const SVIX_QUOTED: (f64, f64) = (1_021.0, 3_810.0);

/// The round's throughput goals (deliveries/s): fan-out 1 and fan-out 10 one event per
/// request, `serve` alone.
fn throughput_goals(backend: &str) -> (f64, f64) {
    if backend == "Sqlite" {
        (15_000.0, 30_000.0)
    } else {
        (6_000.0, 15_000.0)
    }
}

/// The issue's goals beside this run's figures.
fn goals(md: &mut String, report: &Report) {
    let ceiling = median(report.ceiling_per_s.clone());
    let _ = writeln!(md, "\n## Against the goals\n");
    let _ = writeln!(
        md,
        "The goals of the performance issue (round 2), for `serve` alone. Each throughput \
         figure is also given as a share of this run's loopback ceiling ({ceiling:.0} \
         requests/s): machines of this kind are noisy, and the share travels between them \
         better than the absolute figure.\n"
    );
    let _ = writeln!(md, "| goal | target | measured | met |");
    let _ = writeln!(md, "|---|---:|---:|:---:|");
    // `met` is None for a scenario a partial run did not measure.
    let mut row = |goal: String, target: &str, measured: String, met: Option<bool>| {
        let (measured, met) = match met {
            Some(true) => (measured, "yes"),
            Some(false) => (measured, "**no**"),
            None => ("not measured".to_owned(), "—"),
        };
        let _ = writeln!(md, "| {goal} | {target} | {measured} | {met} |");
    };
    for b in &report.backends {
        let latency = b.latency_offered_per_s > 0;
        let backlog = b.backlog > 0;
        let isolation = !b.isolation_pairs.is_empty() || b.isolation_alone_per_s > 0.0;
        let (t1, t10) = throughput_goals(&b.backend);
        let share = |rate: f64| 100.0 * rate / ceiling.max(1.0);
        for (name, target, runs) in [
            ("fan-out 1", t1, &b.fanout1),
            ("fan-out 10, one event per request", t10, &b.fanout10_single),
        ] {
            let rate = med(runs, |t| t.delivered_per_s);
            row(
                format!("{} {name}", b.backend),
                &format!("≥ {target:.0}/s"),
                format!("{rate:.0}/s ({:.1} % of ceiling)", share(rate)),
                (!runs.is_empty()).then_some(rate >= target),
            );
        }
        row(
            format!("{} ingestion p99 at 1,000 events/s", b.backend),
            "< 5 ms",
            format!("{:.1} ms", b.ingest_p99_ms),
            latency.then_some(b.ingest_p99_ms < 5.0),
        );
        row(
            format!("{} accept→deliver p50", b.backend),
            "< 5 ms",
            format!("{:.1} ms", b.deliver_p50_ms),
            latency.then_some(b.deliver_p50_ms < 5.0),
        );
        row(
            format!("{} accept→deliver p99", b.backend),
            "< 5 ms",
            format!("{:.1} ms", b.deliver_p99_ms),
            latency.then_some(b.deliver_p99_ms < 5.0),
        );
        let rss = b
            .backlog_peak_rss_held_mb
            .max(b.backlog_peak_rss_draining_mb);
        row(
            format!("{} peak RSS, {} held", b.backend, b.backlog),
            "< 150 MB",
            format!("{rss:.0} MB"),
            backlog.then_some(rss < 150.0),
        );
        let f1 = med(&b.fanout1, |t| t.delivered_per_s);
        let drain = 100.0 * b.backlog_drain_per_s / f1.max(1.0);
        row(
            format!("{} drain rate vs empty-queue rate", b.backend),
            "≥ 80 %",
            format!("{drain:.0} %"),
            (backlog && !b.fanout1.is_empty()).then_some(drain >= 80.0),
        );
        let kept: Vec<f64> = if b.isolation_pairs.is_empty() {
            vec![100.0 * b.isolation_beside_dead_per_s / b.isolation_alone_per_s.max(1.0)]
        } else {
            b.isolation_pairs
                .iter()
                .map(|(alone, beside)| 100.0 * beside / alone.max(1.0))
                .collect()
        };
        let worst = kept.iter().copied().fold(f64::INFINITY, f64::min);
        row(
            format!("{} isolation: healthy rate kept, every pair", b.backend),
            "≥ 90 %",
            format!(
                "lowest {worst:.0} % of {} (median {:.0} %)",
                kept.len(),
                median(kept.clone())
            ),
            isolation.then_some(worst >= 90.0),
        );
        if let Some(t) = &b.throttle {
            let off = 100.0 * (t.rate_per_s / f64::from(t.limit) - 1.0);
            row(
                format!("{} throttle: rate vs the limit, none lost", b.backend),
                "± 10 %, 0 lost",
                format!("{off:+.1} %, {} lost", t.events - t.received.min(t.events)),
                Some(off.abs() <= 10.0 && t.received >= t.events),
            );
            let kept = 100.0 * t.neighbour_beside_per_s / t.neighbour_alone_per_s.max(1.0);
            row(
                format!("{} throttle: unthrottled neighbour's rate kept", b.backend),
                "≥ 90 %",
                format!("{kept:.0} %"),
                Some(kept >= 90.0),
            );
        }
        let missing: usize = b
            .fanout1
            .iter()
            .chain(&b.fanout10)
            .chain(&b.fanout10_single)
            .chain(
                b.process_counts
                    .iter()
                    .flat_map(|p| p.fanout1.iter().chain(&p.fanout10_single)),
            )
            .map(|t| t.missing)
            .sum();
        row(
            format!("{} accepted deliveries missing", b.backend),
            "0",
            missing.to_string(),
            Some(missing == 0),
        );
    }
    let svix: Vec<String> = report
        .backends
        .iter()
        .filter(|b| !b.fanout1.is_empty() && !b.fanout10_single.is_empty())
        .map(|b| {
            format!(
                "{} {:.1}× at fan-out 1 and {:.1}× at fan-out 10",
                b.backend,
                med(&b.fanout1, |t| t.delivered_per_s) / SVIX_QUOTED.0,
                med(&b.fanout10_single, |t| t.delivered_per_s) / SVIX_QUOTED.1
            )
        })
        .collect();
    if !svix.is_empty() {
        let _ = writeln!(
            md,
            "\nAgainst Svix as quoted in the performance issue (measured there on this machine \
             kind by the same method, one message per request: {:.0} deliveries/s at fan-out 1, \
             {:.0}/s at fan-out 10; not re-measured in this run): {}.",
            SVIX_QUOTED.0,
            SVIX_QUOTED.1,
            svix.join("; ")
        );
    }
}

/// A horizontal bar chart, log-free and dependency-free.
fn svg(bars: &[(String, f64)]) -> String {
    let max = bars.iter().map(|(_, v)| *v).fold(1.0, f64::max);
    let (width, row, left) = (760.0, 34.0, 220.0);
    let height = 40.0 + row * bars.len() as f64;
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="13"><text x="10" y="22" font-weight="bold">Requests or deliveries per second (median)</text>"#
    );
    for (i, (label, value)) in bars.iter().enumerate() {
        let y = 36.0 + row * i as f64;
        let w = (width - left - 90.0) * value / max;
        let colour = if i == 0 { "#8c8f94" } else { "#3858e9" };
        let _ = write!(
            out,
            r#"<text x="10" y="{:.0}">{label}</text><rect x="{left}" y="{y:.0}" width="{w:.1}" height="22" fill="{colour}"/><text x="{:.1}" y="{:.0}">{value:.0}</text>"#,
            y + 15.0,
            left + w + 6.0,
            y + 15.0
        );
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BackendReport;

    fn runs(delivered: f64) -> Vec<Throughput> {
        [0.9, 1.0, 1.1]
            .iter()
            .map(|k| Throughput {
                delivered_per_s: delivered * k,
                ..Default::default()
            })
            .collect()
    }

    /// A run whose PostgreSQL figures sit just under two goals and just over the others.
    fn report() -> Report {
        let backend = |name: &str, f1: f64, f10: f64, alone: f64, beside: f64| BackendReport {
            backend: name.to_owned(),
            fanout1: runs(f1),
            fanout10: runs(f10 * 2.0),
            fanout10_single: runs(f10),
            isolation_pairs: vec![(alone, beside); 5],
            ingest_p99_ms: 4.9,
            deliver_p50_ms: 1.0,
            deliver_p99_ms: 4.9,
            backlog: 1_000_000,
            backlog_peak_rss_held_mb: 120.0,
            backlog_peak_rss_draining_mb: 149.0,
            backlog_drain_per_s: f1 * 0.8,
            isolation_alone_per_s: alone,
            isolation_beside_dead_per_s: beside,
            ..Default::default()
        };
        Report {
            ceiling_per_s: vec![90_000.0, 116_000.0, 120_000.0],
            backends: vec![
                backend("Sqlite", 15_000.0, 30_000.0, 10_000.0, 9_000.0),
                backend("Postgres", 6_000.0, 14_999.0, 10_000.0, 8_999.0),
            ],
            ..Default::default()
        }
    }

    fn verdict(md: &str, goal: &str) -> String {
        md.lines()
            .find(|l| l.starts_with(&format!("| {goal} |")))
            .and_then(|l| l.trim_end_matches(" |").rsplit("| ").next())
            .unwrap_or_else(|| panic!("no row for {goal}"))
            .to_owned()
    }

    #[test]
    fn the_goals_table_says_no_for_each_goal_missed_even_narrowly() {
        let mut run = report();
        for b in &mut run.backends {
            b.latency_offered_per_s = 1000;
        }
        let mut md = String::new();
        goals(&mut md, &run);
        for met in [
            "Sqlite fan-out 1",
            "Sqlite fan-out 10, one event per request",
            "Sqlite ingestion p99 at 1,000 events/s",
            "Sqlite accept→deliver p99",
            "Sqlite peak RSS, 1000000 held",
            "Sqlite drain rate vs empty-queue rate",
            "Sqlite isolation: healthy rate kept, every pair",
            "Postgres fan-out 1",
        ] {
            assert_eq!(verdict(&md, met), "yes", "{met}");
        }
        for missed in [
            "Postgres fan-out 10, one event per request",
            "Postgres isolation: healthy rate kept, every pair",
        ] {
            assert_eq!(verdict(&md, missed), "**no**", "{missed}");
        }
    }

    #[test]
    fn a_partial_run_says_not_measured_for_the_goals_it_skipped() {
        let mut run = report();
        run.backends[0].fanout1.clear();
        run.backends[0].isolation_pairs.clear();
        run.backends[0].isolation_alone_per_s = 0.0;
        let mut md = String::new();
        goals(&mut md, &run);
        for skipped in [
            "Sqlite fan-out 1",
            "Sqlite ingestion p99 at 1,000 events/s",
            "Sqlite accept→deliver p50",
            "Sqlite accept→deliver p99",
            "Sqlite drain rate vs empty-queue rate",
            "Sqlite isolation: healthy rate kept, every pair",
        ] {
            assert_eq!(verdict(&md, skipped), "—", "{skipped}");
        }
        assert_eq!(
            verdict(&md, "Sqlite fan-out 10, one event per request"),
            "yes"
        );
    }

    #[test]
    fn isolation_is_missed_when_one_pair_falls_short_though_the_median_holds() {
        let mut run = report();
        run.backends[0].isolation_pairs = vec![
            (10_000.0, 9_500.0),
            (10_000.0, 9_600.0),
            (10_000.0, 8_900.0),
            (10_000.0, 9_900.0),
            (10_000.0, 9_700.0),
        ];
        let mut md = String::new();
        goals(&mut md, &run);
        assert_eq!(
            verdict(&md, "Sqlite isolation: healthy rate kept, every pair"),
            "**no**"
        );
        assert!(md.contains("lowest 89 % of 5 (median 96 %)"), "{md}");
    }

    #[test]
    fn the_latency_section_is_left_out_of_runs_that_skipped_the_latency_runs() {
        let mut run = report();
        let mut md = String::new();
        latency_section(&mut md, &run);
        assert!(md.is_empty(), "{md}");
        run.backends[0].latency_offered_per_s = 1000;
        latency_section(&mut md, &run);
        assert!(
            md.starts_with("## Latency at 1000 events/s offered"),
            "{md}"
        );
    }

    #[test]
    fn medians_take_the_middle_run() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 3.0);
        assert_eq!(median(vec![]), 0.0);
    }

    #[test]
    fn a_report_written_from_json_renders_the_same() {
        let dir = std::env::temp_dir().join(format!("lwh-bench-report-{}", std::process::id()));
        write(&report(), &dir).unwrap();
        let md = std::fs::read_to_string(dir.join("benchmarks.md")).unwrap();
        let json = std::fs::read_to_string(dir.join("benchmarks.json")).unwrap();
        let again: Report = serde_json::from_str(&json).unwrap();
        let dir2 = dir.join("again");
        write(&again, &dir2).unwrap();
        assert_eq!(
            md,
            std::fs::read_to_string(dir2.join("benchmarks.md")).unwrap()
        );
        assert!(md.contains("**116000 requests/s**"), "the median ceiling");
        assert!(std::fs::read_to_string(dir.join("benchmarks.svg"))
            .unwrap()
            .starts_with("<svg"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
