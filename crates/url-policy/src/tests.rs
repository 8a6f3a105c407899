//! The policy's tables: URLs that must be refused, URLs that must pass, and resolver answers.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;

use super::*;

/// Answers from a fixed table; unknown names do not resolve.
struct StubResolver(HashMap<&'static str, Vec<&'static str>>);

impl HostResolver for StubResolver {
    fn resolve<'a>(
        &'a self,
        host: &'a str,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send + 'a>> {
        let answer = self
            .0
            .get(host)
            .map(|ips| ips.iter().map(|i| i.parse().unwrap()).collect())
            .unwrap_or_default();
        Box::pin(async move { Ok(answer) })
    }
}

fn stub() -> StubResolver {
    StubResolver(HashMap::from([
        ("hooks.zapier.com", vec!["54.86.12.1", "2600:1f18:4000::1"]),
        ("crm.example.org", vec!["93.184.216.34"]),
        ("rebind.example.net", vec!["93.184.216.34", "10.0.0.5"]),
        ("internal.example.net", vec!["192.168.1.20"]),
        ("v6private.example.net", vec!["fd12:3456::1"]),
        ("mapped.example.net", vec!["::ffff:127.0.0.1"]),
        ("meta.example.net", vec!["169.254.169.254"]),
        ("nat64.example.net", vec!["64:ff9b::a00:1"]),
    ]))
}

/// Must be refused by the policy without any exemption (http allowed, so the address rules
/// are what refuses them, not the scheme).
const REFUSED: &[&str] = &[
    // loopback in every IPv4 spelling the WHATWG parser accepts
    "http://127.0.0.1/",
    "http://127.0.0.1:8080/hook",
    "http://127.1/",
    "http://127.0.1/",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0x7f.1/",
    "http://0x7f.0x0.0x0.0x1/",
    "http://0177.0.0.1/",
    "http://0177.1/",
    "http://017700000001/",
    "http://127.0.0.1./",
    "http://127.000.000.001/",
    "http://127.255.255.254/",
    "http://%31%32%37.0.0.1/",
    "http://%30x7f.1/",
    "http://１２７.０.０.１/",
    "http://127。0。0。1/",
    // unspecified / this network
    "http://0.0.0.0/",
    "http://0/",
    "http://0x0/",
    "http://0.1.2.3/",
    // private networks
    "http://10.0.0.1/",
    "http://10.255.255.255/",
    "http://012.0.0.1/",
    "http://167772161/",
    "http://172.16.0.1/",
    "http://172.31.255.255/",
    "http://192.168.0.1/",
    "http://192.168.1.1./",
    "http://3232235777/",
    "http://0xc0.0xa8.1.1/",
    "http://100.64.0.1/",
    "http://100.127.255.254/",
    // link-local and metadata
    "http://169.254.169.254/latest/meta-data/",
    "http://169.254.0.1/",
    "http://2852039166/",
    "http://0xa9fea9fe/",
    "http://0251.0376.0251.0376/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://[fe80::1]/",
    "http://[fe80::a9fe:a9fe]/",
    // reserved, documentation, benchmarking, multicast, broadcast
    "http://192.0.0.8/",
    "http://192.0.2.10/",
    "http://192.88.99.1/",
    "http://198.18.0.1/",
    "http://198.19.255.1/",
    "http://198.51.100.7/",
    "http://203.0.113.9/",
    "http://224.0.0.1/",
    "http://239.255.255.250/",
    "http://240.0.0.1/",
    "http://255.255.255.255/",
    // IPv6 literals
    "http://[::1]/",
    "http://[0:0:0:0:0:0:0:1]/",
    "http://[::]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[0:0:0:0:0:ffff:127.0.0.1]/",
    "http://[::ffff:10.0.0.1]/",
    "http://[::ffff:169.254.169.254]/",
    // IPv4-translated (SIIT) forms
    "http://[::ffff:0:169.254.169.254]/",
    "http://[::ffff:0:a9fe:a9fe]/",
    "http://[::ffff:0:127.0.0.1]/",
    "http://[::ffff:0:7f00:1]/",
    "http://[0:0:0:0:ffff:0:10.0.0.1]/",
    "http://[::ffff:0:8.8.8.8]/",
    "http://[::ffff:8.8.8.8]/",
    "http://[::127.0.0.1]/",
    "http://[::10.0.0.1]/",
    "http://[64:ff9b::127.0.0.1]/",
    "http://[64:ff9b::a9fe:a9fe]/",
    "http://[64:ff9b::808:808]/",
    "http://[64:ff9b:1::1]/",
    "http://[2002:7f00:1::]/",
    "http://[2002:c0a8:101::1]/",
    "http://[2002:808:808::1]/",
    "http://[2001:db8::1]/",
    "http://[2001::1]/",
    "http://[100::1]/",
    "http://[fc00::1]/",
    "http://[fdff:ffff::1]/",
    "http://[fec0::1]/",
    "http://[ff02::1]/",
    "http://[fe80::1%25eth0]/",
    "http://[::1%25lo]/",
    // localhost names
    "http://localhost/",
    "http://LOCALHOST/",
    "http://localhost./",
    "http://localhost:8080/hook",
    "http://api.localhost/",
    "http://a.b.localhost./",
    "http://%6c%6f%63%61%6c%68%6f%73%74/",
    "http://ｌｏｃａｌｈｏｓｔ/",
    // not http(s), no host, credentials, broken
    "ftp://example.com/",
    "file:///etc/passwd",
    "gopher://example.com:70/_x",
    "javascript:alert(1)",
    "data:text/plain,hi",
    "ws://example.com/",
    "https://user:pass@example.com/",
    "https://user@example.com/",
    "https://:pass@example.com/",
    "https://127.0.0.1:443@evil.example/",
    "https://",
    "https:///path-only",
    "not a url",
    "/relative/path",
    "",
    "https://exa mple.com/",
    "https://[::1/",
];

