//! The binary as a new user meets it: `serve` with no flags on a fresh folder, and the CLI.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_learnomy-webhooks");

fn fresh_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// Creates the service's data in `dir` (`migrate`), as starting `serve` would: the commands
/// that work on a service's data refuse to create it.
fn migrated(dir: &std::path::Path) {
    migrated_on(dir, None);
}

/// Registers the master key a command made in `data_dir` with the log check.
fn remember_master_key(data_dir: &std::path::Path) {
    if let Ok(key) = std::fs::read_to_string(data_dir.join("master.key")) {
        common::logs::remember(key.trim());
    }
}

/// [`clean_command`] on PostgreSQL at `url` when given (else SQLite in `dir/data`).
fn on_backend(dir: &std::path::Path, url: Option<&str>) -> Command {
    let mut cmd = clean_command(dir);
    if let Some(url) = url {
        cmd.env("DATABASE_URL", url);
    }
    cmd
}

/// [`migrated`] on PostgreSQL at `url` when given.
fn migrated_on(dir: &std::path::Path, url: Option<&str>) {
    let out = on_backend(dir, url)
        .arg("migrate")
        .output()
        .expect("migrate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    remember_master_key(&dir.join("data"));
}

/// A command with no LEARNOMY_WEBHOOKS_* or DATABASE_URL leaking in from the environment.
fn clean_command(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir);
    for (key, _) in std::env::vars() {
        if key.starts_with("LEARNOMY_WEBHOOKS_") || key == "DATABASE_URL" {
            cmd.env_remove(key);
        }
    }
    cmd
}

