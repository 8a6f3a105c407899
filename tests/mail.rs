//! Notification mails against a real SMTP server on 127.0.0.1 (Python's aiosmtpd, writing
//! each mail to a Maildir): one mail per webhook per hour for a flapping endpoint, with the
//! reason and the link; and a mail server that never answers delays no delivery — on SQLite
//! and on PostgreSQL.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::receiver::{Answer, Receiver};
use common::{delivery_settings, with_server, TestServer};
use lwh_domain::Plan;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(15);

fn ms(n: u64) -> lwh_app::Dur {
    lwh_app::Dur(Duration::from_millis(n))
}

/// aiosmtpd on a free port, storing what it receives in a Maildir; stopped when dropped.
struct SmtpSink {
    child: Child,
    port: u16,
    maildir: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmtpSink {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let maildir = dir.path().join("mail");
        let port = common::process::free_port();
        let child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m aiosmtpd (pip install aiosmtpd; scripts/test does)");
        let deadline = Instant::now() + WAIT;
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "aiosmtpd did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self {
            child,
            port,
            maildir,
            _dir: dir,
        }
    }

    /// Every mail received so far, as text.
    fn mails(&self) -> Vec<String> {
        read_all(&self.maildir.join("new"))
    }
}

fn read_all(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .collect()
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn emit(s: &TestServer, event: &str) {
    let res = s
        .client
        .post(s.url("/api/v1/events"))
        .bearer_auth(&s.events_token)
        .json(&json!({"event": event, "data": {"user_id": 7}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
}

async fn wait_status(s: &TestServer, id: &str, want: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let status = s.get_json(&format!("/api/v1/webhooks/{id}")).await["data"]["status"].clone();
        if status == want {
            return;
        }
        assert!(Instant::now() < deadline, "{id} never became {want}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A webhook on `course_completed` whose receiver answers `code`; returns its id.
async fn failing_webhook(s: &TestServer, rx: &Receiver, path: &str, code: u16) -> String {
    rx.always(Answer::Status(code));
    s.create_webhook(&rx.url(path), &["course_completed"]).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn mail_settings(smtp_port: u16) -> lwh_app::Settings {
    let mut settings = delivery_settings(Plan::Pro);
    settings.retry_schedule = vec![ms(40); 7];
    settings.failed_after = ms(150);
    settings.failed_probe_interval = ms(300);
    settings.smtp_url = lwh_app::SmtpUrl(format!("smtp://127.0.0.1:{smtp_port}"));
    settings.notify_emails = vec!["ops@example.com".into()];
    settings.public_url = "https://webhooks.example.com".into();
    settings
}

both_backends!(
    a_flapping_endpoint_sends_one_mail_an_hour_with_the_link,
    |backend| async move {
        let sink = SmtpSink::start().await;
        with_server(backend, mail_settings(sink.port), |s| async move {
            let rx = Receiver::start().await;
            let id = failing_webhook(&s, &rx, "/crm", 503).await;
            // Failed, back (the probe), Failed again.
            emit(&s, "course_completed").await;
            wait_status(&s, &id, "failed").await;
            rx.always(Answer::Status(200));
            wait_status(&s, &id, "active").await;
            rx.always(Answer::Status(503));
            emit(&s, "course_completed").await;
            wait_status(&s, &id, "failed").await;
            let deadline = Instant::now() + WAIT;
            while sink.mails().is_empty() {
                assert!(Instant::now() < deadline, "no mail arrived");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            let mails = sink.mails();
            assert_eq!(mails.len(), 1, "one mail for the hour: {mails:#?}");
            let mail = mails[0].replace("\r\n", "\n").replace("=\n", "");
            assert!(mail.contains("Subject: Webhook failed:"), "{mail}");
            assert!(mail.contains("To: ops@example.com"), "{mail}");
            // The reason of the first Failed, the one the mail is about.
            assert!(
                mail.contains("Why: 5 failed attempts and no success"),
                "{mail}"
            );
            assert!(mail.contains("Failing since: 20"), "{mail}");
            assert!(
                mail.contains(&format!(
                    "Delivery Log: https://webhooks.example.com/admin/webhooks/{id}/log"
                )),
                "{mail}"
            );
            drop(sink);
        })
        .await
    }
);

both_backends!(
    a_mail_server_that_never_answers_delays_no_delivery,
    |backend| async move {
        // Accepts connections and never says a word: each mail waits for its timeout.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = silent.local_addr().unwrap().port();
        let held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((conn, _)) = silent.accept().await {
                open.push(conn);
            }
        });
        with_server(backend, mail_settings(port), |s| async move {
            let watcher = Receiver::start().await;
            s.create_webhook(&watcher.url("/watch"), &["webhook_failed"])
                .await;
            let healthy = Receiver::start().await;
            s.create_webhook(&healthy.url("/ok"), &["quiz_passed"])
                .await;
            let rx = Receiver::start().await;
            let id = failing_webhook(&s, &rx, "/down", 500).await;
            emit(&s, "course_completed").await;
            wait_status(&s, &id, "failed").await;
            // The mail about it is stuck; the service event and other deliveries are not.
            let failed_at = Instant::now();
            watcher.wait_for(1, Duration::from_secs(5)).await;
            emit(&s, "quiz_passed").await;
            healthy.wait_for(1, Duration::from_secs(5)).await;
            assert!(
                failed_at.elapsed() < Duration::from_secs(5),
                "deliveries waited for the mail server"
            );
        })
        .await;
        held.abort();
    }
);
