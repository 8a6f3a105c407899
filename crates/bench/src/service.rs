//! The service under test as child processes (`serve`, plus `worker`s on PostgreSQL), with
//! their CPU time and memory read from /proc.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::{Connection, Executor};

/// Which database.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A running deployment.
pub struct Service {
    pub port: u16,
    pub token: String,
    pub processes: Vec<Child>,
    env: Vec<(String, String)>,
    database: Option<String>,
    _dir: tempdir::Dir,
}

mod tempdir {
    /// A folder removed on drop.
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

impl Service {
    /// Starts the service on `backend` with `workers` extra worker processes (PostgreSQL).
    pub async fn start(
        bin: &Path,
        backend: Backend,
        workers: usize,
        in_flight: usize,
    ) -> anyhow::Result<Self> {
        Self::start_with(bin, backend, workers, in_flight, &[]).await
    }

    /// [`Service::start`] with extra settings as environment variables.
    pub async fn start_with(
        bin: &Path,
        backend: Backend,
        workers: usize,
        in_flight: usize,
        settings: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!(
            "lwh-bench-{}-{}",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::create_dir_all(&dir)?;
        let port = free_port()?;
        let mut env = vec![
            (
                "LEARNOMY_WEBHOOKS_DATA_DIR".to_owned(),
                dir.display().to_string(),
            ),
            ("LEARNOMY_WEBHOOKS_PLAN".to_owned(), "pro".to_owned()),
            ("LEARNOMY_WEBHOOKS_ALLOW_HTTP".to_owned(), "true".to_owned()),
            (
                "LEARNOMY_WEBHOOKS_ALLOWED_NETWORKS".to_owned(),
                "[\"127.0.0.0/8\"]".to_owned(),
            ),
            (
                "LEARNOMY_WEBHOOKS_MAX_IN_FLIGHT_PER_WEBHOOK".to_owned(),
                in_flight.to_string(),
            ),
            (
                "LEARNOMY_WEBHOOKS_REQUEST_TIMEOUT".to_owned(),
                "5s".to_owned(),
            ),
            // BENCH_SERVICE_LOG=sqlx::query=trace (say) to see what the service does.
            (
                "RUST_LOG".to_owned(),
                std::env::var("BENCH_SERVICE_LOG").unwrap_or_else(|_| "warn".to_owned()),
            ),
        ];
        env.extend(
            settings
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let mut database = None;
        if backend == Backend::Postgres {
            let name = format!("lwh_bench_{}", rand_suffix());
            let mut admin = sqlx::PgConnection::connect(ADMIN_URL).await?;
            admin
                .execute(format!("CREATE DATABASE {name}").as_str())
                .await?;
            env.push((
                "DATABASE_URL".to_owned(),
                format!("postgres://postgres@127.0.0.1:5432/{name}"),
            ));
            database = Some(name);
        }
        let run = |args: &[&str]| -> anyhow::Result<String> {
            let out = command(bin, &env).args(args).output()?;
            anyhow::ensure!(
                out.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        };
        run(&["migrate"])?; // the token command works on an existing database only
        let token = run(&[
            "token",
            "create",
            "--scope",
            "webhooks:manage",
            "--name",
            "bench",
        ])?;
        let mut processes = vec![command(bin, &env)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?];
        for _ in 0..workers {
            processes.push(
                command(bin, &env)
                    .arg("worker")
                    .stdout(Stdio::null())
                    .stderr(Stdio::inherit())
                    .spawn()?,
            );
        }
        let service = Self {
            port,
            token,
            processes,
            env,
            database,
            _dir: tempdir::Dir(dir),
        };
        service.wait_healthy().await?;
        Ok(service)
    }

    async fn wait_healthy(&self) -> anyhow::Result<()> {
        let client = reqwest::Client::builder().no_proxy().build()?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(r) = client.get(self.url("/healthz")).send().await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("the service did not start")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// A management call.
    pub async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        let client = reqwest::Client::builder().no_proxy().build()?;
        let res = client
            .request(method, self.url(path))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await?;
        anyhow::ensure!(res.status().is_success(), "{path}: {}", res.status());
        Ok(res.json().await.unwrap_or_default())
    }

    /// Creates a console user through `admin create-user`.
    pub fn create_user(&self, bin: &Path, name: &str, password: &str) -> anyhow::Result<()> {
        use std::io::Write;
        let mut child = command(bin, &self.env)
            .args(["admin", "create-user", name, "--password-stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        if let Some(mut stdin) = child.stdin.take() {
            writeln!(stdin, "{password}")?;
        }
        let out = child.wait_with_output()?;
        anyhow::ensure!(
            out.status.success(),
            "admin create-user: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    }

    /// The database's URL, for reading it beside the service.
    pub fn database_url(&self) -> String {
        match &self.database {
            Some(name) => format!("postgres://postgres@127.0.0.1:5432/{name}"),
            None => format!(
                "sqlite://{}",
                self._dir.0.join("learnomy-webhooks.db").display()
            ),
        }
    }

    /// Creates a webhook and returns its id.
    pub async fn webhook(&self, url: &str, event: &str) -> anyhow::Result<String> {
        let v = self
            .api(
                reqwest::Method::POST,
                "/api/v1/webhooks",
                serde_json::json!({"url": url, "events": [event]}),
            )
            .await?;
        Ok(v["data"]["id"].as_str().unwrap_or_default().to_owned())
    }

    /// Sets a webhook's status.
    pub async fn set_status(&self, id: &str, status: &str) -> anyhow::Result<()> {
        self.api(
            reqwest::Method::PATCH,
            &format!("/api/v1/webhooks/{id}"),
            serde_json::json!({"status": status}),
        )
        .await?;
        Ok(())
    }

    /// On PostgreSQL, vacuums the deliveries and their indexes now, so the dead rows a
    /// scenario's own set-up left (a webhook disabled between runs cancels its queue) are not
    /// cleaned by autovacuum in the middle of whichever timed run follows. Nothing on SQLite.
    pub async fn vacuum_deliveries(&self) -> anyhow::Result<()> {
        if self.database.is_some() {
            let mut db = sqlx::PgConnection::connect(&self.database_url()).await?;
            db.execute("VACUUM (ANALYZE) deliveries").await?;
            db.close().await?;
        }
        Ok(())
    }

    /// A counter of the service's `/metrics` (the sum of its series; 0 when absent).
    pub async fn counter(&self, name: &str) -> anyhow::Result<f64> {
        let text = reqwest::Client::builder()
            .no_proxy()
            .build()?
            .get(self.url("/metrics"))
            .send()
            .await?
            .text()
            .await?;
        Ok(text
            .lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
            .sum())
    }

    /// CPU seconds (user + system) used so far by all processes.
    pub fn cpu_seconds(&self) -> f64 {
        self.processes.iter().map(|p| proc_cpu(p.id())).sum()
    }

    /// CPU seconds the PostgreSQL server has used so far (every `postgres` process, and the
    /// children it has reaped), when the service runs on it: on PostgreSQL the server does
    /// more of the work per delivery than the service does.
    pub fn database_cpu_seconds(&self) -> Option<f64> {
        self.database.as_ref()?;
        let mut total = 0.0;
        for entry in std::fs::read_dir("/proc").ok()?.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm.trim() == "postgres" {
                total += proc_cpu(pid) + proc_children_cpu(pid);
            }
        }
        Some(total)
    }

    /// Resident memory of the `serve` process in bytes.
    pub fn rss_bytes(&self) -> u64 {
        self.processes.first().map_or(0, |p| proc_rss(p.id()))
    }

    /// Stops everything and drops the PostgreSQL database.
    pub async fn stop(mut self) {
        for p in &mut self.processes {
            let _ = p.kill();
            let _ = p.wait();
        }
        if let Some(name) = self.database.take() {
            if let Ok(mut admin) = sqlx::PgConnection::connect(ADMIN_URL).await {
                let _ = admin
                    .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                    .await;
            }
        }
        let _ = &self.env;
    }
}

fn command(bin: &Path, env: &[(String, String)]) -> Command {
    let mut c = Command::new(bin);
    for (k, _) in std::env::vars() {
        if k.starts_with("LEARNOMY_WEBHOOKS_") || k == "DATABASE_URL" {
            c.env_remove(k);
        }
    }
    c.envs(env.iter().cloned());
    c
}

fn rand_suffix() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    )
}

/// A free port on 127.0.0.1.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// utime + stime of `pid`, in seconds.
fn proc_cpu(pid: u32) -> f64 {
    // Fields 14 and 15 of stat (utime, stime) are 11 and 12 after the ")".
    stat_seconds(pid, 11)
}

/// cutime + cstime of `pid` (its reaped children), in seconds.
fn proc_children_cpu(pid: u32) -> f64 {
    stat_seconds(pid, 13)
}

/// The sum of two consecutive clock-tick fields of `/proc/pid/stat`, counted after the ")".
fn stat_seconds(pid: u32, first: usize) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let after = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (tick(first) + tick(first + 1)) / 100.0
}

fn proc_rss(pid: u32) -> u64 {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return 0;
    };
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// The release binary next to this one.
pub fn service_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("learnomy-webhooks")))
        .unwrap_or_else(|| PathBuf::from("target/release/learnomy-webhooks"))
}
