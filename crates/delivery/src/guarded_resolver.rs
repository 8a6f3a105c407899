//! The HTTP client's resolver: the SSRF guard at connect time.
//!
//! reqwest connects only to the addresses a resolver returns, so checking them here — every
//! A and AAAA answer must be allowed — and returning exactly those pins the connection to
//! checked addresses: there is no second lookup a rebinding DNS server could answer
//! differently. IP-literal hosts never reach a resolver; [`crate::sender`] checks them first.

use std::net::SocketAddr;
use std::sync::Arc;

use lwh_url_policy::{HostResolver, Rejection, UrlPolicy};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// A refusal carried through reqwest's error chain, so the sender can record it as `blocked`
/// (or `dns` when the name does not resolve).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct GuardRejection(pub Rejection);

/// Resolves through a [`HostResolver`] and lets through only what the policy allows.
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

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let resolver = self.resolver.clone();
        let host = name.as_str().trim_end_matches('.').to_owned();
        Box::pin(async move {
            let answer = resolver.resolve(&host).await;
            match policy.check_resolved(&host, answer) {
                Ok(ips) => {
                    // The port is replaced by the URL's port by the connector.
                    let addrs: Addrs = Box::new(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)));
                    Ok(addrs)
                }
                Err(rejection) => Err(Box::new(GuardRejection(rejection)) as _),
            }
        })
    }
}
