//! Property tests of the URL policy (run with the normal test suite; raise the case count with
//! `PROPTEST_CASES=100000 cargo test -p lwh-url-policy --test policy_properties`):
//!
//! * no input of any shape makes the policy panic;
//! * no URL is accepted whose host is, or resolves to, an address in a blocked range — judged
//!   by an oracle written separately from the policy, straight from the documented list of blocked ranges.

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::pin::Pin;

use ipnet::IpNet;
use lwh_url_policy::{HostResolver, UrlPolicy};
use proptest::prelude::*;

const BLOCKED: &str = "0.0.0.0/8 10.0.0.0/8 100.64.0.0/10 127.0.0.0/8 169.254.0.0/16 172.16.0.0/12 \
192.0.0.0/24 192.0.2.0/24 192.88.99.0/24 192.168.0.0/16 198.18.0.0/15 198.51.100.0/24 203.0.113.0/24 \
224.0.0.0/4 240.0.0.0/4 ::/128 ::1/128 ::ffff:0:0/96 ::ffff:0:0:0/96 ::/96 64:ff9b::/96 64:ff9b:1::/48 100::/64 \
2001::/23 2001:db8::/32 2002::/16 fc00::/7 fe80::/10 fec0::/10 ff00::/8";

/// The oracle: blocked if in a listed range, or if an IPv4-mapped address maps to a blocked
/// IPv4 address.
fn oracle_blocked(ip: IpAddr) -> bool {
    let nets: Vec<IpNet> = BLOCKED
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    if nets.iter().any(|n| n.contains(&ip)) {
        return true;
    }
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .is_some_and(|v4| oracle_blocked(IpAddr::V4(v4))),
        IpAddr::V4(_) => false,
    }
}

/// Answers every name with a fixed list.
struct Fixed(Vec<IpAddr>);

impl HostResolver for Fixed {
    fn resolve<'a>(
        &'a self,
        _host: &'a str,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send + 'a>> {
        let answer = self.0.clone();
        Box::pin(async move { Ok(answer) })
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

/// Every spelling of an IPv4 address the WHATWG parser accepts.
fn ipv4_spellings(ip: Ipv4Addr) -> Vec<String> {
    let n = u32::from(ip);
    let [a, b, c, d] = ip.octets();
    vec![
        ip.to_string(),
        n.to_string(),
        format!("0x{n:x}"),
        format!("0{n:o}"),
        format!("0x{a:x}.0x{b:x}.0x{c:x}.0x{d:x}"),
        format!("0{a:o}.0{b:o}.0{c:o}.0{d:o}"),
        format!(
            "{a}.{}",
            (u32::from(b) << 16) | (u32::from(c) << 8) | u32::from(d)
        ),
        format!("{a}.{b}.{}", (u32::from(c) << 8) | u32::from(d)),
        format!("{ip}."),
    ]
}

fn interesting_v4() -> impl Strategy<Value = Ipv4Addr> {
    prop_oneof![
        any::<u32>().prop_map(Ipv4Addr::from),
        (0u8..=255).prop_map(|x| Ipv4Addr::new(127, 0, 0, x)),
        (0u8..=255, 0u8..=255).prop_map(|(x, y)| Ipv4Addr::new(10, x, y, 1)),
        (0u8..=255).prop_map(|x| Ipv4Addr::new(169, 254, x, 254)),
        (16u8..=31, 0u8..=255).prop_map(|(x, y)| Ipv4Addr::new(172, x, y, 1)),
        (0u8..=255).prop_map(|x| Ipv4Addr::new(192, 168, x, 1)),
        (64u8..=127).prop_map(|x| Ipv4Addr::new(100, x, 0, 1)),
    ]
}

fn interesting_v6() -> impl Strategy<Value = Ipv6Addr> {
    prop_oneof![
        any::<u128>().prop_map(Ipv6Addr::from),
        interesting_v4().prop_map(|v4| v4.to_ipv6_mapped()),
        // IPv4-translated (SIIT): ::ffff:0:a.b.c.d
        interesting_v4()
            .prop_map(|v4| Ipv6Addr::from((0xffffu128 << 48) | u128::from(u32::from(v4)))),
        interesting_v4().prop_map(|v4| Ipv6Addr::from(u128::from(u32::from(v4)))),
        interesting_v4()
            .prop_map(|v4| Ipv6Addr::from((0x0064_ff9bu128 << 96) | u128::from(u32::from(v4)))),
        interesting_v4()
            .prop_map(|v4| Ipv6Addr::from((0x2002u128 << 112) | (u128::from(u32::from(v4)) << 80))),
        (any::<u16>(), any::<u64>()).prop_map(|(s, x)| Ipv6Addr::from(
            (0xfd00u128 << 112) | (u128::from(s) << 64) | u128::from(x)
        )),
        any::<u64>().prop_map(|x| Ipv6Addr::from((0xfe80u128 << 112) | u128::from(x))),
    ]
}

fn any_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        interesting_v4().prop_map(IpAddr::V4),
        interesting_v6().prop_map(IpAddr::V6)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn never_panics_on_any_text(text in any::<String>(), allow_http in any::<bool>()) {
        let policy = UrlPolicy::new(allow_http, vec![]);
        let _ = policy.check_url(&text);
        let _ = policy.check_url(&format!("https://{text}"));
        let _ = policy.check_url(&format!("http://{text}/x"));
    }

    #[test]
    fn never_accepts_a_blocked_ipv4_literal(ip in interesting_v4(), pick in 0usize..9) {
        let spelled = &ipv4_spellings(ip)[pick];
        let policy = UrlPolicy::new(true, vec![]);
        if let Ok(url) = policy.check_url(&format!("http://{spelled}/hook")) {
            let host: IpAddr = match url.host() {
                Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
                Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
                other => panic!("an IPv4 spelling parsed as {other:?}"),
            };
            prop_assert!(!oracle_blocked(host), "accepted {spelled} = {host}");
        } else {
            // Refused: it must have been blocked (or not parse as an address at all).
        }
    }

    #[test]
    fn never_accepts_a_blocked_ipv6_literal(ip in interesting_v6()) {
        let policy = UrlPolicy::new(true, vec![]);
        let accepted = policy.check_url(&format!("http://[{ip}]/hook")).is_ok();
        prop_assert!(!(accepted && oracle_blocked(IpAddr::V6(ip))), "accepted [{ip}]");
    }

    #[test]
    fn never_accepts_a_name_resolving_to_a_blocked_address(ips in proptest::collection::vec(any_ip(), 1..5)) {
        let policy = UrlPolicy::new(false, vec![]);
        let url = policy.check_url("https://hooks.example.com/x").unwrap();
        let got = runtime().block_on(policy.resolve(&url, &Fixed(ips.clone())));
        let any_blocked = ips.iter().any(|ip| oracle_blocked(*ip));
        prop_assert_eq!(got.is_ok(), !any_blocked, "answer {:?} → {:?}", ips, got);
        if let Ok(allowed) = got {
            prop_assert!(allowed.iter().all(|ip| !oracle_blocked(*ip)));
        }
    }
}