/// Names whose resolution must refuse them.
const REFUSED_BY_DNS: &[&str] = &[
    "https://rebind.example.net/hook",
    "https://internal.example.net/hook",
    "https://v6private.example.net/",
    "https://mapped.example.net/",
    "https://meta.example.net/",
    "https://nat64.example.net/",
    "https://does-not-exist.example.invalid/",
];

/// Must pass (names resolve through the stub to public addresses).
const ALLOWED: &[&str] = &[
    "https://hooks.zapier.com/hooks/catch/123/abc/",
    "https://hooks.zapier.com:8443/x",
    "https://HOOKS.ZAPIER.COM/upper",
    "https://hooks.zapier.com./trailing-dot",
    "https://crm.example.org/webhooks/learnomy?token=abc&x=1",
    "https://crm.example.org/#fragment",
    "https://crm.example.org/path%20with%20escapes",
    "https://8.8.8.8/",
    "https://1.1.1.1/hook",
    "https://134744072/",
    "https://0x08080808/",
    "https://93.184.216.34:443/",
    "https://172.32.0.1/",
    "https://172.15.255.255/",
    "https://192.169.0.1/",
    "https://100.128.0.1/",
    "https://169.255.0.1/",
    "https://11.0.0.1/",
    "https://223.255.255.254/",
    "https://[2606:4700:4700::1111]/",
    "https://[2001:4860:4860::8888]/dns",
    "https://[2600:1f18:4000::1]:8443/",
];

fn strict() -> UrlPolicy {
    UrlPolicy::new(true, vec![])
}

async fn full_check(policy: &UrlPolicy, text: &str) -> Result<Vec<IpAddr>, Rejection> {
    let url = policy.check_url(text)?;
    policy.resolve(&url, &stub()).await
}

#[tokio::test]
async fn refuses_every_url_of_the_table() {
    assert!(REFUSED.len() + REFUSED_BY_DNS.len() >= 80);
    for text in REFUSED.iter().chain(REFUSED_BY_DNS) {
        let got = full_check(&strict(), text).await;
        assert!(got.is_err(), "{text:?} must be refused, got {got:?}");
    }
}

