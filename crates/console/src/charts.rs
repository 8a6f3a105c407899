//! Health charts drawn on the server as inline SVG (no chart library, no script): a small
//! bar chart per webhook row and a larger one on the Delivery Log, one bar per hour, delivered
//! attempts in green with failed ones stacked on top in red. Each chart carries a text
//! equivalent for screen readers and a figures line beside it.

use lwh_domain::stats::{HourPoint, Window, WindowStats, HOUR_MS};
use lwh_domain::Timestamp;
use maud::{html, Markup, PreEscaped};

use crate::layout::thousands;

/// The row chart's size in pixels.
const SPARK_W: f64 = 120.0;
const SPARK_H: f64 = 28.0;

/// The log chart's plotting area and margins.
const BIG_W: f64 = 720.0;
const BIG_H: f64 = 160.0;
const LEFT: f64 = 48.0;
const BOTTOM: f64 = 22.0;
const TOP: f64 = 8.0;

/// 0.9876 → "98.7 %" (rounded down, so 99.96 % never reads 100 %).
pub fn percent(rate: f64) -> String {
    let tenths = (rate * 1000.0).floor() / 10.0;
    if tenths >= 100.0 {
        "100 %".to_owned()
    } else {
        format!("{tenths:.1} %")
    }
}

/// 20 → "20 ms", 1500 → "1.5 s".
pub fn duration(ms: i64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms % 1000 == 0 {
        format!("{} s", ms / 1000)
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

/// "1,234 attempts, 98.7 % delivered, p95 ≤ 20 ms" — the chart's words.
pub fn summary(s: &WindowStats) -> String {
    match (s.success_rate, s.p95_ms) {
        (Some(rate), Some(p95)) => format!(
            "{} {}, {} delivered, p95 ≤ {}",
            thousands(s.attempts.max(0) as u64),
            if s.attempts == 1 {
                "attempt"
            } else {
                "attempts"
            },
            percent(rate),
            duration(p95)
        ),
        _ => format!("No attempts in the last {}", window_words(s.window)),
    }
}

fn window_words(w: Window) -> &'static str {
    match w {
        Window::Day => "24 hours",
        Window::Week => "7 days",
    }
}

/// One bar's two rectangles (delivered below, failed on top) in a plot `height` high whose
/// tallest bar is `max`, at `x` and `width` wide; nothing for an empty hour. Bars of a single
/// attempt stay visible (1 px at least).
fn bar(h: &HourPoint, max: i64, x: f64, width: f64, bottom: f64, height: f64) -> Markup {
    let total = h.succeeded + h.failed;
    if total == 0 || max == 0 {
        return html! {};
    }
    let scale = |n: i64| (n as f64 / max as f64 * height).max(if n > 0 { 1.0 } else { 0.0 });
    let ok = scale(h.succeeded);
    let bad = scale(h.failed);
    let tip = format!(
        "{}: {} delivered, {} failed",
        hour_label(h.hour, true),
        thousands(h.succeeded as u64),
        thousands(h.failed as u64)
    );
    html! {
        g {
            title { (tip) }
            @if ok > 0.0 {
                rect.ok x=(px(x)) y=(px(bottom - ok)) width=(px(width)) height=(px(ok)) {}
            }
            @if bad > 0.0 {
                rect.bad x=(px(x)) y=(px(bottom - ok - bad)) width=(px(width)) height=(px(bad)) {}
            }
        }
    }
}

fn px(v: f64) -> String {
    let rounded = (v * 100.0).round() / 100.0;
    format!("{rounded}")
}

fn tallest(hours: &[HourPoint]) -> i64 {
    hours
        .iter()
        .map(|h| h.succeeded + h.failed)
        .max()
        .unwrap_or(0)
}

/// "14:00" or, with the day, "Mon 30 Nov 14:00" (UTC).
fn hour_label(hour: i64, with_day: bool) -> String {
    let Some(t) = day_and_hour(hour) else {
        return String::new();
    };
    if with_day {
        format!("{} {:02}:00 UTC", t.0, t.1)
    } else {
        format!("{:02}:00", t.1)
    }
}

/// The day ("Mon 30 Nov") and hour of a time, from its RFC 3339 text and its weekday.
fn day_and_hour(ms: i64) -> Option<(String, i64)> {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = ms.div_euclid(24 * HOUR_MS);
    let weekday = DAYS[days.rem_euclid(7) as usize];
    let text = Timestamp::from_millis(ms).to_rfc3339();
    let month: usize = text.get(5..7)?.parse().ok()?;
    let day: u32 = text.get(8..10)?.parse().ok()?;
    let hour: i64 = text.get(11..13)?.parse().ok()?;
    Some((
        format!("{weekday} {day} {}", MONTHS.get(month.checked_sub(1)?)?),
        hour,
    ))
}

/// The row's chart: the last 24 hours in 24 bars, with its words beside it.
pub fn sparkline(stats: Option<&WindowStats>) -> Markup {
    let Some(s) = stats.filter(|s| s.attempts > 0) else {
        return html! { p.spark-empty.muted { "No attempts in 24 h" } };
    };
    let width = SPARK_W / s.hours.len() as f64;
    let max = tallest(&s.hours);
    let words = summary(s);
    html! {
        div.spark {
            svg.chart viewBox={"0 0 " (SPARK_W) " " (SPARK_H)} width=(SPARK_W) height=(SPARK_H)
                role="img" aria-label={"Last 24 hours: " (words)} {
                line.axis x1="0" y1=(SPARK_H - 0.5) x2=(SPARK_W) y2=(SPARK_H - 0.5) {}
                @for (i, h) in s.hours.iter().enumerate() {
                    (bar(h, max, i as f64 * width + 0.5, width - 1.0, SPARK_H - 1.0, SPARK_H - 2.0))
                }
            }
            p.spark-words {
                @if let Some(rate) = s.success_rate { span.rate { (percent(rate)) } " of " }
                (thousands(s.attempts.max(0) as u64))
                @if let Some(p95) = s.p95_ms { " · p95 " (duration(p95)) }
            }
        }
    }
}

/// The Delivery Log's chart: every hour of the window, an axis with the tallest count and
/// the hours (or days), and the window's figures.
pub fn chart(s: &WindowStats) -> Markup {
    let plot_w = BIG_W - LEFT;
    let plot_h = BIG_H - BOTTOM - TOP;
    let width = plot_w / s.hours.len() as f64;
    let max = tallest(&s.hours);
    let bottom = BIG_H - BOTTOM;
    let gap = if width > 6.0 { 2.0 } else { 0.5 };
    let label_every = match s.window {
        Window::Day => 6,
        Window::Week => 24,
    };
    let words = summary(s);
    html! {
        figure.health #health-chart data-window=(s.window.as_str()) {
            svg.chart viewBox={"0 0 " (BIG_W) " " (BIG_H)} width="100%" preserveAspectRatio="xMinYMin meet"
                role="img" aria-label={"Attempts per hour, last " (window_words(s.window)) ": " (words)} {
                @if max > 0 {
                    line.grid x1=(LEFT) y1=(TOP) x2=(BIG_W) y2=(TOP) {}
                    line.grid x1=(LEFT) y1=(px(TOP + plot_h / 2.0)) x2=(BIG_W) y2=(px(TOP + plot_h / 2.0)) {}
                    text.tick x=(LEFT - 6.0) y=(TOP + 4.0) text-anchor="end" { (thousands(max as u64)) }
                }
                text.tick x=(LEFT - 6.0) y=(bottom) text-anchor="end" { "0" }
                line.axis x1=(LEFT) y1=(bottom + 0.5) x2=(BIG_W) y2=(bottom + 0.5) {}
                @for (i, h) in s.hours.iter().enumerate() {
                    (bar(h, max, LEFT + i as f64 * width + gap / 2.0, width - gap, bottom, plot_h))
                    @if (h.hour / HOUR_MS) % label_every == 0 {
                        text.tick x=(px(LEFT + i as f64 * width)) y=(BIG_H - 6.0) {
                            @match s.window {
                                Window::Day => { (hour_label(h.hour, false)) }
                                Window::Week => { (day_and_hour(h.hour).map(|d| d.0).unwrap_or_default()) }
                            }
                        }
                    }
                }
            }
            figcaption {
                dl.figures {
                    div { dt { "Attempts" } dd #stat-attempts { (thousands(s.attempts.max(0) as u64)) } }
                    div { dt { "Delivered" } dd #stat-rate { (s.success_rate.map(percent).unwrap_or_else(|| "—".to_owned())) } }
                    div { dt { "p50 duration" } dd #stat-p50 { (s.p50_ms.map(|d| format!("≤ {}", duration(d))).unwrap_or_else(|| "—".to_owned())) } }
                    div { dt { "p95 duration" } dd #stat-p95 { (s.p95_ms.map(|d| format!("≤ {}", duration(d))).unwrap_or_else(|| "—".to_owned())) } }
                }
                p.help {
                    "Attempts per hour (UTC), "
                    span.key-ok { (PreEscaped("&#9632;")) } " delivered, "
                    span.key-bad { (PreEscaped("&#9632;")) } " failed; Tests and probes included."
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lwh_domain::stats::{summarize, HourCounters};

    fn stats(window: Window, rows: &[(i64, bool, i64)]) -> WindowStats {
        let now = Timestamp::from_millis(1_764_547_200_000); // Mon 1 Dec 2025 00:00 UTC
        let mut counters = Vec::new();
        for (hours_ago, delivered, ms) in rows {
            let mut c = HourCounters::empty(now.millis() - hours_ago * HOUR_MS);
            c.add(*delivered, *ms);
            counters.push(c);
        }
        summarize(window, now, &counters)
    }

    #[test]
    fn figures_read_as_people_write_them() {
        assert_eq!(percent(1.0), "100 %");
        assert_eq!(percent(0.99999), "99.9 %");
        assert_eq!(percent(0.5), "50.0 %");
        assert_eq!(duration(20), "20 ms");
        assert_eq!(duration(1_500), "1.5 s");
        assert_eq!(duration(60_000), "60 s");
        assert_eq!(hour_label(1_764_547_200_000, true), "Mon 1 Dec 00:00 UTC");
    }

    #[test]
    fn the_row_chart_draws_one_bar_per_busy_hour_and_says_it_in_words() {
        let s = stats(Window::Day, &[(0, true, 12), (0, false, 400), (5, true, 3)]);
        let svg = sparkline(Some(&s)).into_string();
        assert_eq!(svg.matches("<rect class=\"ok\"").count(), 2);
        assert_eq!(svg.matches("<rect class=\"bad\"").count(), 1);
        assert!(
            svg.contains("3 attempts, 66.6 % delivered, p95 ≤ 500 ms"),
            "{svg}"
        );
        let empty = sparkline(Some(&stats(Window::Day, &[]))).into_string();
        assert!(empty.contains("No attempts in 24 h") && !empty.contains("<svg"));
    }

    #[test]
    fn the_log_chart_labels_its_axis_and_figures() {
        let s = stats(Window::Week, &[(0, true, 12), (30, false, 2_000)]);
        let svg = chart(&s).into_string();
        assert_eq!(svg.matches("<g>").count(), 2);
        assert!(svg.contains("Sun 30 Nov"), "{svg}");
        assert!(svg.contains(r#"<dd id="stat-rate">50.0 %</dd>"#), "{svg}");
        assert!(svg.contains(r#"<dd id="stat-p95">≤ 2 s</dd>"#), "{svg}");
    }
}
