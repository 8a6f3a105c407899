//! The HTTP server facing the internet, tried as an anonymous client would, against the release
//! binary in its own process (`./scripts/test` builds it; see `ProcessEnv::release`): thousands of connections that send their headers a byte a second
//! cannot hold the server (each is closed at the header timeout, `/healthz` keeps answering,
//! SIGTERM still ends the process within the shutdown deadline and the next start delivers), and
//! a body sent a byte a second gets `408` at the request timeout.

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::process::{free_port, ProcessEnv};
use common::receiver::Receiver;
use common::TestDb;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HEADER_TIMEOUT_SECS: u64 = 2;
const REQUEST_TIMEOUT_SECS: u64 = 5;
const SHUTDOWN_SECS: u64 = 4;
const SLOW_CLIENTS: usize = 2_000;

fn env_with_limits(dir: &std::path::Path, db: &TestDb) -> ProcessEnv {
    let mut env = ProcessEnv::new(dir, db.postgres_url()).release();
    for (key, value) in [
        ("HTTP_HEADER_TIMEOUT", format!("{HEADER_TIMEOUT_SECS}s")),
        ("HTTP_REQUEST_TIMEOUT", format!("{REQUEST_TIMEOUT_SECS}s")),
        ("SHUTDOWN_TIMEOUT", format!("{SHUTDOWN_SECS}s")),
    ] {
        env.vars
            .push((format!("LEARNOMY_WEBHOOKS_{key}"), value.to_owned()));
    }
    env
}

/// A client that sends `GET /healthz` a byte a second and never finishes its headers; counts
/// itself in `closed` when the server closes the connection, and answers how long it was open.
async fn slowloris(port: u16, closed: Arc<AtomicUsize>, opened: Arc<AtomicUsize>) -> Duration {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)).await else {
        return Duration::ZERO;
    };
    let since = Instant::now();
    opened.fetch_add(1, Ordering::SeqCst);
    let request =
        b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut buf = [0u8; 256];
    for byte in request.iter().cycle().take(120) {
        if stream.write_all(&[*byte]).await.is_err() {
            break;
        }
        match tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break, // closed by the server
            Ok(Ok(_)) => {}                  // an error response: the close follows
            Err(_) => {}                     // still open: send the next byte
        }
    }
    closed.fetch_add(1, Ordering::SeqCst);
    since.elapsed()
}

async fn healthz_within(port: u16, limit: Duration) {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(limit)
        .build()
        .unwrap();
    let started = Instant::now();
    let res = client
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("/healthz did not answer within {limit:?}: {e}"));
    assert_eq!(res.status(), 200);
    assert!(started.elapsed() < limit, "{:?}", started.elapsed());
}

both_backends!(slow_clients_cannot_hold_the_server, |backend| async move {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::create(backend).await;
    let env = env_with_limits(dir.path(), &db);
    let port = free_port();
    let mut serve = env.serve(port).await;

    let closed = Arc::new(AtomicUsize::new(0));
    let opened = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let clients: Vec<_> = (0..SLOW_CLIENTS)
        .map(|_| tokio::spawn(slowloris(port, closed.clone(), opened.clone())))
        .collect();
    // Once they are all in and dribbling, another client is served at once.
    while opened.load(Ordering::SeqCst) < SLOW_CLIENTS
        && started.elapsed() < Duration::from_secs(10)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    healthz_within(port, Duration::from_secs(1)).await;
    let mut longest = Duration::ZERO;
    for client in clients {
        longest = longest.max(client.await.unwrap());
    }
    assert_eq!(
        opened.load(Ordering::SeqCst),
        SLOW_CLIENTS,
        "every slow client got in"
    );
    assert_eq!(closed.load(Ordering::SeqCst), SLOW_CLIENTS);
    assert!(
        longest < Duration::from_secs(HEADER_TIMEOUT_SECS + 2),
        "every slow connection is closed at the header timeout ({HEADER_TIMEOUT_SECS} s), not held: \
         the longest lived {longest:?}"
    );
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(HEADER_TIMEOUT_SECS + 6),
        "{took:?}"
    );

    // SIGTERM with slow connections open: the process ends within the shutdown deadline.
    let holders: Vec<_> = (0..200)
        .map(|_| tokio::spawn(slowloris(port, closed.clone(), opened.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let term = Instant::now();
    Command::new("kill")
        .args(["-TERM", &serve.id().to_string()])
        .status()
        .unwrap();
    let deadline = Duration::from_secs(SHUTDOWN_SECS + 2);
    loop {
        if serve.try_wait().unwrap().is_some() {
            break;
        }
        assert!(
            term.elapsed() < deadline,
            "serve still runs {deadline:?} after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for holder in holders {
        holder.abort();
    }

    // The next start on the same database delivers.
    let mut next = env.serve(port).await;
    let token = env.run(&["token", "create", "--scope", "webhooks:manage"]);
    let rx = Receiver::start().await;
    common::process::create_webhook(
        &reqwest::Client::new(),
        &format!("http://127.0.0.1:{port}"),
        &token,
        &rx.url("/after"),
    )
    .await;
    let res = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/api/v1/events"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"event": "course_completed", "data": {"n": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    rx.wait_for(1, Duration::from_secs(20)).await;
    common::process::kill9(&mut next);
    db.drop_all().await;
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_sent_a_byte_a_second_gets_408_at_the_request_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::create(lwh_storage::Backend::Sqlite).await;
    let env = env_with_limits(dir.path(), &db);
    let token = env.run(&["token", "create", "--scope", "events:write"]);
    let port = free_port();
    let _serve = env.serve(port).await;
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let head = format!(
        "POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    'dribble: for _ in 0..60 {
        if stream.write_all(b" ").await.is_err() {
            break;
        }
        match tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break 'dribble,
            Ok(Ok(n)) => {
                answer.extend_from_slice(&buf[..n]);
                if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                    break 'dribble;
                }
            }
            Err(_) => {}
        }
    }
    let took = started.elapsed();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("application/problem+json"),
        "a problem, like every error: {answer}"
    );
    assert!(
        took >= Duration::from_secs(REQUEST_TIMEOUT_SECS - 1)
            && took < Duration::from_secs(REQUEST_TIMEOUT_SECS + 2),
        "{took:?}"
    );
    db.drop_all().await;
}
