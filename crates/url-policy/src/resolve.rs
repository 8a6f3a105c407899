//! Name resolution behind a trait, so tests can answer differently at save time and at send time
//! (DNS rebinding) without a DNS server.

use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;

/// Looks up every A and AAAA address of a host name.
pub trait HostResolver: Send + Sync + 'static {
    /// All addresses of `host`; an empty answer means the name does not resolve.
    fn resolve<'a>(
        &'a self,
        host: &'a str,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send + 'a>>;
}

/// The operating system's resolver (`getaddrinfo`, which asks for A and AAAA).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl HostResolver for SystemResolver {
    fn resolve<'a>(
        &'a self,
        host: &'a str,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send + 'a>> {
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host, 0)).await?;
            let mut ips: Vec<IpAddr> = addrs.map(|a| a.ip()).collect();
            ips.sort_unstable();
            ips.dedup();
            Ok(ips)
        })
    }
}
