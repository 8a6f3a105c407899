//! `--baseline FILE`: this build against another build of the service (a `learnomy-webhooks`
//! binary built from an earlier commit), in one run. Each run starts a fresh deployment of each
//! build (`serve` alone), alternating which goes first, and runs the throughput shapes on it: a
//! feature's cost on the default path is the ratio of the two medians, beside the runs' own
//! spread.

use std::fmt::Write as _;
use std::path::Path;

use crate::load::Load;
use crate::receiver::Receiver;
use crate::report::median;
use crate::service::{Backend, Service};
use crate::{subscribe_throughput, throughput, Plan, Shape, Throughput};

/// One backend and shape: the runs of each build.
struct Pair {
    backend: Backend,
    shape: Shape,
    baseline: Vec<Throughput>,
    current: Vec<Throughput>,
}

/// Measures the plan's runs as alternating pairs per backend and returns the Markdown report.
pub async fn run(
    current: &Path,
    baseline: &Path,
    backends: &[Backend],
    shapes: &[Shape],
    plan: &Plan,
    in_flight: usize,
    rx: &Receiver,
) -> anyhow::Result<String> {
    let runs = plan.runs;
    anyhow::ensure!(
        baseline.is_file(),
        "--baseline {}: no such file (a learnomy-webhooks binary built from another commit)",
        baseline.display()
    );
    let load = Load::new(64);
    let mut pairs: Vec<Pair> = Vec::new();
    for backend in backends {
        for shape in shapes {
            pairs.push(Pair {
                backend: *backend,
                shape: *shape,
                baseline: Vec::new(),
                current: Vec::new(),
            });
        }
        for run in 0..runs {
            let order = if run % 2 == 0 {
                [(true, baseline), (false, current)]
            } else {
                [(false, current), (true, baseline)]
            };
            for (is_baseline, bin) in order {
                let svc = Service::start(bin, *backend, 0, in_flight).await?;
                subscribe_throughput(&svc, rx).await?;
                for (i, shape) in shapes.iter().enumerate() {
                    let t = throughput(&svc, rx, &load, *shape, shape.events(plan), run * 10 + i)
                        .await?;
                    eprintln!(
                        "  {backend:?} {shape:?} run {run}, {}: {:.0} delivered/s",
                        if is_baseline {
                            "baseline"
                        } else {
                            "this build"
                        },
                        t.delivered_per_s
                    );
                    if let Some(pair) = pairs
                        .iter_mut()
                        .find(|p| p.backend == *backend && p.shape == *shape)
                    {
                        if is_baseline {
                            pair.baseline.push(t);
                        } else {
                            pair.current.push(t);
                        }
                    }
                }
                svc.stop().await;
            }
        }
    }
    Ok(render(&pairs, baseline, runs))
}

fn render(pairs: &[Pair], baseline: &Path, runs: usize) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "### This build against a baseline\n");
    let _ = writeln!(
        md,
        "Baseline: `{}`. {runs} run(s) per build, each on a fresh deployment (`serve` alone), \
         alternating which build goes first; deliveries per second end to end, medians, with \
         every run and the service's CPU per 1,000 deliveries.\n",
        baseline.display()
    );
    let _ = writeln!(
        md,
        "| backend | scenario | baseline (runs) | this build (runs) | this / baseline | CPU s / 1,000 (baseline, this) | missing |"
    );
    let _ = writeln!(md, "|---|---|---|---|---:|---|---:|");
    for p in pairs {
        let rates = |runs: &[Throughput]| -> (f64, String) {
            let all: Vec<f64> = runs.iter().map(|t| t.delivered_per_s).collect();
            let listed = all
                .iter()
                .map(|r| format!("{r:.0}"))
                .collect::<Vec<_>>()
                .join(", ");
            (median(all), listed)
        };
        let cpu = |runs: &[Throughput]| median(runs.iter().map(|t| t.cpu_s_per_1000).collect());
        let ((b, b_runs), (c, c_runs)) = (rates(&p.baseline), rates(&p.current));
        let missing: usize = p.baseline.iter().chain(&p.current).map(|t| t.missing).sum();
        let _ = writeln!(
            md,
            "| {:?} | {} | {b:.0}/s ({b_runs}) | {c:.0}/s ({c_runs}) | {:.0} % | {:.3}, {:.3} | {missing} |",
            p.backend,
            p.shape.label(),
            100.0 * c / b.max(1.0),
            cpu(&p.baseline),
            cpu(&p.current),
        );
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ratio_is_this_builds_median_over_the_baselines() {
        let runs = |rates: &[f64]| -> Vec<Throughput> {
            rates
                .iter()
                .map(|r| Throughput {
                    delivered_per_s: *r,
                    cpu_s_per_1000: 0.05,
                    ..Default::default()
                })
                .collect()
        };
        let md = render(
            &[Pair {
                backend: Backend::Sqlite,
                shape: Shape::Fanout10Single,
                baseline: runs(&[20_000.0, 10_000.0, 19_000.0]),
                current: runs(&[18_000.0, 19_000.0, 30_000.0]),
            }],
            Path::new("/tmp/old/learnomy-webhooks"),
            3,
        );
        assert!(
            md.contains(
                "| Sqlite | fan-out 10, one event per request | 19000/s (20000, 10000, 19000) \
                 | 19000/s (18000, 19000, 30000) | 100 % | 0.050, 0.050 | 0 |"
            ),
            "{md}"
        );
    }
}
