//! The real binary as a child process, for crash tests: spawn, wait until healthy, `kill -9`.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_learnomy-webhooks");

/// Environment shared by every process of one test: data dir, database and delivery settings.
#[derive(Clone, Debug)]
pub struct ProcessEnv {
    pub vars: Vec<(String, String)>,
    /// The binary the processes run: this build's, or the release build ([`ProcessEnv::release`]).
    pub binary: std::path::PathBuf,
}

/// The release binary the suite's server tests run, when `./scripts/test` built it (it sets
/// `LEARNOMY_RELEASE_BIN`); `None` under a bare `cargo test`.
pub fn release_binary() -> Option<std::path::PathBuf> {
    std::env::var_os("LEARNOMY_RELEASE_BIN")
        .map(std::path::PathBuf::from)
        .filter(|p| p.exists())
}

impl ProcessEnv {
    /// Settings for crash tests: loopback receivers, short timeouts, quick retries; the
    /// database is created (`migrate`) before anything else runs.
    pub fn new(data_dir: &Path, database_url: Option<&str>) -> Self {
        let mut vars = vec![
            (
                "LEARNOMY_WEBHOOKS_DATA_DIR".to_owned(),
                data_dir.display().to_string(),
            ),
            ("LEARNOMY_WEBHOOKS_ALLOW_HTTP".to_owned(), "true".to_owned()),
            (
                "LEARNOMY_WEBHOOKS_ALLOWED_NETWORKS".to_owned(),
                "[\"127.0.0.0/8\"]".to_owned(),
            ),
            (
                "LEARNOMY_WEBHOOKS_RETRY_SCHEDULE".to_owned(),
                "[\"200ms\", \"200ms\", \"200ms\"]".to_owned(),
            ),
            (
                "LEARNOMY_WEBHOOKS_CONNECT_TIMEOUT".to_owned(),
                "1s".to_owned(),
            ),
            (
                "LEARNOMY_WEBHOOKS_REQUEST_TIMEOUT".to_owned(),
                "1s".to_owned(),
            ),
            ("LEARNOMY_WEBHOOKS_PLAN".to_owned(), "pro".to_owned()),
            (
                "RUST_LOG".to_owned(),
                super::logs::child_filter().to_owned(),
            ),
        ];
        if let Some(url) = database_url {
            vars.push(("DATABASE_URL".to_owned(), url.to_owned()));
        }
        let env = Self {
            vars,
            binary: std::path::PathBuf::from(BIN),
        };
        // As an operator does (or starting `serve`): the CLI's token and user commands work on
        // an existing database and refuse to create one.
        env.run(&["migrate"]);
        // `migrate` made the master key every process of this environment shares.
        let path = data_dir.join("master.key");
        let key = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("migrate wrote no {}: {e}", path.display()));
        super::logs::remember(key.trim());
        env
    }

    /// The same environment running the release binary, as users run it (the server-facing
    /// tests' subject); this build's binary, with a note, when the release one was not built
    /// (a bare `cargo test`: `./scripts/test` builds it).
    pub fn release(mut self) -> Self {
        match release_binary() {
            Some(path) => self.binary = path,
            None => eprintln!(
                "note: LEARNOMY_RELEASE_BIN is not set (./scripts/test sets it): running this build's binary"
            ),
        }
        self
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.binary);
        for (key, _) in std::env::vars() {
            if key.starts_with("LEARNOMY_WEBHOOKS_") || key == "DATABASE_URL" {
                cmd.env_remove(key);
            }
        }
        for (k, v) in &self.vars {
            // A master key a test gives in the environment instead of master.key.
            if k == "LEARNOMY_WEBHOOKS_MASTER_KEY" {
                super::logs::remember(v);
            }
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs a CLI subcommand to completion and returns its stdout.
    pub fn run(&self, args: &[&str]) -> String {
        let out = self.command().args(args).output().expect("run CLI");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        super::logs::keep("cli", &out.stderr);
        let printed = String::from_utf8(out.stdout)
            .expect("utf-8")
            .trim()
            .to_owned();
        if args.starts_with(&["token", "create"]) {
            super::logs::remember(&printed);
        }
        printed
    }

    /// Runs a subcommand that is expected to stop by itself; kills it if it still runs after
    /// `limit`, so a command that should have refused cannot hang the suite.
    pub fn output_within(&self, args: &[&str], limit: Duration) -> std::process::Output {
        let mut child = self
            .command()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let deadline = Instant::now() + limit;
        while child.try_wait().expect("wait").is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let out = child.wait_with_output().expect("output");
        super::logs::keep("cli", &out.stderr);
        out
    }

    /// Starts `serve` on `port` and waits for `/healthz`.
    pub async fn serve(&self, port: u16) -> Running {
        let child = self
            .command()
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(super::logs::child_stderr("serve"))
            .spawn()
            .expect("spawn serve");
        let running = Running(child);
        wait_healthy(port).await;
        running
    }

    /// Starts a `worker` that also serves its health and metrics on `port`, and waits for
    /// `/healthz`.
    pub async fn worker_listening(&self, port: u16) -> Running {
        let running = Running(
            self.command()
                .args(["worker", "--listen", &format!("127.0.0.1:{port}")])
                .stdout(Stdio::null())
                .stderr(super::logs::child_stderr("worker"))
                .spawn()
                .expect("spawn worker"),
        );
        wait_healthy(port).await;
        running
    }

    /// Starts a `worker`.
    pub fn worker(&self) -> Running {
        Running(
            self.command()
                .arg("worker")
                .stdout(Stdio::null())
                .stderr(super::logs::child_stderr("worker"))
                .spawn()
                .expect("spawn worker"),
        )
    }
}

