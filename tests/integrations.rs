//! The integration examples, run against real signed deliveries from the service: the receiver
//! guides in PHP, Node.js, Python and Rust each accept our POSTs and refuse a tampered one, and
//! follow a secret rotation with no refused delivery. (The WordPress plugin has its own tests, in
//! a real WordPress: `tests/wordpress.rs`.)

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::receiver::Receiver;
use common::{delivery_settings, with_server, TestServer};
use lwh_domain::Plan;
use reqwest::Method;
use serde_json::{json, Value};

const SECRET: &str = "guide-secret-3f9mQ2xV7pL0sT4wZ8c";
/// The secret a rotation moves to.
const NEW_SECRET: &str = "guide-rotated-8cR1bN6yH5dJ2aK3F9m";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Rust example, built by `cargo test` next to the test binaries.
fn rust_example() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let debug_dir = exe.parent().and_then(Path::parent).unwrap();
    debug_dir.join("examples").join("receiver")
}

struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `language`'s example accepting `secrets` (the second as LEARNOMY_WEBHOOK_SECRET_NEXT).
async fn start_receiver(language: &str, secrets: &[&str]) -> (Guard, u16) {
    let port = common::process::free_port();
    let dir = root().join("examples/receivers").join(language);
    let mut cmd = match language {
        "php" => {
            let mut c = Command::new("php");
            c.args(["-S", &format!("127.0.0.1:{port}"), "receiver.php"]);
            c
        }
        "node" => {
            assert!(
                dir.join("node_modules/standardwebhooks").exists(),
                "run: npm ci --prefix examples/receivers/node (./scripts/test does it)"
            );
            let mut c = Command::new("node");
            c.arg("receiver.js");
            c
        }
        "python" => {
            let mut c = Command::new("python3");
            c.arg("receiver.py");
            c
        }
        "rust" => {
            let exe = rust_example();
            assert!(
                exe.exists(),
                "{} is built by `cargo test` (whole suite) or `cargo build --example receiver`",
                exe.display()
            );
            Command::new(exe)
        }
        other => panic!("no {other} example"),
    };
    cmd.current_dir(&dir)
        .env_remove("LEARNOMY_WEBHOOK_SECRET_NEXT")
        .env("LEARNOMY_WEBHOOK_SECRET", secrets[0]);
    if let Some(next) = secrets.get(1) {
        cmd.env("LEARNOMY_WEBHOOK_SECRET_NEXT", next);
    }
    let child = cmd
        .env("PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start the {language} receiver: {e} (./scripts/test installs php-cli, node packages and standardwebhooks)"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the {language} receiver did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (Guard(child), port)
}

async fn check_guide(s: &TestServer, language: &str, capture: &Receiver) {
    common::logs::remember(SECRET);
    let (_receiver, port) = start_receiver(language, &[SECRET]).await;
    let id = s
        .create_webhook_with_secret(&format!("http://127.0.0.1:{port}/hook"), SECRET)
        .await;
    let res = s.webhook_action(&id, "test", None).await;
    let outcome: Value = res.json().await.unwrap();
    assert_eq!(
        outcome["data"]["delivered"], true,
        "{language} receiver refused a genuine delivery: {outcome}"
    );
    assert_eq!(outcome["data"]["status_code"], 204, "{language}: {outcome}");

    // A captured genuine request, replayed with one byte of the body changed: refused.
    let genuine = capture.received().pop().expect("a captured delivery");
    let mut tampered = genuine.body.to_vec();
    let last = tampered.len() - 2;
    tampered[last] = b'9';
    let mut request = s
        .client
        .post(format!("http://127.0.0.1:{port}/hook"))
        .body(tampered);
    for name in [
        "content-type",
        "x-learnomy-signature",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    ] {
        request = request.header(name, genuine.header(name));
    }
    let res = request.send().await.unwrap();
    assert_eq!(
        res.status(),
        401,
        "{language} receiver accepted a tampered body"
    );

    // The body and X-Learnomy-Signature intact, the Standard Webhooks headers altered: the
    // receiver's second check (webhook-signature over id.timestamp.body) refuses it.
    let timestamp: i64 = genuine.header("webhook-timestamp").parse().unwrap();
    for (what, id, timestamp) in [
        (
            "another webhook-id",
            format!("{}x", genuine.header("webhook-id")),
            timestamp,
        ),
        (
            "another webhook-timestamp",
            genuine.header("webhook-id"),
            timestamp + 1,
        ),
    ] {
        let mut request = s
            .client
            .post(format!("http://127.0.0.1:{port}/hook"))
            .body(genuine.body.to_vec());
        for name in ["content-type", "x-learnomy-signature", "webhook-signature"] {
            request = request.header(name, genuine.header(name));
        }
        let res = request
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "{language} receiver accepted {what}");
    }
    s.manage(Method::DELETE, &format!("/api/v1/webhooks/{id}"))
        .send()
        .await
        .unwrap();
}

/// Whether a Test of webhook `id` was accepted by its receiver.
async fn test_delivered(s: &TestServer, id: &str) -> bool {
    let res = s.webhook_action(id, "test", None).await;
    let outcome: Value = res.json().await.unwrap();
    outcome["data"]["delivered"] == true
}

/// A rotation as the guide describes it: a receiver holding the old secret, one holding old and
/// new, and one already holding only the new secret all accept every delivery during the
/// overlap; once it is finished, only the new secret verifies.
async fn check_rotation(s: &TestServer, language: &str) {
    common::logs::remember(NEW_SECRET);
    let mut receivers = Vec::new();
    for (who, secrets) in [
        ("old", vec![SECRET]),
        ("both", vec![SECRET, NEW_SECRET]),
        ("new", vec![NEW_SECRET]),
    ] {
        let (guard, port) = start_receiver(language, &secrets).await;
        let id = s
            .create_webhook_with_secret(&format!("http://127.0.0.1:{port}/hook"), SECRET)
            .await;
        receivers.push((who, guard, id));
    }
    for (who, _, id) in &receivers {
        assert_eq!(
            test_delivered(s, id).await,
            *who != "new",
            "{language} receiver with the {who} secret(s), before the rotation"
        );
        let res = s
            .webhook_action(
                id,
                "rotate-secret",
                Some(json!({"secret": NEW_SECRET, "overlap": "1h"})),
            )
            .await;
        assert_eq!(res.status(), 200, "{language}: rotate");
    }
    for (who, _, id) in &receivers {
        assert!(
            test_delivered(s, id).await,
            "{language} receiver with the {who} secret(s) refused a delivery during the overlap"
        );
        let res = s.webhook_action(id, "rotate-secret/complete", None).await;
        assert_eq!(res.status(), 200, "{language}: complete");
        assert_eq!(
            test_delivered(s, id).await,
            *who != "old",
            "{language} receiver with the {who} secret(s), after the rotation"
        );
        s.manage(Method::DELETE, &format!("/api/v1/webhooks/{id}"))
            .send()
            .await
            .unwrap();
    }
}

both_backends!(
    receiver_guides_verify_real_deliveries,
    |backend| async move {
        with_server(backend, delivery_settings(Plan::Pro), |s| async move {
            // A capture receiver with the same secret provides a genuine request to tamper with.
            let capture = Receiver::start().await;
            let id = s
                .create_webhook_with_secret(&capture.url("/capture"), SECRET)
                .await;
            s.webhook_action(&id, "test", None).await;
            capture.wait_for(1, Duration::from_secs(10)).await;
            for language in ["php", "node", "python", "rust"] {
                check_guide(&s, language, &capture).await;
                check_rotation(&s, language).await;
            }
        })
        .await;
    }
);
