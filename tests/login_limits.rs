//! Console logins under attack, against the release binary in its own process (`./scripts/test`
//! builds it; see `ProcessEnv::release`): a flood of wrong
//! names from one address closes the console to that address only (the right password from
//! another address still signs in); parallel guesses for one name cost at most five password
//! checks (counted in `/metrics`); and user names with control characters or a megabyte of text
//! cannot forge or flood log lines.

mod common;

use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::process::{free_port, wait_healthy, ProcessEnv, Running};
use common::{console_login, TestDb};
use lwh_storage::Backend;

const PASSWORD: &str = "a long console password for the limits";

/// A client whose connections come from `address` (any of 127.0.0.0/8 is this machine).
fn client_from(address: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .local_address(address.parse::<IpAddr>().ok())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The log without its colour codes (the text format colours field names even in a file).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

async fn password_checks(base: &str) -> u64 {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| l.starts_with("learnomy_webhooks_console_password_checks_total"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_floods_close_the_console_to_the_flooder_only() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::create(Backend::Sqlite).await;
    let env = ProcessEnv::new(dir.path(), db.postgres_url()).release();
    common::logs::remember(PASSWORD);
    let mut create = Command::new(&env.binary)
        .args(["admin", "create-user", "admin", "--password-stdin"])
        .envs(env.vars.iter().cloned())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = create.stdin.take().unwrap();
        writeln!(stdin, "{PASSWORD}").unwrap();
    }
    assert!(create.wait().unwrap().success());

    let port = free_port();
    let log_path = dir.path().join("serve.log");
    let _serve = Running(
        Command::new(&env.binary)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .envs(env.vars.iter().cloned())
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_path).unwrap())
            .spawn()
            .unwrap(),
    );
    wait_healthy(port).await;
    let base = format!("http://127.0.0.1:{port}");

    // 500 wrong logins with random names from one address.
    let flooder = client_from("127.0.0.2");
    let mut refused = 0;
    for i in 0..500 {
        let name = format!("guess-{i}-{}", ulid::Ulid::new());
        let res = console_login(&flooder, &base, &name, "wrong password", &[]).await;
        match res.status().as_u16() {
            401 => {}
            429 => refused += 1,
            other => panic!("login {i}: {other}"),
        }
    }
    assert!(refused >= 450, "the flooding address is refused: {refused}");
    // The admin, from another address, signs in.
    let admin = client_from("127.0.0.3");
    let res = console_login(&admin, &base, "admin", PASSWORD, &[]).await;
    assert_eq!(
        res.status(),
        303,
        "the right password from elsewhere signs in"
    );

    // 40 parallel wrong guesses for one name, each from its own address: at most 5 checks.
    let before = password_checks(&base).await;
    let guesses: Vec<_> = (0..40)
        .map(|i| {
            let base = base.clone();
            tokio::spawn(async move {
                let client = client_from(&format!("127.0.1.{}", i + 1));
                console_login(&client, &base, "admin", "wrong guess", &[])
                    .await
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for g in guesses {
        statuses.push(g.await.unwrap());
    }
    let checks = password_checks(&base).await - before;
    assert!(
        checks <= 5,
        "40 parallel guesses cost {checks} password checks"
    );
    assert!(checks >= 1, "the counter counts");
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count() as u64,
        checks,
        "{statuses:?}"
    );

    // Names that try to forge or flood log lines.
    let forger = client_from("127.0.0.4");
    let forged = "x\nFORGED-CANARY 2026-11-30T10:00:00Z INFO console sign-in user=admin";
    console_login(&forger, &base, forged, "wrong password", &[]).await;
    let huge = "H".repeat(1024 * 1024);
    console_login(&forger, &base, &huge, "wrong password", &[]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = std::fs::read_to_string(&log_path).unwrap();
    common::logs::keep("login-limits", log.as_bytes());
    let log = strip_ansi(&log);
    for line in log.lines() {
        assert!(
            !line.contains("FORGED-CANARY") || line.contains("user=x\\nFORGED-CANARY"),
            "a user name started a log line of its own: {line}"
        );
        assert!(line.len() < 2_000, "a log line of {} bytes", line.len());
    }
    assert!(
        log.contains("FORGED-CANARY"),
        "the refused sign-in is still logged"
    );
    db.drop_all().await;
}
