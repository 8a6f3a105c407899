//! The blocked address ranges of the URL policy (README.md, "SSRF guard"), each with the reason shown to the admin.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

const V4: &[(&str, &str)] = &[
    ("0.0.0.0/8", "\"this\" network"),
    ("10.0.0.0/8", "private network (RFC 1918)"),
    ("100.64.0.0/10", "carrier-grade NAT (RFC 6598)"),
    ("127.0.0.0/8", "loopback"),
    (
        "169.254.0.0/16",
        "link-local, including cloud metadata services",
    ),
    ("172.16.0.0/12", "private network (RFC 1918)"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.0.2.0/24", "documentation (TEST-NET-1)"),
    ("192.88.99.0/24", "6to4 relay anycast"),
    ("192.168.0.0/16", "private network (RFC 1918)"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation (TEST-NET-2)"),
    ("203.0.113.0/24", "documentation (TEST-NET-3)"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved, including broadcast"),
];

const V6: &[(&str, &str)] = &[
    ("::/128", "unspecified address"),
    ("::1/128", "loopback"),
    ("::ffff:0:0/96", "IPv4-mapped address"),
    ("::ffff:0:0:0/96", "IPv4-translated address (SIIT)"),
    ("::/96", "IPv4-compatible address"),
    ("64:ff9b::/96", "NAT64 translation"),
    ("64:ff9b:1::/48", "local-use NAT64 translation"),
    ("100::/64", "discard-only"),
    ("2001::/23", "IETF protocol assignments, including Teredo"),
    ("2001:db8::/32", "documentation"),
    ("2002::/16", "6to4"),
    ("fc00::/7", "unique local (private) network"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local (deprecated)"),
    ("ff00::/8", "multicast"),
];

/// The blocked range `ip` falls in, if any, as `(range, reason)`. For IPv6 forms that carry an
/// IPv4 address (mapped, translated, compatible, NAT64, 6to4) a blocked embedded address is
/// named first, which tells the admin more than "6to4" does.
pub(crate) fn blocked_range(ip: IpAddr) -> Option<(&'static str, &'static str)> {
    match ip {
        IpAddr::V4(v4) => blocked_v4(v4),
        IpAddr::V6(v6) => embedded_v4(v6)
            .and_then(blocked_v4)
            .or_else(|| blocked_v6(v6)),
    }
}

fn blocked_v4(ip: Ipv4Addr) -> Option<(&'static str, &'static str)> {
    V4.iter()
        .find(|(net, _)| net.parse::<Ipv4Net>().is_ok_and(|n| n.contains(&ip)))
        .copied()
}

fn blocked_v6(ip: Ipv6Addr) -> Option<(&'static str, &'static str)> {
    V6.iter()
        .find(|(net, _)| net.parse::<Ipv6Net>().is_ok_and(|n| n.contains(&ip)))
        .copied()
}

/// The IPv4 address inside an IPv6 address of a form that carries one.
pub(crate) fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let o = ip.octets();
    let low32 = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    if let Some(mapped) = ip.to_ipv4_mapped() {
        return Some(mapped);
    }
    if s[..6] == [0, 0, 0, 0, 0xffff, 0] {
        return Some(low32); // IPv4-translated (SIIT) ::ffff:0:a.b.c.d
    }
    // IPv4-compatible ::a.b.c.d — but not :: and ::1, which are IPv6's own unspecified and
    // loopback addresses (RFC 4291 §2.5.5.1) and are named as such.
    if s[..6] == [0, 0, 0, 0, 0, 0] && u32::from(low32) > 1 {
        return Some(low32);
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1) {
        return Some(low32); // NAT64 64:ff9b::a.b.c.d and 64:ff9b:1::/48
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(o[2], o[3], o[4], o[5])); // 6to4 2002:AABB:CCDD::
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_range_parses() {
        assert!(V4.iter().all(|(n, _)| n.parse::<Ipv4Net>().is_ok()));
        assert!(V6.iter().all(|(n, _)| n.parse::<Ipv6Net>().is_ok()));
    }

    #[test]
    fn embedded_addresses_are_found() {
        let v4 = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        let v6 = |s: &str| s.parse::<Ipv6Addr>().unwrap();
        assert_eq!(embedded_v4(v6("::ffff:10.1.2.3")), Some(v4("10.1.2.3")));
        assert_eq!(embedded_v4(v6("::127.0.0.1")), Some(v4("127.0.0.1")));
        assert_eq!(
            embedded_v4(v6("64:ff9b::a9fe:a9fe")),
            Some(v4("169.254.169.254"))
        );
        assert_eq!(
            embedded_v4(v6("2002:c0a8:0101::1")),
            Some(v4("192.168.1.1"))
        );
        assert_eq!(embedded_v4(v6("2606:4700::1111")), None);
        assert_eq!(
            embedded_v4(v6("::ffff:0:a9fe:a9fe")),
            Some(v4("169.254.169.254")),
            "IPv4-translated (SIIT)"
        );
        assert_eq!(embedded_v4(v6("::ffff:0:7f00:1")), Some(v4("127.0.0.1")));
        assert_eq!(embedded_v4(v6("::1")), None, "IPv6's own loopback");
        assert_eq!(embedded_v4(v6("::")), None);
    }
}
