//! The HTTP client's resolver: the SSRF guard at connect time.
//!
//! The connector connects only to the addresses its resolver returns, so checking them here —
//! every A and AAAA answer must be allowed — and returning exactly those pins the connection
//! to checked addresses: there is no second lookup a rebinding DNS server could answer
//! differently. IP-literal hosts never reach a resolver; [`crate::sender`] checks them first.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::dns::Name;
use lwh_url_policy::{HostResolver, Rejection, UrlPolicy};

/// A refusal carried through the client's error chain, so the sender can record it as
/// `blocked` (or `dns` when the name does not resolve).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct GuardRejection(pub Rejection);

/// Resolves through a [`HostResolver`] and lets through only what the policy allows.
#[derive(Clone)]
pub struct GuardedResolver {
    policy: UrlPolicy,
    resolver: Arc<dyn HostResolver>,
}

impl GuardedResolver {
    /// A resolver enforcing `policy`.
    pub fn new(policy: UrlPolicy, resolver: Arc<dyn HostResolver>) -> Self {
        Self { policy, resolver }
    }
}

/// The checked addresses; the port is replaced by the URL's port by the connector.
type Addrs = std::vec::IntoIter<SocketAddr>;

impl tower_service::Service<Name> for GuardedResolver {
    type Response = Addrs;
    type Error = GuardRejection;
    type Future = Pin<Box<dyn Future<Output = Result<Addrs, GuardRejection>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), GuardRejection>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let policy = self.policy.clone();
        let resolver = self.resolver.clone();
        let host = name.as_str().trim_end_matches('.').to_owned();
        Box::pin(async move {
            let answer = resolver.resolve(&host).await;
            match policy.check_resolved(&host, answer) {
                Ok(ips) => Ok(ips
                    .into_iter()
                    .map(|ip| SocketAddr::new(ip, 0))
                    .collect::<Vec<_>>()
                    .into_iter()),
                Err(rejection) => Err(GuardRejection(rejection)),
            }
        })
    }
}