/// A service process that is killed (SIGKILL) when dropped, so a test that fails before its
/// own `kill9` leaves nothing running behind it (nor holding the test runner's output pipe).
pub struct Running(pub Child);

impl std::ops::Deref for Running {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // std does not signal a child it has already reaped (its pid may be reused).
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Subscribes a webhook at `url` to `course_completed` through the API of the service at
/// `base`; returns its id.
pub async fn create_webhook(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    url: &str,
) -> String {
    let res = client
        .post(format!("{base}/api/v1/webhooks"))
        .bearer_auth(token)
        .json(&serde_json::json!({"url": url, "events": ["course_completed"]}))
        .send()
        .await
        .expect("create webhook");
    assert_eq!(res.status(), 201, "create webhook");
    // The service generated its secret: shown once, in this answer.
    let body: serde_json::Value = res.json().await.expect("json");
    let secret = body["data"]["secret"]
        .as_str()
        .expect("the new webhook's secret");
    super::logs::remember(secret);
    body["data"]["id"]
        .as_str()
        .expect("the new webhook's id")
        .to_owned()
}

/// Waits until `/healthz` answers on `port`.
pub async fn wait_healthy(port: u16) {
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
        {
            if r.status() == 200 {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("service on port {port} did not become healthy");
}

/// A counter's value in a Prometheus text: the sum over every series of that name.
pub fn metric_sum(text: &str, series: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(series))
        .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
        .sum()
}

/// The `/metrics` text of the process listening on `port`.
pub async fn scrape_metrics(port: u16) -> String {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .expect("scrape /metrics")
        .text()
        .await
        .expect("metrics text")
}

/// How many attempts the process listening on `port` has recorded (its own `/metrics`).
pub async fn attempts_recorded(port: u16) -> f64 {
    metric_sum(
        &scrape_metrics(port).await,
        "learnomy_webhooks_attempts_total",
    )
}

/// Panics unless `child` is still running: a worker that died on its own (at start, say)
/// must fail the test, not leave the others to do its share unnoticed.
pub fn assert_alive(child: &mut Child, what: &str) {
    match child.try_wait() {
        Ok(None) => {}
        Ok(Some(status)) => panic!("{what} exited on its own: {status}"),
        Err(e) => panic!("{what}: cannot check it: {e}"),
    }
}

/// `kill -9`: no chance to finish anything.
pub fn kill9(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-9", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}