#[tokio::test]
async fn allows_every_public_url_of_the_table() {
    assert!(ALLOWED.len() >= 20);
    let policy = UrlPolicy::new(false, vec![]);
    for text in ALLOWED {
        let got = full_check(&policy, text).await;
        assert!(got.is_ok(), "{text:?} must be allowed, got {got:?}");
    }
}

#[test]
fn rejections_name_the_rule() {
    let p = UrlPolicy::new(false, vec![]);
    assert_eq!(
        p.check_url("http://example.com/").unwrap_err(),
        Rejection::Scheme("http".into())
    );
    assert_eq!(
        p.check_url("https://u:p@example.com/").unwrap_err(),
        Rejection::UserInfo
    );
    assert_eq!(
        p.check_url("https://localhost/").unwrap_err(),
        Rejection::Localhost
    );
    let long = format!("https://example.com/{}", "a".repeat(2048));
    assert_eq!(p.check_url(&long).unwrap_err(), Rejection::TooLong);
    let blocked = p.check_url("https://0x7f.1/").unwrap_err();
    assert!(blocked.is_ssrf());
    assert_eq!(
        blocked.to_string(),
        "127.0.0.1 is in a blocked range: 127.0.0.0/8 (loopback)"
    );
    let meta = p
        .check_url("https://169.254.169.254/")
        .unwrap_err()
        .to_string();
    assert!(
        meta.contains("169.254.0.0/16") && meta.contains("metadata"),
        "{meta}"
    );
    for (url, rule) in [
        ("https://[::1]/", "::1/128 (loopback)"),
        ("https://[::]/", "::/128 (unspecified address)"),
        ("https://[::ffff:0:a9fe:a9fe]/", "169.254.0.0/16"),
        (
            "https://[::ffff:0:8.8.8.8]/",
            "::ffff:0:0:0/96 (IPv4-translated address (SIIT))",
        ),
    ] {
        let said = p.check_url(url).unwrap_err().to_string();
        assert!(said.contains(rule), "{url}: {said}");
    }
    let six = p
        .check_url("https://[2002:c0a8:101::1]/")
        .unwrap_err()
        .to_string();
    assert!(
        six.contains("192.168.0.0/16"),
        "embedded IPv4 named first: {six}"
    );
}

#[tokio::test]
async fn every_resolved_address_must_pass() {
    let err = full_check(&strict(), "https://rebind.example.net/")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Rejection::BlockedAddress {
                range: "10.0.0.0/8",
                ..
            }
        ),
        "{err:?}"
    );
    let ok = full_check(&strict(), "https://hooks.zapier.com/")
        .await
        .unwrap();
    assert_eq!(ok.len(), 2);
    let gone = full_check(&strict(), "https://nowhere.example.invalid/")
        .await
        .unwrap_err();
    assert_eq!(
        gone,
        Rejection::DoesNotResolve("nowhere.example.invalid".into())
    );
}

#[tokio::test]
async fn allowed_networks_exempt_exactly_their_ranges() {
    let p = UrlPolicy::new(true, vec!["127.0.0.0/8".parse().unwrap()]);
    assert!(full_check(&p, "http://127.0.0.1:9000/").await.is_ok());
    assert!(full_check(&p, "http://127.0.0.2/").await.is_ok());
    assert!(full_check(&p, "http://[::ffff:127.0.0.1]/").await.is_ok());
    assert!(full_check(&p, "http://mapped.example.net/").await.is_ok());
    // Nothing else is let through by that exemption.
    for other in [
        "http://10.0.0.1/",
        "http://[::1]/",
        "http://169.254.169.254/",
        "http://localhost/",
        "http://192.168.0.1/",
        "http://0.0.0.0/",
    ] {
        assert!(full_check(&p, other).await.is_err(), "{other}");
    }
}
