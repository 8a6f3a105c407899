//! The HTTP server facing the internet. `axum::serve` has no timer: a client sending half its
//! headers keeps its connection (and a file descriptor) forever, and one such connection keeps
//! a graceful shutdown from ending. This accept loop bounds what an anonymous client can hold:
//! a header-read timeout (which also closes keep-alive connections idle for that long), a
//! whole-request timeout (body included), a cap on open connections (beyond it new
//! connections wait in the kernel's backlog), and a shutdown deadline after which open
//! connections are dropped and the process exits.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::error::ApiError;

/// What one client may hold of the server, and how long a shutdown may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Time to receive a request's headers, from the connection's start or the end of the
    /// previous response (so it is also the keep-alive idle timeout).
    pub header_timeout: Duration,
    /// Time to receive the body and answer, from the end of the headers.
    pub request_timeout: Duration,
    /// Connections open at once; more wait until one closes.
    pub max_connections: usize,
    /// After the shutdown signal, how long requests in flight get before the process exits.
    pub shutdown_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_connections: 4096,
            shutdown_timeout: Duration::from_secs(30),
        }
    }
}

impl ServerLimits {
    /// The limits configured for this service (`http_header_timeout`, `http_request_timeout`,
    /// `http_max_connections`, `shutdown_timeout`).
    pub fn from_settings(settings: &lwh_app::Settings) -> Self {
        Self {
            header_timeout: settings.http_header_timeout.get(),
            request_timeout: settings.http_request_timeout.get(),
            max_connections: settings.http_max_connections,
            shutdown_timeout: settings.shutdown_timeout.get(),
        }
    }
}

/// Binds `addr` with a listen backlog of `backlog` (capped by the kernel's `somaxconn`), so a
/// burst of connections waits in the kernel's queue instead of being dropped and retried by
/// the clients' TCP for seconds. (`TcpListener::bind` asks for 1,024.)
pub fn bind(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// How a [`serve`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Every connection finished within the shutdown deadline.
    Drained,
    /// The deadline passed; this many connections were still open and were dropped.
    DeadlinePassed(usize),
}

/// Serves `router` on `listener` within `limits` until `shutdown` resolves, then lets requests
/// in flight finish for at most `limits.shutdown_timeout`. Each request carries the peer's
/// address as [`ConnectInfo<SocketAddr>`].
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()>,
) -> Stopped {
    let request_timeout = limits.request_timeout;
    let router = router.layer(axum::middleware::from_fn(move |req, next| {
        within(request_timeout, req, next)
    }));
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        // A layer around the whole router (as axum's `into_make_service_with_connect_info`
        // does), not `Router::layer`, which would rebuild every route for each connection.
        let service = tower::Layer::layer(&axum::Extension(ConnectInfo(peer)), router.clone());
        let connection =
            builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    let open = limits.max_connections.max(1) - permits.available_permits();
    tracing::info!(
        open,
        deadline_secs = limits.shutdown_timeout.as_secs(),
        "no new connections; waiting for requests in flight"
    );
    tokio::select! {
        () = graceful.shutdown() => Stopped::Drained,
        () = tokio::time::sleep(limits.shutdown_timeout) => {
            let open = limits.max_connections.max(1) - permits.available_permits();
            tracing::warn!(open, "shutdown deadline passed; dropping the connections still open");
            Stopped::DeadlinePassed(open)
        }
    }
}

/// Answers `408 request_timeout` when a request (its body included) takes longer than `limit`.
async fn within(limit: Duration, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::request_timeout(limit).into_response(),
    }
}

/// The peer address of a request served by [`serve`]; `None` when served otherwise.
pub fn peer(extensions: &axum::http::Extensions) -> Option<SocketAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| *addr)
}
