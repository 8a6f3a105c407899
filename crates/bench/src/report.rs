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
        "Produced by `cargo run --release -p bench{}` on {}. Everything ran on 127.0.0.1 in one run: a hyper receiver answering 204, a hyper load generator, and the service as separate processes (SQLite: one `serve`; PostgreSQL: `serve` + 2 `worker`s). Throughput, latency and isolation figures are medians of {} run(s). Machines here are noisy: compare ratios within one run, not absolute numbers across runs.\n",
        if report.quick { " -- --quick" } else { "" },
        report.machine,
        report.ceiling_per_s.len()
    );
    let _ = writeln!(md, "**Loopback ceiling** (same load generator straight to the receiver, 64 connections, 500-byte body): **{ceiling:.0} requests/s**.\n");
    let _ = writeln!(md, "![Throughput by scenario](benchmarks.svg)\n");
    let _ = writeln!(md, "## Throughput\n");
    let _ = writeln!(md, "| scenario | events accepted/s | deliveries/s (end to end) | % of ceiling | CPU s / 1,000 deliveries (service; PostgreSQL server) | duplicates | missing |");
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|");
    for b in &report.backends {
        for (name, runs) in [
            (
                "fan-out 1 (one event per request, concurrency 32)",
                &b.fanout1,
            ),
            ("fan-out 10 (batches of 100 events)", &b.fanout10),
        ] {
            let delivered = med(runs, |t| t.delivered_per_s);
            let _ = writeln!(
                md,
                "| {} {} | {:.0} | **{:.0}** | {:.1} % | {:.3}{} | {} | {} |",
                b.backend,
                name,
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
            bars.push((
                format!(
                    "{} fan-out {}",
                    b.backend,
                    if name.starts_with("fan-out 1 ") {
                        1
                    } else {
                        10
                    }
                ),
                delivered,
            ));
        }
    }
    let _ = writeln!(md, "\nEvery run checks that each accepted (event, webhook) pair arrived: *missing* counts pairs that never did, *duplicates* pairs that arrived more than once.\n");
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
    let _ = writeln!(md, "\n## Backlog and isolation\n");
    if let Some(events) = report
        .backends
        .first()
        .map(|b| b.isolation_events)
        .filter(|n| *n > 0)
    {
        let _ = writeln!(md, "Isolation: {events} events per run, one per request (concurrency 32), to a healthy webhook alone, and with a second webhook subscribed whose receiver accepts connections and never answers (each of its requests hangs until the 5 s request timeout, then is retried). Runs alone and beside alternate, the second webhook disabled for the runs alone (no delivery is created for it), so the machine's drift falls on both sides alike; its requests in flight when it is disabled hang on until their timeout.\n");
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
    let _ = writeln!(md, "\nThe peer figures quoted in the project's issue (Svix on this machine kind: ~900 deliveries/s at fan-out 1, ~2,700/s at fan-out 10, loopback ceiling ~116,000 requests/s) were not re-measured here.");
    std::fs::write(dir.join("benchmarks.md"), md)?;
    std::fs::write(dir.join("benchmarks.svg"), svg(&bars))?;
    Ok(())
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

/// The loopback ceiling (requests/s) of the machine on which the issue's goals were set.
const PEER_MACHINE_CEILING: f64 = 116_000.0;

/// The issue's goals beside this run's figures.
fn goals(md: &mut String, report: &Report) {
    let ceiling = median(report.ceiling_per_s.clone());
    let _ = writeln!(md, "\n## Against the goals\n");
    let _ = writeln!(
        md,
        "The throughput goals were set on a machine whose loopback ceiling was ~116,000 \
         requests/s; beside each absolute goal, the same goal as a share of the ceiling \
         (e.g. 27,000/s = 23.3 %) is compared with this run's share of its own ceiling \
         ({ceiling:.0} requests/s).\n"
    );
    let _ = writeln!(md, "| goal | target | measured | met |");
    let _ = writeln!(md, "|---|---:|---:|:---:|");
    let mut row = |goal: String, target: &str, measured: String, met: bool| {
        let _ = writeln!(
            md,
            "| {goal} | {target} | {measured} | {} |",
            if met { "yes" } else { "**no**" }
        );
    };
    for b in &report.backends {
        let sqlite = b.backend == "Sqlite";
        let f1 = med(&b.fanout1, |t| t.delivered_per_s);
        let f10 = med(&b.fanout10, |t| t.delivered_per_s);
        let (t1, t10) = if sqlite {
            (9_000.0, 27_000.0)
        } else {
            (5_000.0, 15_000.0)
        };
        row(
            format!("{} fan-out 1", b.backend),
            &format!("≥ {t1:.0}/s"),
            format!("{f1:.0}/s"),
            f1 >= t1,
        );
        row(
            format!("{} fan-out 10", b.backend),
            &format!("≥ {t10:.0}/s"),
            format!("{f10:.0}/s"),
            f10 >= t10,
        );
        // The issue's goals were set against a loopback ceiling of ~116,000 requests/s and
        // count as ratios to the ceiling measured in the same run.
        for (name, target, measured) in [("fan-out 1", t1, f1), ("fan-out 10", t10, f10)] {
            let want = 100.0 * target / PEER_MACHINE_CEILING;
            let got = 100.0 * measured / ceiling.max(1.0);
            row(
                format!("{} {name}, share of this run's ceiling", b.backend),
                &format!("≥ {want:.1} %"),
                format!("{got:.1} %"),
                got >= want,
            );
        }
        row(
            format!("{} ingestion p99 at 1,000 events/s", b.backend),
            "< 5 ms",
            format!("{:.1} ms", b.ingest_p99_ms),
            b.ingest_p99_ms < 5.0,
        );
        row(
            format!("{} accept→deliver p50", b.backend),
            "< 5 ms",
            format!("{:.1} ms", b.deliver_p50_ms),
            b.deliver_p50_ms < 5.0,
        );
        row(
            format!("{} accept→deliver p99", b.backend),
            "< 50 ms",
            format!("{:.1} ms", b.deliver_p99_ms),
            b.deliver_p99_ms < 50.0,
        );
        let rss = b
            .backlog_peak_rss_held_mb
            .max(b.backlog_peak_rss_draining_mb);
        row(
            format!("{} peak RSS, {} held", b.backend, b.backlog),
            "< 150 MB",
            format!("{rss:.0} MB"),
            rss < 150.0,
        );
        let drain = 100.0 * b.backlog_drain_per_s / f1.max(1.0);
        row(
            format!("{} drain rate vs empty-queue rate", b.backend),
            "≥ 80 %",
            format!("{drain:.0} %"),
            drain >= 80.0,
        );
        let kept = 100.0 * b.isolation_beside_dead_per_s / b.isolation_alone_per_s.max(1.0);
        row(
            format!("{} isolation: healthy rate kept", b.backend),
            "≥ 90 %",
            format!("{kept:.0} %"),
            kept >= 90.0,
        );
        if let Some(t) = &b.throttle {
            let off = 100.0 * (t.rate_per_s / f64::from(t.limit) - 1.0);
            row(
                format!("{} throttle: rate vs the limit, none lost", b.backend),
                "± 10 %, 0 lost",
                format!("{off:+.1} %, {} lost", t.events - t.received.min(t.events)),
                off.abs() <= 10.0 && t.received >= t.events,
            );
            let kept = 100.0 * t.neighbour_beside_per_s / t.neighbour_alone_per_s.max(1.0);
            row(
                format!("{} throttle: unthrottled neighbour's rate kept", b.backend),
                "≥ 90 %",
                format!("{kept:.0} %"),
                kept >= 90.0,
            );
        }
        let missing: usize = b.fanout1.iter().chain(&b.fanout10).map(|t| t.missing).sum();
        row(
            format!("{} accepted deliveries missing", b.backend),
            "0",
            missing.to_string(),
            missing == 0,
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
            fanout10: runs(f10),
            ingest_p99_ms: 4.9,
            deliver_p50_ms: 1.0,
            deliver_p99_ms: 49.0,
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
                backend("Sqlite", 9_000.0, 27_000.0, 10_000.0, 9_000.0),
                backend("Postgres", 5_000.0, 14_999.0, 10_000.0, 8_999.0),
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
        let mut md = String::new();
        goals(&mut md, &report());
        for met in [
            "Sqlite fan-out 1",
            "Sqlite fan-out 10",
            "Sqlite ingestion p99 at 1,000 events/s",
            "Sqlite accept→deliver p99",
            "Sqlite peak RSS, 1000000 held",
            "Sqlite drain rate vs empty-queue rate",
            "Sqlite isolation: healthy rate kept",
            "Postgres fan-out 1",
            "Postgres fan-out 1, share of this run's ceiling",
        ] {
            assert_eq!(verdict(&md, met), "yes", "{met}");
        }
        for missed in [
            "Postgres fan-out 10",
            "Postgres fan-out 10, share of this run's ceiling",
            "Postgres isolation: healthy rate kept",
        ] {
            assert_eq!(verdict(&md, missed), "**no**", "{missed}");
        }
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
