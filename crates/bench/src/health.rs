//! `--health`: what the health figures cost once a million attempts are stored. Ten webhooks
//! receive 100,000 events each through the real service (a million deliveries and attempts),
//! a week of earlier hours is added to their counters, and then the stats endpoint (24 h and
//! 7 d), the Webhooks page (a chart per row) and a Delivery Log page (the large chart) are
//! timed one request after another — beside what one scan of the attempts (the query the
//! counters replace) takes on the same database.

use std::path::Path;
use std::time::{Duration, Instant};

use sqlx::{Connection, Row};

use crate::batch_body;
use crate::load::{p50_p99_ms, Load};
use crate::receiver::Receiver;
use crate::service::{Backend, Service};

/// Webhooks subscribed to the event.
const WEBHOOKS: usize = 10;
/// Requests per timed figure.
const REQUESTS: usize = 100;
/// Scans of the attempts timed for comparison (each reads them all).
const SCANS: usize = 5;
const EVENT: &str = "lesson_completed";
const PASSWORD: &str = "bench console password";

/// One backend's figures (ms).
struct Figures {
    attempts: i64,
    counter_rows: i64,
    stats_day: (f64, f64),
    stats_week: (f64, f64),
    webhooks_page: (f64, f64),
    log_page: (f64, f64),
    scan: f64,
}

/// Runs the scenario with `events` events (×10 deliveries) on each backend; returns the
/// Markdown table.
pub async fn run(bin: &Path, backends: &[Backend], events: usize) -> anyhow::Result<String> {
    let mut rows = String::new();
    for backend in backends {
        eprintln!("{backend:?}…");
        let f = measure(bin, *backend, events).await?;
        rows.push_str(&format!(
            "| {backend:?} | {} | {} | {:.2} / {:.2} | {:.2} / {:.2} | {:.2} / {:.2} | {:.2} / {:.2} | {:.0} |\n",
            f.attempts,
            f.counter_rows,
            f.stats_day.0,
            f.stats_day.1,
            f.stats_week.0,
            f.stats_week.1,
            f.webhooks_page.0,
            f.webhooks_page.1,
            f.log_page.0,
            f.log_page.1,
            f.scan,
        ));
    }
    Ok(format!(
        "Health figures with {} events sent to {WEBHOOKS} webhooks (one attempt each), {REQUESTS} requests \
         one after another per figure, p50 / p99 in ms; the scan is the median of {SCANS} runs of \
         the one query the counters replace):\n\n\
         | backend | attempts stored | counter rows | stats 24h | stats 7d | Webhooks page | Delivery Log page | one scan of the attempts (ms) |\n\
         |---|---|---|---|---|---|---|---|\n{rows}",
        events
    ))
}

