//! The URL policy (README.md, "SSRF guard"; `allowed_networks` in docs/configuration.md): one
//! place that decides whether a webhook may point at a URL and whether a connection may be made
//! to an address.
//!
//! * [`UrlPolicy::check_url`] — parse with the WHATWG parser (so `http://2130706433/` and
//!   `http://0x7f.1/` are already `127.0.0.1`), then scheme, user-info, length, host name rules
//!   and, for IP-literal hosts, the address rules.
//! * [`UrlPolicy::check_ip`] — the blocked IPv4/IPv6 ranges, including IPv6 forms that embed an
//!   IPv4 address, minus the operator's `allowed_networks`.
//! * [`UrlPolicy::resolve`] — A and AAAA resolution where **every** address must pass; the
//!   caller connects only to the addresses it returns (see the delivery crate's resolver).

mod ranges;
mod resolve;

use std::net::IpAddr;

pub use ipnet::IpNet;
pub use resolve::{HostResolver, SystemResolver};
use url::{Host, Url};

/// Longest URL accepted, in bytes.
pub const MAX_URL_LEN: usize = 2048;

/// Why a URL or address is refused. Each variant names the rule, and `Display` says it in a
/// sentence for the API's `detail` and the console.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// Not a URL at all.
    #[error("is not a valid absolute URL ({0})")]
    Malformed(String),
    /// Longer than [`MAX_URL_LEN`].
    #[error("must be at most {MAX_URL_LEN} characters long")]
    TooLong,
    /// `http://` without `allow_http`, or another scheme.
    #[error("must use https:// (got {0}://)")]
    Scheme(String),
    /// `https://user:pass@host/` — credentials in URLs leak into logs.
    #[error("must not contain a user name or password")]
    UserInfo,
    /// No host part.
    #[error("must name a host")]
    MissingHost,
    /// `localhost` or a `*.localhost` name.
    #[error("points at localhost, which is not allowed")]
    Localhost,
    /// The host is, or resolves to, an address in a blocked range.
    #[error("{host} is in a blocked range: {range} ({why})")]
    BlockedAddress {
        /// The address that matched.
        host: IpAddr,
        /// The blocked range, e.g. `10.0.0.0/8`.
        range: &'static str,
        /// What the range is, e.g. `private network (RFC 1918)`.
        why: &'static str,
    },
    /// The host name has no A or AAAA record.
    #[error("host {0} does not resolve")]
    DoesNotResolve(String),
}

impl Rejection {
    /// True when the refusal is about where the URL leads (SSRF), not about its syntax — the API
    /// answers the former with `url_not_allowed`.
    pub fn is_ssrf(&self) -> bool {
        matches!(
            self,
            Rejection::Localhost | Rejection::BlockedAddress { .. } | Rejection::DoesNotResolve(_)
        )
    }
}

/// The policy as configured: whether plain http is allowed and which networks are exempt.
#[derive(Debug, Clone, Default)]
pub struct UrlPolicy {
    allow_http: bool,
    allowed_networks: Vec<IpNet>,
}

impl UrlPolicy {
    /// A policy; `allowed_networks` exempts ranges from the blocked list (tests, private setups).
    pub fn new(allow_http: bool, allowed_networks: Vec<IpNet>) -> Self {
        Self {
            allow_http,
            allowed_networks,
        }
    }

    /// Checks everything that can be checked without DNS and returns the parsed URL.
    pub fn check_url(&self, text: &str) -> Result<Url, Rejection> {
        if text.len() > MAX_URL_LEN {
            return Err(Rejection::TooLong);
        }
        let url = Url::parse(text.trim()).map_err(|e| Rejection::Malformed(e.to_string()))?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            other => return Err(Rejection::Scheme(other.to_owned())),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Rejection::UserInfo);
        }
        match url.host() {
            None => return Err(Rejection::MissingHost),
            Some(Host::Domain(name)) => check_name(name)?,
            Some(Host::Ipv4(ip)) => self.check_ip(IpAddr::V4(ip))?,
            Some(Host::Ipv6(ip)) => self.check_ip(IpAddr::V6(ip))?,
        }
        Ok(url)
    }

    /// Whether a connection to `ip` is allowed. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`)
    /// are blocked as a range, but an `allowed_networks` exemption for the IPv4 address they
    /// carry covers them too (so `127.0.0.0/8` also lets `::ffff:127.0.0.1` through).
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Rejection> {
        let mapped = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        let exempt =
            |candidate: IpAddr| self.allowed_networks.iter().any(|n| n.contains(&candidate));
        if exempt(ip) || mapped.is_some_and(exempt) {
            return Ok(());
        }
        match ranges::blocked_range(ip) {
            Some((range, why)) => Err(Rejection::BlockedAddress {
                host: ip,
                range,
                why,
            }),
            None => Ok(()),
        }
    }

    /// Resolves the URL's host (A and AAAA) and checks every address; returns them all, for
    /// the caller to connect to and to nothing else. IP-literal hosts skip DNS.
    pub async fn resolve(
        &self,
        url: &Url,
        resolver: &dyn HostResolver,
    ) -> Result<Vec<IpAddr>, Rejection> {
        let name = match url.host() {
            None => return Err(Rejection::MissingHost),
            Some(Host::Ipv4(ip)) => return self.check_ip(IpAddr::V4(ip)).map(|_| vec![ip.into()]),
            Some(Host::Ipv6(ip)) => return self.check_ip(IpAddr::V6(ip)).map(|_| vec![ip.into()]),
            Some(Host::Domain(name)) => name,
        };
        check_name(name)?;
        let name = name.trim_end_matches('.');
        self.check_resolved(name, resolver.resolve(name).await)
    }

    /// Checks what a resolver answered for `name`: empty or failed is "does not resolve", and a
    /// single blocked address refuses the whole name.
    pub fn check_resolved(
        &self,
        name: &str,
        answer: std::io::Result<Vec<IpAddr>>,
    ) -> Result<Vec<IpAddr>, Rejection> {
        let addrs = answer.map_err(|_| Rejection::DoesNotResolve(name.to_owned()))?;
        if addrs.is_empty() {
            return Err(Rejection::DoesNotResolve(name.to_owned()));
        }
        for ip in &addrs {
            self.check_ip(*ip)?;
        }
        Ok(addrs)
    }
}

fn check_name(name: &str) -> Result<(), Rejection> {
    let bare = name.trim_end_matches('.').to_ascii_lowercase();
    if bare.is_empty() {
        return Err(Rejection::MissingHost);
    }
    if bare == "localhost" || bare.ends_with(".localhost") {
        return Err(Rejection::Localhost);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
