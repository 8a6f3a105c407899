//! Receivers that misbehave on purpose, on 127.0.0.1: each attempt ends as a recorded failure
//! of the right kind within the timeouts, memory stays bounded, and a healthy webhook beside
//! them keeps receiving.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::receiver::{Answer, Receiver};
use common::{delivery_settings, with_server, TestServer};
use lwh_domain::Plan;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How a hostile server treats each connection.
#[derive(Clone, Copy, Debug)]
enum Hostile {
    /// Reads the request and never answers.
    Silent,
    /// Starts the status line and headers, then stalls.
    Slowloris,
    /// Answers 200 with a huge length and dribbles one byte every 100 ms.
    Dribble,
    /// Answers 500 with a 1 GiB body, sent as fast as the socket takes it.
    GigabyteBody,
    /// Resets the connection.
    Reset,
    /// Answers with bytes that are not HTTP.
    Garbage,
}

/// Reads whatever the client sends until it pauses, so closing later is not a reset.
async fn read_request(stream: &mut TcpStream) {
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(Ok(n)) =
        tokio::time::timeout(Duration::from_millis(100), stream.read(&mut buf)).await
    {
        if n == 0 {
            break;
        }
    }
}

async fn serve_hostile(kind: Hostile) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                read_request(&mut stream).await;
                match kind {
                    Hostile::Silent => tokio::time::sleep(Duration::from_secs(3600)).await,
                    Hostile::Slowloris => {
                        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Ty").await;
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                    }
                    Hostile::Dribble => {
                        let _ = stream
                            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n")
                            .await;
                        while stream.write_all(b"x").await.is_ok() {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                    Hostile::GigabyteBody => {
                        let _ = stream.write_all(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 1073741824\r\n\r\n").await;
                        let chunk = vec![b'z'; 64 * 1024];
                        for _ in 0..(1024 * 1024 * 1024 / chunk.len()) {
                            if stream.write_all(&chunk).await.is_err() {
                                break;
                            }
                        }
                    }
                    Hostile::Reset => {
                        // SO_LINGER 0 turns the close into a reset: the point of this receiver.
                        #[allow(deprecated)]
                        let _ = stream.set_linger(Some(Duration::ZERO));
                        drop(stream);
                    }
                    Hostile::Garbage => {
                        let _ = stream
                            .write_all(b"SSH-2.0-OpenSSH_9.6\r\n\xff\xfe not http at all\r\n\r\n")
                            .await;
                    }
                }
            });
        }
    });
    addr
}

/// A TLS server whose certificate no one trusts.
async fn serve_untrusted_tls() -> std::net::SocketAddr {
    let cert =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::try_from(cert.key_pair.serialize_der()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.cert.der().clone()], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let _ = acceptor.accept(stream).await;
            });
        }
    });
    addr
}

async fn last_attempt(s: &TestServer, webhook: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let page = s
            .get_json(&format!("/api/v1/webhooks/{webhook}/deliveries"))
            .await;
        if let Some(d) = page["data"].as_array().and_then(|a| a.first()) {
            if d["attempts"].as_i64().unwrap_or(0) >= 1 {
                let detail = s
                    .get_json(&format!("/api/v1/deliveries/{}", d["id"].as_str().unwrap()))
                    .await;
                return detail["data"].clone();
            }
        }
        assert!(
            Instant::now() < deadline,
            "no attempt recorded for {webhook}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

both_backends!(
    hostile_receivers_fail_cleanly_and_block_no_one,
    |backend| async move {
        let mut settings = delivery_settings(Plan::Pro);
        settings.retry_schedule = vec![lwh_app::Dur(Duration::from_millis(300))];
        with_server(backend, settings, |s| async move {
            let rss_before = rss_bytes();
            let mut hooks = Vec::new();
            for kind in [
                Hostile::Silent,
                Hostile::Slowloris,
                Hostile::Dribble,
                Hostile::GigabyteBody,
                Hostile::Reset,
                Hostile::Garbage,
            ] {
                let addr = serve_hostile(kind).await;
                let hook = s
                    .create_webhook(&format!("http://{addr}/hook"), &["quiz_passed"])
                    .await;
                hooks.push((format!("{kind:?}"), hook["id"].as_str().unwrap().to_owned()));
            }
            // 503 with Retry-After: 999999999, from a well-behaved HTTP server.
            let retry_forever = Receiver::start().await;
            retry_forever.always(Answer::StatusRetryAfter(503, 999_999_999));
            let hook = s
                .create_webhook(&retry_forever.url("/later"), &["quiz_passed"])
                .await;
            hooks.push((
                "RetryForever".into(),
                hook["id"].as_str().unwrap().to_owned(),
            ));
            let tls = serve_untrusted_tls().await;
            let hook = s
                .create_webhook(&format!("https://{tls}/hook"), &["quiz_passed"])
                .await;
            hooks.push((
                "UntrustedTls".into(),
                hook["id"].as_str().unwrap().to_owned(),
            ));
            let healthy = Receiver::start().await;
            healthy.always(Answer::Status(204));
            s.create_webhook(&healthy.url("/fine"), &["quiz_passed"])
                .await;

            let started = Instant::now();
            for i in 0..20 {
                let res = s
                    .client
                    .post(s.url("/api/v1/events"))
                    .bearer_auth(&s.events_token)
                    .json(&json!({"event": "quiz_passed", "data": {"i": i}}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 202);
            }
            healthy.wait_for(20, Duration::from_secs(5)).await;
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "the healthy webhook was held up"
            );

            let expected = [
                ("Silent", "timeout"),
                ("Slowloris", "timeout"),
                ("Dribble", "timeout"),
                ("GigabyteBody", "http_status"),
                ("Reset", "connect"),
                ("Garbage", "connect"),
                ("RetryForever", "http_status"),
                ("UntrustedTls", "tls"),
            ];
            for ((name, webhook), (want_name, kind)) in hooks.iter().zip(expected) {
                assert_eq!(name, want_name);
                let d = last_attempt(&s, webhook).await;
                let first = &d["attempts_log"][0];
                assert_eq!(first["error_kind"], kind, "{name}: {first}");
                let took = first["duration_ms"].as_i64().unwrap();
                assert!(
                    took <= 2_500,
                    "{name} took {took} ms: beyond the 1 s timeouts"
                );
                if name == "GigabyteBody" {
                    let excerpt = first["response_excerpt"].as_str().unwrap_or("");
                    assert!(
                        excerpt.len() <= 2048 && excerpt.starts_with("zzz"),
                        "{name}: excerpt of {} bytes",
                        excerpt.len()
                    );
                }
                if name == "RetryForever" {
                    // Retry-After cannot park the delivery: the next attempt follows the schedule.
                    let deadline = Instant::now() + Duration::from_secs(10);
                    loop {
                        let d = last_attempt(&s, webhook).await;
                        if d["attempts"].as_i64().unwrap() >= 2 {
                            break;
                        }
                        assert!(
                            Instant::now() < deadline,
                            "Retry-After: 999999999 parked the delivery"
                        );
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
            let grown = rss_bytes().saturating_sub(rss_before);
            assert!(
                grown < 200 * 1024 * 1024,
                "memory grew by {} MB",
                grown / 1024 / 1024
            );
        })
        .await;
    }
);