async fn measure(bin: &Path, backend: Backend, events: usize) -> anyhow::Result<Figures> {
    let svc = Service::start(bin, backend, 0, 64).await?;
    svc.create_user(bin, "admin", PASSWORD)?;
    let rx = Receiver::start(false).await?;
    let mut ids = Vec::new();
    for i in 0..WEBHOOKS {
        ids.push(
            svc.webhook(&format!("http://{}/h/{i}", rx.addr), EVENT)
                .await?,
        );
    }
    let started = Instant::now();
    let load = Load::new(16);
    let uri: hyper::Uri = svc.url("/api/v1/events/batch").parse()?;
    let per = 100;
    let sent = load
        .closed_loop(
            uri,
            Some(svc.token.clone()),
            8,
            events / per,
            true,
            move |i| batch_body(EVENT, i * per, per),
        )
        .await;
    anyhow::ensure!(
        sent.accepted.len() == events,
        "{} of {events} events accepted",
        sent.accepted.len()
    );
    let expected = events * WEBHOOKS;
    let deadline = Instant::now() + Duration::from_secs(1800);
    while rx.distinct() < expected {
        anyhow::ensure!(
            Instant::now() < deadline,
            "{} of {expected} delivered",
            rx.distinct()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "  {expected} deliveries in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    // The last results are recorded just after they arrive.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (attempts, counter_rows, scan) = database_side(&svc, &ids[0]).await?;

    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let api = |path: String| {
        let request = client.get(svc.url(&path)).bearer_auth(&svc.token);
        async move { request.send().await }
    };
    let stats_day = timed(|| api(format!("/api/v1/webhooks/{}/stats?window=24h", ids[0]))).await?;
    let stats_week = timed(|| api(format!("/api/v1/webhooks/{}/stats?window=7d", ids[0]))).await?;
    let cookie = crate::login_burst::sign_in(&client, &svc.url(""), "admin", PASSWORD).await?;
    let page = |path: String| {
        let request = client.get(svc.url(&path)).header("cookie", cookie.clone());
        async move { request.send().await }
    };
    let webhooks_page = timed(|| page("/admin/webhooks".to_owned())).await?;
    let log_page = timed(|| page(format!("/admin/webhooks/{}/log?window=7d", ids[0]))).await?;
    svc.stop().await;
    Ok(Figures {
        attempts,
        counter_rows,
        stats_day,
        stats_week,
        webhooks_page,
        log_page,
        scan,
    })
}

/// `REQUESTS` requests one after another, each checked for a 200: (p50, p99) in ms.
async fn timed<F, Fut>(mut request: F) -> anyhow::Result<(f64, f64)>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = reqwest::Result<reqwest::Response>>,
{
    let mut times = Vec::with_capacity(REQUESTS);
    for _ in 0..REQUESTS {
        let started = Instant::now();
        let res = request().await?;
        anyhow::ensure!(res.status().is_success(), "{}", res.status());
        res.bytes().await?;
        times.push(started.elapsed());
    }
    Ok(p50_p99_ms(&mut times))
}

/// Adds a week of earlier hours to every webhook's counters (what a week of history leaves:
/// 167 more rows each), then counts the attempts and the counter rows and times the scan the
/// counters replace for `webhook`: every attempt of its deliveries in the last 7 days.
async fn database_side(svc: &Service, webhook: &str) -> anyhow::Result<(i64, i64, f64)> {
    const HOUR: i64 = 3_600_000;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    let current = now / HOUR * HOUR;
    let history = format!(
        "INSERT INTO webhook_stats (webhook_id, hour, slot, attempts, failures, d05) \
         SELECT DISTINCT webhook_id, {current} - h.n * {HOUR}, 99, 100, 1, 100 FROM webhook_stats \
         CROSS JOIN (SELECT {series}) h",
        series = (1..168)
            .map(|n| format!("{n} AS n"))
            .collect::<Vec<_>>()
            .join(" UNION ALL SELECT ")
    );
    let scan = "SELECT COUNT(*) AS n, SUM(CASE WHEN a.status_code BETWEEN 200 AND 299 THEN 1 ELSE 0 END) AS ok, \
         MAX(a.duration_ms) AS slowest FROM attempts a JOIN deliveries d ON d.id = a.delivery_id \
         WHERE d.webhook_id = $1 AND a.started_at >= $2";
    let since = now - 7 * 24 * HOUR;
    let url = svc.database_url();
    let mut scans = Vec::new();
    // The same steps on either connection type (sqlx's typed connections, one per backend).
    macro_rules! on {
        ($conn:expr, $scan:expr) => {{
            let mut c = $conn;
            sqlx::query(&history).execute(&mut c).await?;
            for _ in 0..SCANS {
                let t = Instant::now();
                sqlx::query($scan)
                    .bind(webhook)
                    .bind(since)
                    .fetch_one(&mut c)
                    .await?;
                scans.push(t.elapsed());
            }
            let mut count = Vec::new();
            for table in ["attempts", "webhook_stats"] {
                let n: i64 = sqlx::query(&format!("SELECT COUNT(*) AS n FROM {table}"))
                    .fetch_one(&mut c)
                    .await?
                    .try_get("n")?;
                count.push(n);
            }
            (count[0], count[1])
        }};
    }
    let (attempts, rows) = match backend_of(&url) {
        Backend::Sqlite => on!(
            sqlx::SqliteConnection::connect(&url).await?,
            &scan.replace("$1", "?1").replace("$2", "?2")
        ),
        Backend::Postgres => on!(sqlx::PgConnection::connect(&url).await?, scan),
    };
    Ok((attempts, rows, crate::load::percentile_ms(&mut scans, 50.0)))
}

fn backend_of(url: &str) -> Backend {
    if url.starts_with("sqlite:") {
        Backend::Sqlite
    } else {
        Backend::Postgres
    }
}
