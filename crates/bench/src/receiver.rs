//! The fast receiver: hyper answering 204, counting every (event, webhook) pair it sees and when
//! (a flaky one fails a share of requests with 500, which are not counted as arrivals).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// What arrived: first arrival per (event id, webhook id), and how many times.
#[derive(Default)]
pub struct Arrivals {
    pub first: HashMap<(String, String), Instant>,
    pub duplicates: u64,
    pub total: u64,
    /// Requests answered 500 by a flaky receiver.
    pub failed: u64,
}

/// A running receiver.
#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    pub arrivals: Arc<Mutex<Arrivals>>,
}

impl Receiver {
    /// Starts answering 204 to every request (`hang = true`: never answers).
    pub async fn start(hang: bool) -> anyhow::Result<Self> {
        Self::start_failing(hang, 0).await
    }

    /// Starts answering 500 to `fail_percent` requests in a hundred, picked by a fixed
    /// pseudo-random sequence (the same for every run), and 204 to the rest.
    pub async fn start_failing(hang: bool, fail_percent: u64) -> anyhow::Result<Self> {
        let sequence = Arc::new(AtomicU64::new(0));
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let arrivals = Arc::new(Mutex::new(Arrivals::default()));
        let shared = arrivals.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let arrivals = shared.clone();
                let sequence = sequence.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let arrivals = arrivals.clone();
                        let fails = fail_percent > 0
                            && scramble(sequence.fetch_add(1, Ordering::Relaxed)) % 100
                                < fail_percent;
                        async move {
                            let now = Instant::now();
                            let header = |n: &str| {
                                req.headers()
                                    .get(n)
                                    .and_then(|v| v.to_str().ok())
                                    .unwrap_or("")
                                    .to_owned()
                            };
                            let key = (header("webhook-id"), header("x-learnomy-webhook"));
                            let _ = req.into_body().collect().await;
                            if hang {
                                std::future::pending::<()>().await;
                            }
                            if fails {
                                if let Ok(mut a) = arrivals.lock() {
                                    a.total += 1;
                                    a.failed += 1;
                                }
                                return Ok::<_, Infallible>(
                                    Response::builder()
                                        .status(StatusCode::INTERNAL_SERVER_ERROR)
                                        .body(Empty::<Bytes>::new())
                                        .unwrap_or_default(),
                                );
                            }
                            if let Ok(mut a) = arrivals.lock() {
                                a.total += 1;
                                match a.first.entry(key) {
                                    std::collections::hash_map::Entry::Occupied(_) => {
                                        a.duplicates += 1
                                    }
                                    std::collections::hash_map::Entry::Vacant(slot) => {
                                        slot.insert(now);
                                    }
                                }
                            }
                            Ok::<_, Infallible>(
                                Response::builder()
                                    .status(StatusCode::NO_CONTENT)
                                    .body(Empty::<Bytes>::new())
                                    .unwrap_or_default(),
                            )
                        }
                    });
                    let _ = http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self { addr, arrivals })
    }

    /// Distinct pairs received so far.
    pub fn distinct(&self) -> usize {
        self.arrivals.lock().map(|a| a.first.len()).unwrap_or(0)
    }

    /// Forgets everything received.
    pub fn reset(&self) {
        if let Ok(mut a) = self.arrivals.lock() {
            *a = Arrivals::default();
        }
    }
}

/// SplitMix64's finaliser: a well-spread number from a counter.
fn scramble(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
