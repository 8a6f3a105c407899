//! `--login-burst`: what a burst of console logins costs the API. Password hashing is argon2id
//! (tens of milliseconds of CPU each) and runs on blocking threads, so ingestion latency should
//! barely move while 50 logins are checked at once. Measures `POST /api/v1/events` at a fixed
//! offered load alone, then while rounds of 50 concurrent wrong logins (each from its own
//! loopback address, so the per-address limit does not cut the burst short) run.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::load::{p50_p99_ms, Load};
use crate::service::{Backend, Service};

/// Events per second offered to the API in both runs.
const RATE: u64 = 200;
/// Concurrent logins per round.
const BURST: usize = 50;

/// Runs the scenario; answers a Markdown report.
pub async fn run(bin: &std::path::Path, secs: u64) -> anyhow::Result<String> {
    let service = Service::start(bin, Backend::Sqlite, 0, 64).await?;
    let load = Load::new(64);
    let uri: hyper::Uri = service.url("/api/v1/events").parse()?;
    let body = |i: usize| crate::event_body("course_completed", i);
    let window = Duration::from_secs(secs);

    // The burst's clients, one per loopback address, made before anything is measured (a new
    // HTTP client costs the load generator CPU that would otherwise show up as API latency).
    let clients: Arc<Vec<reqwest::Client>> = Arc::new(
        (0..BURST * 4)
            .map(|i| {
                let address = format!("127.0.{}.{}", 10 + i / 250, 1 + i % 250);
                reqwest::Client::builder()
                    .no_proxy()
                    .local_address(address.parse::<std::net::IpAddr>().ok())
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
            })
            .collect::<Result<_, _>>()?,
    );

    let cpu = service.cpu_seconds();
    let alone = load
        .open_loop(
            uri.clone(),
            Some(service.token.clone()),
            RATE,
            window,
            false,
            body,
        )
        .await;
    let cpu_alone = service.cpu_seconds() - cpu;

    let stop = Arc::new(AtomicBool::new(false));
    let checked = Arc::new(AtomicUsize::new(0));
    let base = service.url("");
    let burst = {
        let (stop, checked, clients) = (stop.clone(), checked.clone(), clients.clone());
        tokio::spawn(async move {
            let mut round = 0usize;
            while !stop.load(Ordering::SeqCst) {
                let logins: Vec<_> = (0..BURST)
                    .map(|i| {
                        let (base, checked) = (base.clone(), checked.clone());
                        let client = clients[(round % 4) * BURST + i].clone();
                        tokio::spawn(async move {
                            if wrong_login(&client, &base, &format!("burst-{round}-{i}"))
                                .await
                                .unwrap_or(false)
                            {
                                checked.fetch_add(1, Ordering::SeqCst);
                            }
                        })
                    })
                    .collect();
                for login in logins {
                    let _ = login.await;
                }
                round += 1;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let cpu = service.cpu_seconds();
    let during = load
        .open_loop(uri, Some(service.token.clone()), RATE, window, false, body)
        .await;
    let cpu_during = service.cpu_seconds() - cpu;
    stop.store(true, Ordering::SeqCst);
    let _ = burst.await;
    service.stop().await;

    let (mut a, mut d) = (alone.latencies, during.latencies);
    let (a50, a99) = p50_p99_ms(&mut a);
    let (d50, d99) = p50_p99_ms(&mut d);
    Ok(format!(
        "API latency (`POST /api/v1/events`, {RATE}/s offered for {secs} s, SQLite) alone and while \
         rounds of {BURST} concurrent console logins run ({} password checks during the window):\n\n\
         | | p50 | p99 | errors | service CPU |\n|---|---|---|---|---|\n\
         | alone | {a50:.2} ms | {a99:.2} ms | {} | {cpu_alone:.2} s |\n\
         | during the login bursts | {d50:.2} ms | {d99:.2} ms | {} | {cpu_during:.2} s |\n",
        checked.load(Ordering::SeqCst),
        alone.errors,
        during.errors
    ))
}

/// One wrong login through the form (its CSRF cookie and field); whether the password was
/// checked (401) rather than refused by a limit (429).
async fn wrong_login(client: &reqwest::Client, base: &str, name: &str) -> anyhow::Result<bool> {
    let res = login(client, base, name, "wrong password").await?;
    Ok(res.status() == reqwest::StatusCode::UNAUTHORIZED)
}

/// Signs in through the form; returns the session cookie (`name=value`) to send back.
pub async fn sign_in(
    client: &reqwest::Client,
    base: &str,
    name: &str,
    password: &str,
) -> anyhow::Result<String> {
    let res = login(client, base, name, password).await?;
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find(|v| !v.starts_with("lwh_login_csrf=") && !v.ends_with('='))
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("sign-in failed: {}", res.status()))
}

/// A login through the form, with its CSRF cookie and field; the answer (a redirect is not
/// followed).
async fn login(
    client: &reqwest::Client,
    base: &str,
    name: &str,
    password: &str,
) -> anyhow::Result<reqwest::Response> {
    let form = client.get(format!("{base}/admin/login")).send().await?;
    let cookie = form
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("lwh_login_csrf="))
        .and_then(|v| v.split(';').next())
        .unwrap_or_default()
        .to_owned();
    let page = form.text().await?;
    let csrf = page
        .split("name=\"_csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default()
        .to_owned();
    let res = client
        .post(format!("{base}/admin/login"))
        .header("cookie", cookie)
        .form(&[
            ("_csrf", csrf.as_str()),
            ("name", name),
            ("password", password),
        ])
        .send()
        .await?;
    Ok(res)
}
