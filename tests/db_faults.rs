//! Database faults with the real binary: the SQLite file on a disk that fills up, and the
//! PostgreSQL server restarted under load. Ingestion refuses clearly (503 with Retry-After)
//! while the database cannot write, nothing it accepted is lost, and the service recovers by
//! itself when the database comes back.
//!
//! Both need root (a tmpfs mount; a private PostgreSQL cluster), as in CI; elsewhere they fail
//! saying so — never pass without running.

mod common;

use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};

use common::process::{create_webhook, free_port, kill9, ProcessEnv};
use common::receiver::Receiver;
use serde_json::{json, Value};

/// Fails the test, saying why, when it cannot run here: a fault test that returns early would
/// be counted as passed without having tried anything.
fn require_root(why: &str) {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    assert!(
        root,
        "this test cannot run without root ({why}); run the suite as root, as CI does"
    );
}

/// Posts one event; returns Some(id) on 202, and the status otherwise.
async fn post_event(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    data: Value,
) -> Result<String, (u16, Option<String>, Value)> {
    let res = client
        .post(format!("{base}/api/v1/events"))
        .bearer_auth(token)
        .json(&json!({"event": "course_completed", "data": data}))
        .send()
        .await
        .map_err(|_| (0, None, Value::Null))?;
    let status = res.status().as_u16();
    let retry_after = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap_or("").to_owned());
    let body: Value = res.json().await.unwrap_or_default();
    if status == 202 {
        Ok(body["data"]["id"].as_str().unwrap_or_default().to_owned())
    } else {
        Err((status, retry_after, body))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_on_a_full_disk_refuses_clearly_and_recovers() {
    require_root("it mounts a small tmpfs");
    let dir = tempfile::tempdir().unwrap();
    let mount = dir.path().join("small-disk");
    std::fs::create_dir_all(&mount).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(&mount)
        .status()
        .unwrap();
    assert!(mounted.success(), "cannot mount a tmpfs");
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(mount.clone());

    let env = ProcessEnv::new(&mount, None);
    let token = env.run(&["token", "create", "--scope", "webhooks:manage"]);
    let rx = Receiver::start().await;
    let port = free_port();
    let mut serve = env.serve(port).await;
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    create_webhook(&client, &base, &token, &rx.url("/full")).await;

    // Fill the disk with accepted events until ingestion refuses.
    let filler = "f".repeat(16 * 1024);
    let mut accepted = HashSet::new();
    let mut refusal = None;
    for i in 0..2_000 {
        match post_event(&client, &base, &token, json!({"i": i, "filler": filler})).await {
            Ok(id) => {
                accepted.insert(id);
            }
            Err(e) => {
                refusal = Some(e);
                break;
            }
        }
    }
    let (status, retry_after, problem) = refusal.expect("the 2 MB disk filled up");
    assert_eq!(status, 503, "{problem}");
    assert_eq!(problem["code"], "unavailable");
    assert!(retry_after.is_some(), "503 carries Retry-After");
    assert!(accepted.len() > 10);

    // Space returns: the service recovers by itself and nothing accepted was lost.
    let grown = Command::new("mount")
        .args(["-o", "remount,size=64m"])
        .arg(&mount)
        .status()
        .unwrap();
    assert!(grown.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let again = loop {
        if let Ok(id) = post_event(&client, &base, &token, json!({"after": true})).await {
            break id;
        }
        assert!(Instant::now() < deadline, "ingestion did not recover");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    accepted.insert(again);
    rx.wait_for_events(&accepted, Duration::from_secs(60)).await;

    kill9(&mut serve);
}

/// A PostgreSQL cluster of its own, so restarting it disturbs no other test.
struct PrivateCluster {
    name: String,
    port: u16,
}

impl PrivateCluster {
    fn create() -> Self {
        let version = std::fs::read_dir("/etc/postgresql")
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .file_name()
            .into_string()
            .unwrap();
        let name = format!("lwh{}", std::process::id());
        let port = free_port();
        let created = Command::new("pg_createcluster")
            .args([
                &version,
                &name,
                "-p",
                &port.to_string(),
                "--",
                "--auth=trust",
            ])
            .output()
            .unwrap();
        assert!(
            created.status.success(),
            "{}",
            String::from_utf8_lossy(&created.stderr)
        );
        let hba = format!("/etc/postgresql/{version}/{name}/pg_hba.conf");
        std::fs::write(
            &hba,
            "local all all trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n",
        )
        .unwrap();
        let cluster = Self { name, port };
        cluster.ctl("start");
        cluster
    }

    fn version() -> String {
        std::fs::read_dir("/etc/postgresql")
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .file_name()
            .into_string()
            .unwrap()
    }

    fn ctl(&self, action: &str) {
        let out = Command::new("pg_ctlcluster")
            .args([
                "--skip-systemctl-redirect",
                &Self::version(),
                &self.name,
                action,
                "-m",
                "fast",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctlcluster {action}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let _ = Command::new("pg_dropcluster")
            .args([&Self::version(), &self.name, "--stop"])
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_under_load_loses_nothing() {
    require_root("it creates a private PostgreSQL cluster");
    let cluster = PrivateCluster::create();
    let url = format!("postgres://postgres@127.0.0.1:{}/postgres", cluster.port);
    let dir = tempfile::tempdir().unwrap();
    let env = ProcessEnv::new(dir.path(), Some(&url));
    let token = env.run(&["token", "create", "--scope", "webhooks:manage"]);
    let rx = Receiver::start().await;
    let port = free_port();
    let mut serve = env.serve(port).await;
    let mut worker = env.worker();
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    create_webhook(&client, &base, &token, &rx.url("/pg")).await;

    let mut accepted = HashSet::new();
    for i in 0..50 {
        accepted.insert(
            post_event(&client, &base, &token, json!({"before": i}))
                .await
                .expect("accepted"),
        );
    }
    cluster.ctl("stop");
    // While PostgreSQL is down, ingestion answers 503 with Retry-After.
    let mut saw_unavailable = false;
    for i in 0..5 {
        match post_event(&client, &base, &token, json!({"down": i})).await {
            Ok(id) => {
                accepted.insert(id);
            }
            Err((status, retry_after, problem)) => {
                assert_eq!(status, 503, "{problem}");
                assert!(retry_after.is_some());
                saw_unavailable = true;
            }
        }
    }
    assert!(
        saw_unavailable,
        "ingestion refused while the database was down"
    );
    let ready = client
        .get(format!("{base}/readyz"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(ready, 503, "/readyz reports the database down");
    cluster.ctl("start");
    // Processes reconnect on their own; ingestion and delivery resume.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut after = 0;
    while after < 50 {
        match post_event(&client, &base, &token, json!({"after": after})).await {
            Ok(id) => {
                accepted.insert(id);
                after += 1;
            }
            Err(_) => {
                assert!(
                    Instant::now() < deadline,
                    "ingestion did not recover after the restart"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    rx.wait_for_events(&accepted, Duration::from_secs(60)).await;
    kill9(&mut serve);
    kill9(&mut worker);
}