#[tokio::test]
async fn serve_with_no_flags_starts_on_sqlite_and_answers_healthz() {
    // The default address is what this test is about, so it cannot pick a free port; a taken
    // 8080 would otherwise read as "serve did not answer" (another server answering would pass).
    assert!(
        std::net::TcpListener::bind("127.0.0.1:8080").is_ok(),
        "127.0.0.1:8080 is taken by another process: this test checks serve's default address"
    );
    let dir = fresh_dir();
    let mut child = clean_command(dir.path())
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn serve");
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut healthy = false;
    while Instant::now() < deadline {
        if let Ok(res) = client.get("http://127.0.0.1:8080/healthz").send().await {
            healthy = res.status() == 200;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ready = client
        .get("http://127.0.0.1:8080/readyz")
        .send()
        .await
        .map(|r| r.status().as_u16());
    let _ = child.kill();
    let output = child.wait_with_output().expect("wait");
    common::logs::keep("serve-first-run", &output.stderr);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(healthy, "serve did not answer /healthz: {stderr}");
    assert_eq!(ready.ok(), Some(200));
    assert!(
        stderr.contains("token create"),
        "serve should say how to get a token: {stderr}"
    );
    assert!(dir.path().join("data/learnomy-webhooks.db").exists());
    let key = dir.path().join("data/master.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // The database (payloads with learners' personal data) is in a folder of its own user.
        assert_eq!(
            std::fs::metadata(dir.path().join("data"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
    }
}

both_backends!(
    token_create_prints_the_token_alone_and_list_never_shows_it,
    |backend| async move {
        let dir = fresh_dir();
        let db = common::TestDb::create(backend).await;
        let url = db.postgres_url().map(str::to_owned);
        let clean_command = |dir: &std::path::Path| on_backend(dir, url.as_deref());
        migrated_on(dir.path(), url.as_deref());
        let out = clean_command(dir.path())
            .args([
                "token",
                "create",
                "--scope",
                "events:write",
                "--name",
                "lms",
            ])
            .output()
            .expect("run");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        let token = stdout.trim();
        assert_eq!(stdout.lines().count(), 1);
        assert!(token.starts_with("lwh_") && token.len() == 44, "{stdout}");
        // Global flags work after the subcommand too.
        let list = clean_command(dir.path())
            .args(["token", "list", "--data-dir", "./data"])
            .output()
            .expect("run");
        let listed = String::from_utf8(list.stdout).unwrap();
        assert!(listed.contains("events:write") && listed.contains("lms"));
        assert!(!listed.contains(&token[12..]), "token value listed");
        let bad = clean_command(dir.path())
            .args(["token", "create", "--scope", "root"])
            .output()
            .expect("run");
        assert!(!bad.status.success());
        db.drop_all().await;
    }
);

both_backends!(
    admin_create_user_reads_the_password_from_stdin,
    |backend| async move {
        let dir = fresh_dir();
        let db = common::TestDb::create(backend).await;
        let url = db.postgres_url().map(str::to_owned);
        let clean_command = |dir: &std::path::Path| on_backend(dir, url.as_deref());
        migrated_on(dir.path(), url.as_deref());
        let run = |args: &[&str], stdin: &str| {
            common::logs::remember(stdin.trim_end());
            let mut child = clean_command(dir.path())
                .args(args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn");
            child
                .stdin
                .take()
                .unwrap()
                .write_all(stdin.as_bytes())
                .unwrap();
            let out = child.wait_with_output().expect("wait");
            common::logs::keep("cli", &out.stderr);
            out
        };
        let ok = run(
            &["admin", "create-user", "admin", "--password-stdin"],
            "a long enough password\n",
        );
        assert!(
            ok.status.success(),
            "{}",
            String::from_utf8_lossy(&ok.stderr)
        );
        let dup = run(
            &["admin", "create-user", "admin", "--password-stdin"],
            "a long enough password\n",
        );
        assert!(!dup.status.success());
        let short = run(
            &["admin", "create-user", "other", "--password-stdin"],
            "short\n",
        );
        assert_eq!(short.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&short.stderr).contains("password"));
        let reset = run(
            &["admin", "reset-password", "admin", "--password-stdin"],
            "another long password\n",
        );
        assert!(reset.status.success());
        db.drop_all().await;
    }
);

#[test]
fn verify_checks_a_captured_signature() {
    let body = r#"{"id":"evt_test","event":"course_completed","created_at":"2026-11-27T10:00:00Z","data":{"course_id":42,"user_id":7}}"#;
    let run = |sig: &str| {
        let mut child = Command::new(BIN)
            .args([
                "verify",
                "--secret",
                "k3F9mQ2xV7pL0sT4wZ8cR1bN6yH5dJ2a",
                "--signature",
                sig,
            ])
            .stdin(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(body.as_bytes())
            .unwrap();
        child.wait().expect("wait").code()
    };
    assert_eq!(
        run("b321320ab5ce3fcaa179e4e3725039f221d3563c2ee0f1f1436dccb36abe4464"),
        Some(0)
    );
    assert_eq!(
        run("b321320ab5ce3fcaa179e4e3725039f221d3563c2ee0f1f1436dccb36abe4465"),
        Some(1)
    );
}

#[test]
fn a_config_file_and_environment_override_defaults() {
    let dir = fresh_dir();
    std::fs::write(
        dir.path().join("custom.toml"),
        "data_dir = \"./elsewhere\"\nplan = \"pro\"\n",
    )
    .unwrap();
    let out = clean_command(dir.path())
        .args(["--config", "custom.toml", "migrate"])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("elsewhere/learnomy-webhooks.db").exists());
    let bad = clean_command(dir.path())
        .env("LEARNOMY_WEBHOOKS_PLAN", "platinum")
        .arg("migrate")
        .output()
        .expect("run");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr)
        .to_lowercase()
        .contains("plan"));
    let missing = clean_command(dir.path())
        .args(["--config", "nope.toml", "migrate"])
        .output()
        .expect("run");
    assert!(!missing.status.success());
}

mod common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_on_one_sqlite_file_refuses_to_deliver() {
    use common::process::{free_port, kill9, ProcessEnv};
    let dir = fresh_dir();
    let env = ProcessEnv::new(dir.path(), None);
    let mut first = env.serve(free_port()).await;
    // Commands that do not deliver work beside it.
    env.run(&["token", "create", "--scope", "events:write"]);
    assert!(env.run(&["token", "list"]).contains("events:write"));
    let listen = format!("127.0.0.1:{}", free_port());
    for args in [vec!["serve", "--listen", listen.as_str()], vec!["worker"]] {
        let out = env.output_within(&args, Duration::from_secs(20));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "{args:?} started beside serve: {stderr}"
        );
        assert!(
            stderr.contains("already delivering from") && stderr.contains("PostgreSQL"),
            "{args:?}: {stderr}"
        );
        assert!(
            !stderr.contains("is running at"),
            "{args:?} printed its banner: {stderr}"
        );
    }
    // The kernel drops the lock with its process, however it ends.
    kill9(&mut first);
    let mut again = env.serve(free_port()).await;
    kill9(&mut again);
}

both_backends!(
    emit_reports_an_event_that_is_delivered,
    |backend| async move {
        use common::process::{free_port, kill9, ProcessEnv};
        use common::receiver::Receiver;
        let dir = fresh_dir();
        let db = common::TestDb::create(backend).await;
        let env = ProcessEnv::new(dir.path(), db.postgres_url());
        let token = env.run(&["token", "create", "--scope", "webhooks:manage"]);
        let rx = Receiver::start().await;
        let port = free_port();
        let mut service = env.serve(port).await;
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let res = client
            .post(format!("http://127.0.0.1:{port}/api/v1/webhooks"))
            .bearer_auth(&token)
            .json(&serde_json::json!({"url": rx.url("/emit"), "events": ["course_completed"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        let out = Command::new(BIN)
            .args([
                "emit",
                "course_completed",
                "--data",
                r#"{"user_id": 7, "course_id": 42}"#,
                "--url",
                &format!("http://127.0.0.1:{port}"),
            ])
            .env("LEARNOMY_WEBHOOKS_TOKEN", &token)
            .output()
            .expect("emit");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(printed["deliveries"], 1);
        let got = rx.wait_for(1, Duration::from_secs(15)).await;
        assert_eq!(
            got[0].json()["data"],
            serde_json::json!({"user_id": 7, "course_id": 42})
        );
        let bad = Command::new(BIN)
            .args([
                "emit",
                "course_completed",
                "--data",
                "[1]",
                "--url",
                &format!("http://127.0.0.1:{port}"),
            ])
            .env("LEARNOMY_WEBHOOKS_TOKEN", &token)
            .output()
            .expect("emit");
        assert!(!bad.status.success());
        kill9(&mut service);
        db.drop_all().await;
    }
);

both_backends!(
    sigterm_finishes_attempts_in_flight_and_json_logs_carry_ids,
    |backend| async move {
        use common::process::{free_port, kill9, ProcessEnv};
        use common::receiver::{Answer, Receiver};
        let dir = fresh_dir();
        let db = common::TestDb::create(backend).await;
        let env = ProcessEnv::new(dir.path(), db.postgres_url());
        let token = env.run(&["token", "create", "--scope", "webhooks:manage"]);
        let rx = Receiver::start().await;
        rx.always(Answer::SlowOk(600));
        let port = free_port();
        let log_path = dir.path().join("serve.log");
        let mut child = common::process::Running(
            Command::new(BIN)
                .args([
                    "--log-format",
                    "json",
                    "serve",
                    "--listen",
                    &format!("127.0.0.1:{port}"),
                ])
                .envs(env.vars.iter().cloned())
                .env("RUST_LOG", "info,lwh_delivery=debug")
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log_path).unwrap())
                .spawn()
                .unwrap(),
        );
        common::process::wait_healthy(port).await;
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let api = |path: &str| format!("http://127.0.0.1:{port}{path}");
        let res = client
            .post(api("/api/v1/webhooks"))
            .bearer_auth(&token)
            .json(&serde_json::json!({"url": rx.url("/slow"), "events": ["course_completed"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        for i in 0..5 {
            let res = client
                .post(api("/api/v1/events"))
                .bearer_auth(&token)
                .json(&serde_json::json!({"event": "course_completed", "data": {"i": i}}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 202);
        }
        rx.wait_for(5, Duration::from_secs(10)).await;
        // All five are in flight (the receiver answers after 600 ms): stop now.
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let started = std::time::Instant::now();
        let status = child.wait().unwrap();
        assert!(status.success(), "clean exit on SIGTERM: {status:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
        // The attempts in flight were finished and recorded: a restart sends nothing again.
        let mut again = env.serve(port).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(rx.count(), 5, "nothing was left claimed or unrecorded");
        kill9(&mut again);

        let logs = std::fs::read_to_string(&log_path).unwrap();
        common::logs::keep("serve-json", logs.as_bytes());
        let attempt = logs
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|l| l["message"] == "attempt finished")
            .unwrap_or_else(|| panic!("no JSON attempt line in:\n{logs}"));
        for field in ["delivery_id", "webhook_id", "event_id", "attempt", "result"] {
            assert!(
                attempt.get(field).is_some(),
                "{field} missing from {attempt}"
            );
        }
        assert!(!logs.contains(&token), "no token in logs");
        db.drop_all().await;
    }
);

#[test]
fn every_subcommand_has_help() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["worker", "--help"],
        vec!["migrate", "--help"],
        vec!["admin", "--help"],
        vec!["admin", "create-user", "--help"],
        vec!["admin", "reset-password", "--help"],
        vec!["token", "--help"],
        vec!["token", "create", "--help"],
        vec!["token", "list", "--help"],
        vec!["token", "revoke", "--help"],
        vec!["webhook", "--help"],
        vec!["webhook", "list", "--help"],
        vec!["webhook", "rotate-secret", "--help"],
        vec!["webhook", "complete-rotation", "--help"],
        vec!["recover", "--help"],
        vec!["emit", "--help"],
        vec!["verify", "--help"],
    ] {
        let out = Command::new(BIN).args(&args).output().expect("run");
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("Usage:") && text.len() > 100,
            "{args:?}: {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_token_or_password_reaches_the_logs() {
    use common::process::{free_port, ProcessEnv};
    use common::receiver::Receiver;
    let dir = fresh_dir();
    let env = ProcessEnv::new(dir.path(), None);
    let token = env.run(&["token", "create", "--scope", "webhooks:manage"]);
    let password = common::logs::remember("a very secret console password");
    let mut create_user = Command::new(BIN)
        .args(["admin", "create-user", "admin", "--password-stdin"])
        .envs(env.vars.iter().cloned())
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    create_user
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    let created = create_user.wait_with_output().unwrap();
    let rx = Receiver::start().await;
    let port = free_port();
    let log_path = dir.path().join("all.log");
    let mut child = common::process::Running(
        Command::new(BIN)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .envs(env.vars.iter().cloned())
            .env("RUST_LOG", "trace,hyper=info,h2=info,rustls=info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_path).unwrap())
            .spawn()
            .unwrap(),
    );
    common::process::wait_healthy(port).await;
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let secret = common::logs::remember("log-canary-secret-0123456789abcdef");
    let res = client
        .post(format!("{base}/api/v1/webhooks"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"url": rx.url("/logs"), "events": ["course_completed"], "secret": secret}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let id = res.json::<serde_json::Value>().await.unwrap()["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    client.post(format!("{base}/api/v1/events")).bearer_auth(&token)
        .json(&serde_json::json!({"event": "course_completed", "data": {"canary": "payload-canary-77"}}))
        .send().await.unwrap();
    client
        .post(format!("{base}/api/v1/webhooks/{id}/test"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    client
        .post(format!("{base}/api/v1/events"))
        .bearer_auth("lwh_wrong-token-canary")
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    let login = common::console_login(&client, &base, "admin", password, &[]).await;
    assert_eq!(login.status(), 303);
    common::console_login(&client, &base, "admin", "wrong-password-canary", &[]).await;
    rx.wait_for(2, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = child.kill();
    let _ = child.wait();
    let mut logs = std::fs::read_to_string(&log_path).unwrap();
    common::logs::keep("serve-trace", logs.as_bytes());
    logs.push_str(&String::from_utf8_lossy(&created.stderr));
    assert!(logs.len() > 1000, "trace logging produced output");
    for needle in [
        secret,
        &token[4..],
        password,
        "wrong-token-canary",
        "wrong-password-canary",
        "payload-canary-77",
    ] {
        assert!(!logs.contains(needle), "{needle:?} appears in the logs");
    }
}

#[cfg(unix)]
#[test]
fn data_files_are_private_even_in_a_folder_that_was_not_and_a_shared_key_stops_the_start() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let set = |p: &std::path::Path, m: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
    };
    let dir = fresh_dir();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    set(&data, 0o755);
    let run = |args: &[&str]| clean_command(dir.path()).args(args).output().unwrap();
    migrated(dir.path());
    let out = run(&["token", "create", "--scope", "events:write"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let db = data.join("learnomy-webhooks.db");
    assert_eq!(mode(&data), 0o700, "an existing 0755 folder is tightened");
    assert_eq!(
        mode(&db),
        0o600,
        "the database is the service's user's only"
    );
    assert_eq!(mode(&data.join("master.key")), 0o600);
    // Loosened by someone later: tightened again at the next start, WAL included.
    set(&data, 0o755);
    set(&db, 0o644);
    let wal = data.join("learnomy-webhooks.db-wal");
    if wal.exists() {
        set(&wal, 0o644);
    }
    let out = run(&["token", "list"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&db), 0o600);
    for sidecar in ["learnomy-webhooks.db-wal", "learnomy-webhooks.db-shm"] {
        let path = data.join(sidecar);
        if path.exists() {
            assert_eq!(mode(&path), 0o600, "{sidecar}");
        }
    }
    // A master key others can read stops the start, saying how to fix it.
    set(&data.join("master.key"), 0o640);
    let out = run(&["token", "list"]);
    assert!(
        !out.status.success(),
        "a group-readable master.key is refused"
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("master.key") && said.contains("chmod 600"),
        "the error says how to fix it: {said}"
    );
}

#[tokio::test]
async fn json_logs_are_one_object_per_line_and_the_banner_links_answer() {
    use common::process::free_port;
    let dir = fresh_dir();
    let port = free_port();
    let log_path = dir.path().join("serve.log");
    let mut child = common::process::Running(
        clean_command(dir.path())
            .args([
                "--log-format",
                "json",
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_path).unwrap())
            .spawn()
            .unwrap(),
    );
    common::process::wait_healthy(port).await;
    // A request or two, so more than the start is logged.
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    client
        .get(format!("http://127.0.0.1:{port}/api/v1/webhooks"))
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let log = std::fs::read_to_string(&log_path).unwrap();
    common::logs::keep("serve-json", log.as_bytes());
    let mut ready = None;
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let event: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON object ({e}): {line}"));
        if event["message"] == "ready" {
            ready = Some(event);
        }
    }
    let ready = ready.expect("the banner is a JSON event");
    let setup = ready["setup"].as_str().unwrap();
    assert!(setup.contains("/admin/setup?token="), "{ready}");
    // Every link it gives answers (none is a 404), the service's own address included.
    for key in ["url", "console", "setup", "health"] {
        let link = ready[key].as_str().unwrap().to_owned();
        assert!(
            link.starts_with(&format!("http://127.0.0.1:{port}")),
            "{key}: {link}"
        );
    }
    let mut child = common::process::Running(
        clean_command(dir.path())
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    common::process::wait_healthy(port).await;
    for key in ["url", "console", "setup", "health"] {
        let link = ready[key].as_str().unwrap();
        let status = client.get(link).send().await.unwrap().status().as_u16();
        assert!(matches!(status, 200 | 303 | 410), "{key} {link}: {status}");
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_serves_health_and_metrics_and_a_fleet_adds_up() {
    use common::process::{create_webhook, free_port, kill9, ProcessEnv};
    use common::receiver::Receiver;
    let dir = fresh_dir();
    let db = common::TestDb::create(lwh_storage::Backend::Postgres).await;
    let env = ProcessEnv::new(dir.path(), db.postgres_url());
    let token = env.run(&["token", "create", "--scope", "webhooks:manage"]);
    let (serve_port, worker_port) = (free_port(), free_port());
    let mut serve = env.serve(serve_port).await;
    let mut worker = env.worker_listening(worker_port).await;
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let at = |port: u16, path: &str| format!("http://127.0.0.1:{port}{path}");
    // Health, readiness and metrics; no API, no console.
    for path in ["/healthz", "/readyz", "/metrics"] {
        let res = client.get(at(worker_port, path)).send().await.unwrap();
        assert_eq!(res.status(), 200, "worker {path}");
    }
    for path in ["/api/v1/webhooks", "/admin/login"] {
        let res = client.get(at(worker_port, path)).send().await.unwrap();
        assert_eq!(res.status(), 404, "a worker serves no {path}");
    }
    // Deliveries shared between the two: each process counts its own; the fleet adds up.
    let rx = Receiver::start().await;
    create_webhook(&client, &at(serve_port, ""), &token, &rx.url("/fleet")).await;
    let events: Vec<serde_json::Value> = (0..300)
        .map(|i| serde_json::json!({"event": "course_completed", "data": {"n": i}}))
        .collect();
    let res = client
        .post(at(serve_port, "/api/v1/events/batch"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "events": events }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    rx.wait_for(300, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut total = 0.0;
    for port in [serve_port, worker_port] {
        let text = client
            .get(at(port, "/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        total += common::process::metric_sum(
            &text,
            "learnomy_webhooks_attempts_total{outcome=\"delivered\"}",
        );
    }
    assert_eq!(
        total as usize,
        rx.count(),
        "the processes' counters add up to the deliveries"
    );
    kill9(&mut worker);
    kill9(&mut serve);
    db.drop_all().await;
}

#[test]
fn commands_on_a_service_s_data_never_create_it() {
    let dir = fresh_dir();
    for args in [
        vec!["token", "create", "--scope", "webhooks:manage"],
        vec!["token", "list"],
        vec!["admin", "create-user", "admin", "--password-stdin"],
    ] {
        let out = clean_command(dir.path())
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} ran on no database");
        let said = String::from_utf8_lossy(&out.stderr);
        let db = std::path::absolute(dir.path().join("data/learnomy-webhooks.db")).unwrap();
        assert!(
            said.contains(&format!("no database at {}", db.display()))
                && said.contains("--data-dir")
                && said.contains("--config"),
            "{args:?} names the path and how to point at the right one: {said}"
        );
        assert!(!dir.path().join("data").exists(), "{args:?} created ./data");
    }
    // Pointed at the right place (after serve or migrate made it), they work.
    let elsewhere = fresh_dir();
    migrated(elsewhere.path());
    let out = clean_command(dir.path())
        .args(["token", "list", "--data-dir"])
        .arg(elsewhere.path().join("data"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

both_backends!(
    a_process_with_another_master_key_refuses_to_start_and_saying_why,
    |backend| async move {
        use common::process::{free_port, kill9, ProcessEnv};
        let dir = fresh_dir();
        let db = common::TestDb::create(backend).await;
        let env = ProcessEnv::new(dir.path(), db.postgres_url());
        let token = env.run(&["token", "create", "--scope", "webhooks:manage"]);
        let port = free_port();
        let mut serve = env.serve(port).await;
        common::process::create_webhook(
            &reqwest::Client::new(),
            &format!("http://127.0.0.1:{port}"),
            &token,
            "http://127.0.0.1:9/never",
        )
        .await;
        kill9(&mut serve);
        // The same database, another key (a worker on another host without the key, say).
        let mut other = env.clone();
        other
            .vars
            .push(("LEARNOMY_WEBHOOKS_MASTER_KEY".into(), "ab".repeat(32)));
        for args in [vec!["worker"], vec!["serve", "--listen", "127.0.0.1:0"]] {
            let out = other.output_within(&args, Duration::from_secs(20));
            let said = String::from_utf8_lossy(&out.stderr);
            assert!(
                !out.status.success(),
                "{args:?} started with another key: {said}"
            );
            assert!(
                said.contains("master key") && said.contains("Copy master.key"),
                "{args:?} says what is wrong and how to fix it: {said}"
            );
        }
        // The right key still starts.
        let mut again = env.serve(free_port()).await;
        kill9(&mut again);
        db.drop_all().await;
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_with_other_ssrf_settings_than_serve_says_so_at_start() {
    use common::process::{free_port, kill9, ProcessEnv};
    let dir = fresh_dir();
    let db = common::TestDb::create(lwh_storage::Backend::Postgres).await;
    let env = ProcessEnv::new(dir.path(), db.postgres_url());
    let mut serve = env.serve(free_port()).await;
    let mut stricter = env.clone();
    stricter
        .vars
        .push(("LEARNOMY_WEBHOOKS_ALLOWED_NETWORKS".into(), "[]".into()));
    let out = stricter.output_within(&["worker"], Duration::from_secs(3));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("SSRF settings differ") && said.contains("127.0.0.0/8"),
        "{said}"
    );
    // The same settings: no warning.
    let out = env.output_within(&["worker"], Duration::from_secs(3));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("SSRF settings differ"));
    kill9(&mut serve);
    db.drop_all().await;
}

/// The line of `text` after `marker`, trimmed.
fn after<'a>(text: &'a str, marker: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.split_once(marker).map(|(_, rest)| rest.trim()))
        .unwrap_or_else(|| panic!("no {marker:?} in: {text}"))
}

/// `sh -c COMMAND` in `dir`, with nothing of the service's settings in its environment, so the
/// command works only if it carries them.
fn shell(dir: &std::path::Path, command: &str, stdin: &str) -> std::process::Output {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", command]).current_dir(dir);
    for (key, _) in std::env::vars() {
        if key.starts_with("LEARNOMY_WEBHOOKS_") || key == "DATABASE_URL" {
            cmd.env_remove(key);
        }
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sh");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

both_backends!(
    the_banner_s_commands_work_as_printed_from_another_folder,
    |backend| async move {
        use common::process::free_port;
        // serve started from one folder, with its data in a second, its config beside it, and the
        // printed commands pasted into a shell in a third.
        let started_in = fresh_dir();
        let data = fresh_dir();
        let elsewhere = fresh_dir();
        let port = free_port();
        std::fs::write(
            started_in.path().join("site.toml"),
            "site_url = \"https://lms.example\"\n",
        )
        .unwrap();
        let log_path = started_in.path().join("serve.log");
        let data_dir = data.path().join("lwh data"); // a space, which the hint must quote
        let db = common::TestDb::create(backend).await;
        let mut serve = clean_command(started_in.path());
        serve
            .args(["--config", "site.toml", "--data-dir"])
            .arg(&data_dir);
        if let Some(url) = db.postgres_url() {
            // Given as a flag, so the printed commands must carry it.
            serve.args(["--database-url", url]);
        }
        let mut child = common::process::Running(
            serve
                .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log_path).unwrap())
                .spawn()
                .unwrap(),
        );
        common::process::wait_healthy(port).await;
        let banner = std::fs::read_to_string(&log_path).unwrap();
        common::logs::keep("serve-hints", banner.as_bytes());
        let token_hint = after(&banner, "get an API token:").to_owned();
        let user_hint = after(&banner, "or: ").trim_end_matches(')').to_owned();
        assert!(token_hint.contains("--config"), "{token_hint}");
        assert!(
            token_hint.contains("'"),
            "the path with a space is quoted: {token_hint}"
        );

        // The token command, pasted as printed, makes a token the running service accepts.
        let out = shell(elsewhere.path(), &token_hint, "");
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{token_hint}: {said}");
        let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        common::logs::remember(&token);
        remember_master_key(&data_dir);
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let listed = client
            .get(format!("{base}/api/v1/webhooks"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(
            listed.status(),
            200,
            "the printed token works on the server"
        );

        // The user command (NAME filled in; the password from stdin, as there is no terminal) makes
        // a user who can sign in to this server's console.
        let user_command = format!(
            "{} --password-stdin",
            user_hint.replace("create-user NAME", "create-user ada")
        );
        let out = shell(
            elsewhere.path(),
            &user_command,
            "a long enough passphrase\n",
        );
        assert!(
            out.status.success(),
            "{user_command}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let login =
            common::console_login(&client, &base, "ada", "a long enough passphrase", &[]).await;
        assert_eq!(
            login.status(),
            303,
            "the printed command made a console user"
        );

        // `token list` on an empty database prints its own hint, which works too.
        let out = shell(
            elsewhere.path(),
            &token_hint.replace("token create --scope webhooks:manage", "token list"),
            "",
        );
        assert!(out.status.success());
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let _ = child.wait();
        assert!(
            !elsewhere.path().join("data").exists(),
            "nothing was created where the commands ran"
        );
        if db.postgres_url().is_some() {
            assert!(token_hint.contains("--database-url"), "{token_hint}");
        }
        db.drop_all().await;
    }
);

/// The `sh` code blocks of a Markdown file (fenced with ```sh, indented or not), in order.
fn shell_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for line in markdown.lines() {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim_start();
        match &mut current {
            None if trimmed == "```sh" => current = Some((indent, String::new())),
            Some(_) if trimmed == "```" => {
                if let Some((_, block)) = current.take() {
                    blocks.push(block);
                }
            }
            Some((indent, block)) => {
                block.push_str(line.get(*indent..).unwrap_or(trimmed));
                block.push('\n');
            }
            None => {}
        }
    }
    blocks
}

/// Lines of the docs' shell blocks this test does not run, each with why.
const NOT_RUN_HERE: &[(&str, &str)] = &[
    ("./scripts/test", "the suite itself, which runs this test"),
    (
        "cargo install --path . --locked --root /usr/local",
        "the install check of ./scripts/test runs it into a temporary root",
    ),
    (
        "PROPTEST_CASES=200000 cargo test",
        "a long property run; the suite runs the same properties with fewer cases",
    ),
];

/// A docs line as run here: `cargo run --release [-q] --` is the built binary (on `PATH` as
/// `learnomy-webhooks`, as after the install step), the default address is this test's, and a
/// public receiver URL is a loopback receiver's.
fn as_run_here(line: &str, port: u16, receiver: &str) -> String {
    let mut line = line
        .replace("cargo run --release -q -- ", "learnomy-webhooks ")
        .replace("cargo run --release -- ", "learnomy-webhooks ")
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"));
    while let Some(start) = line.find("https://") {
        let end = line[start..]
            .find(['"', '\'', ' '])
            .map_or(line.len(), |n| start + n);
        let path = line[start + "https://".len()..end]
            .find('/')
            .map_or("/", |slash| &line[start + "https://".len() + slash..end]);
        line.replace_range(start..end, &format!("{receiver}{path}"));
    }
    line
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shell_blocks_of_the_readme_and_the_quick_start_work_as_written() {
    use common::process::free_port;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let quickstart = std::fs::read_to_string(root.join("docs/quickstart.md")).unwrap();
    let receiver = common::receiver::Receiver::start().await;
    let port = free_port();
    // The folder a new user runs everything from, with the development settings the quick
    // start asks for before its steps (loopback receivers over http).
    let folder = fresh_dir();
    std::fs::write(
        folder.path().join("learnomy-webhooks.toml"),
        format!(
            "listen = \"127.0.0.1:{port}\"\nallow_http = true\nallowed_networks = [\"127.0.0.0/8\"]\n"
        ),
    )
    .unwrap();
    let bin_dir = fresh_dir();
    let binary = common::process::release_binary().unwrap_or_else(|| BIN.into());
    std::os::unix::fs::symlink(&binary, bin_dir.path().join("learnomy-webhooks")).unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = |script: &str, vars: &[(&str, &str)]| {
        let mut cmd = Command::new("sh");
        cmd.args(["-ec", script])
            .current_dir(folder.path())
            .env("PATH", &path);
        for (key, _) in std::env::vars() {
            if key.starts_with("LEARNOMY_WEBHOOKS_") || key == "DATABASE_URL" {
                cmd.env_remove(key);
            }
        }
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("sh");
        assert!(
            out.status.success(),
            "this docs block failed:\n{script}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };

    // Every line of every block is either run below or listed above with its reason.
    let mut blocks: Vec<Vec<String>> = Vec::new();
    let mut serve_lines = 0;
    for block in shell_blocks(&readme)
        .into_iter()
        .chain(shell_blocks(&quickstart))
    {
        let mut kept = Vec::new();
        for line in block.lines() {
            let code = line.split(" #").next().unwrap_or("").trim();
            if NOT_RUN_HERE
                .iter()
                .any(|(start, _)| code.starts_with(start))
            {
                continue;
            }
            if code.ends_with("-- serve") {
                serve_lines += 1; // started below, once, as the server the other blocks use
                continue;
            }
            kept.push(as_run_here(line, port, &receiver.url("")));
        }
        if kept
            .iter()
            .any(|l| !l.trim().is_empty() && !l.starts_with('#'))
        {
            blocks.push(kept);
        }
    }
    assert_eq!(serve_lines, 2, "README and quick start each start serve");
    assert_eq!(blocks.len(), 3, "blocks to run: {blocks:#?}");

    // Killed when dropped, also when an assertion below fails.
    let mut serve = common::process::Running(
        Command::new(&binary)
            .arg("serve")
            .current_dir(folder.path())
            .env_remove("DATABASE_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    common::process::wait_healthy(port).await;

    // README: a token, then a webhook created with curl, answered with its secret.
    let created = run(&blocks[0].join("\n"), &[]);
    let webhook: serde_json::Value = serde_json::from_str(&created)
        .unwrap_or_else(|e| panic!("curl printed no webhook ({e}): {created}"));
    let webhook = &webhook["data"];
    let secret = webhook["secret"]
        .as_str()
        .unwrap_or_else(|| panic!("the secret, shown once: {webhook}"));
    common::logs::remember(secret);
    assert!(webhook["url"]
        .as_str()
        .unwrap()
        .starts_with(&receiver.url("/")));

    // README: an events token and `emit` — delivered; then, on the receiving side, `verify`
    // against the captured body.
    let (sending, receiving): (Vec<_>, Vec<_>) = {
        let split = blocks[1]
            .iter()
            .position(|l| l.contains("on the receiving side"))
            .expect("the block says where the receiving side starts");
        (blocks[1][..split].to_vec(), blocks[1][split..].to_vec())
    };
    assert!(receiving
        .iter()
        .any(|l| l.contains("learnomy-webhooks verify")));
    run(&sending.join("\n"), &[]);
    let got = receiver.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(got[0].json()["event"], "course_completed");
    std::fs::write(folder.path().join("body.json"), &got[0].body).unwrap();
    let signature = got[0].header("x-learnomy-signature");
    run(
        &receiving.join("\n"),
        &[("SECRET", secret), ("X_LEARNOMY_SIGNATURE", &signature)],
    );

    // Quick start: `emit` with a token pasted in place of `lwh_…`.
    let token = run(
        "learnomy-webhooks token create --scope events:write --name quickstart",
        &[],
    );
    common::logs::remember(token.trim());
    remember_master_key(&folder.path().join("data"));
    let step = blocks[2].join("\n").replace("lwh_…", token.trim());
    run(&step, &[]);
    receiver.wait_for(2, Duration::from_secs(20)).await;

    let _ = serve.kill();
    let _ = serve.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_a_secret_from_the_command_line() {
    use common::process::{create_webhook, free_port, ProcessEnv};
    use common::receiver::Receiver;
    let dir = fresh_dir();
    let env = ProcessEnv::new(dir.path(), None);
    let token = env.run(&["token", "create", "--scope", "webhooks:manage"]);
    let port = free_port();
    let _serve = env.serve(port).await;
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let rx = Receiver::start().await;
    let id = create_webhook(&client, &base, &token, &rx.url("/cli")).await;

    let listed = env.run(&["webhook", "list"]);
    assert!(
        listed.contains(&id) && listed.contains("active"),
        "{listed}"
    );
    let secret = env.run(&["webhook", "rotate-secret", &id, "--overlap", "1h"]);
    common::logs::remember(&secret);
    assert_eq!(secret.len(), 32, "the new secret alone on stdout: {secret}");
    assert!(env.run(&["webhook", "list"]).contains("rotating until"));
    let shown: serde_json::Value = client
        .get(format!("{base}/api/v1/webhooks/{id}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(shown["data"]["rotation_ends_at"].is_string(), "{shown}");

    // The running service signs with the new secret at once (X-Learnomy-Signature-Next).
    let res = client
        .post(format!("{base}/api/v1/webhooks/{id}/test"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let got = rx.received().pop().expect("the test delivery");
    assert!(lwh_domain::signing::verify_learnomy_signature(
        &secret,
        &got.body,
        &got.header("x-learnomy-signature-next")
    ));

    env.run(&["webhook", "complete-rotation", &id]);
    // Replaying a window with nothing Failed in it queues nothing, and says so.
    assert_eq!(
        env.run(&["recover", &id, "--since", "2026-01-01T00:00:00Z"]),
        "0"
    );
    let bad = env.output_within(
        &["recover", &id, "--since", "yesterday"],
        std::time::Duration::from_secs(30),
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--since must be an RFC 3339"));
    assert!(!env.run(&["webhook", "list"]).contains("rotating"));
    // A throttle shows in the list.
    let res = client
        .patch(format!("{base}/api/v1/webhooks/{id}"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"max_per_second": 40}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(env.run(&["webhook", "list"]).contains("\tat most 40/s"));
    let bad = env.output_within(
        &["webhook", "rotate-secret", "wh_nonsense"],
        std::time::Duration::from_secs(30),
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("webhook ids look like"));
}
