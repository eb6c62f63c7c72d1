//! Keeps callbacks from reaching riskgate's own network (SSRF).
//!
//! A merchant chooses `callback_url`, and riskgate POSTs to it from inside the
//! operator's network, so a URL naming loopback, a private range or a cloud
//! metadata endpoint would let any merchant probe what riskgate can reach.
//! Three checks, all refusing the same set of addresses ([`is_public`]):
//!
//! 1. [`check_url`] when a URL is accepted: scheme, host, and every address the
//!    host resolves to at that moment.
//! 2. [`GuardedResolver`], the resolver of the delivery [`client`], at connect
//!    time: DNS can change between (1) and delivery (DNS rebinding), so the
//!    addresses actually connected to are filtered again.
//! 3. [`check_literal`] before each delivery: reqwest does not call its
//!    resolver for a host that is an IP literal, so such hosts are checked
//!    here.
//!
//! The client also follows no redirects (a public URL answering `302
//! Location: http://169.254.169.254/` would otherwise walk around all three)
//! and uses no proxy (with a proxy, the proxy resolves the host, not us).
//!
//! `allow_private` (`--allow-private-callbacks`) turns the address checks off
//! for tests and on-premises deployments; the scheme and host checks remain.

use std::error::Error as StdError;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// Connect timeout of the delivery client, unless the whole timeout is shorter.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const USER_AGENT: &str = concat!("riskgate/", env!("CARGO_PKG_VERSION"));

/// IPv4 ranges that are not publicly routable unicast, as (network, prefix length).
const V4_NON_PUBLIC: &[(Ipv4Addr, u8)] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 8),       // "this network"
    (Ipv4Addr::new(10, 0, 0, 0), 8),      // private
    (Ipv4Addr::new(100, 64, 0, 0), 10),   // CGNAT (incl. Alibaba metadata 100.100.100.200)
    (Ipv4Addr::new(127, 0, 0, 0), 8),     // loopback
    (Ipv4Addr::new(169, 254, 0, 0), 16),  // link-local (incl. metadata 169.254.169.254)
    (Ipv4Addr::new(172, 16, 0, 0), 12),   // private
    (Ipv4Addr::new(192, 0, 0, 0), 24),    // IETF protocol assignments
    (Ipv4Addr::new(192, 0, 2, 0), 24),    // documentation (TEST-NET-1)
    (Ipv4Addr::new(192, 88, 99, 0), 24),  // deprecated 6to4 relay anycast
    (Ipv4Addr::new(192, 168, 0, 0), 16),  // private
    (Ipv4Addr::new(198, 18, 0, 0), 15),   // benchmarking
    (Ipv4Addr::new(198, 51, 100, 0), 24), // documentation (TEST-NET-2)
    (Ipv4Addr::new(203, 0, 113, 0), 24),  // documentation (TEST-NET-3)
    (Ipv4Addr::new(224, 0, 0, 0), 4),     // multicast
    (Ipv4Addr::new(240, 0, 0, 0), 4),     // reserved, incl. broadcast 255.255.255.255
];

/// Ranges inside global unicast 2000::/3 that are not public. Everything
/// outside 2000::/3 (loopback, unique local fc00::/7, link-local fe80::/10,
/// site-local, multicast ff00::/8, discard 100::/64, local-use NAT64
/// 64:ff9b:1::/48, …) is refused wholesale, after the forms embedding an
/// IPv4 address have been judged by that address.
const V6_NON_PUBLIC: &[(Ipv6Addr, u8)] = &[
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23), // IETF protocol assignments, incl. Teredo 2001::/32
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32), // documentation
    (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20), // documentation (RFC 9637)
];

fn v4_in(ip: Ipv4Addr, (net, len): (Ipv4Addr, u8)) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
    u32::from(ip) & mask == u32::from(net)
}

fn v6_in(ip: Ipv6Addr, (net, len): (Ipv6Addr, u8)) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
    u128::from(ip) & mask == u128::from(net)
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    !V4_NON_PUBLIC.iter().any(|range| v4_in(ip, *range))
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let o = ip.octets();
    let embedded = |a: usize| Ipv4Addr::new(o[a], o[a + 1], o[a + 2], o[a + 3]);
    // IPv4-mapped ::ffff:a.b.c.d
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    // IPv4-compatible ::a.b.c.d (deprecated); :: and ::1 land in 0.0.0.0/8.
    if u128::from(ip) >> 32 == 0 {
        return is_public_v4(embedded(12));
    }
    // NAT64 well-known prefix 64:ff9b::/96
    if v6_in(ip, (Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96)) {
        return is_public_v4(embedded(12));
    }
    // 6to4 2002:aabb:ccdd::/48 carries a.b.c.d in bits 16..48.
    if v6_in(ip, (Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16)) {
        return is_public_v4(embedded(2));
    }
    v6_in(ip, (Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3))
        && !V6_NON_PUBLIC.iter().any(|range| v6_in(ip, *range))
}

/// True for a publicly routable unicast address; false for loopback,
/// unspecified, private, link-local, CGNAT, multicast, broadcast,
/// documentation, benchmarking, reserved, unique local and cloud metadata
/// addresses. IPv6 forms that embed an IPv4 address (mapped, compatible,
/// NAT64, 6to4) are judged by that address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

/// A callback URL that passed [`check_url`], with the addresses its host
/// resolved to at the time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedUrl {
    pub url: Url,
    pub addrs: Vec<SocketAddr>,
}

fn literal_ip(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        Host::Domain(_) => None,
    }
}

/// Checks a callback URL: http or https, a host, and (unless
/// `allow_private`) only public addresses behind it. An IP-literal host is
/// judged as is; a name is resolved, and one non-public address among its
/// addresses is enough to refuse it. The error is a sentence for the
/// merchant.
pub async fn check_url(url: &str, allow_private: bool) -> Result<CheckedUrl, String> {
    let url = Url::parse(url).map_err(|e| format!("not a valid URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "scheme must be http or https, not {}",
            url.scheme()
        ));
    }
    let Some(host) = url.host() else {
        return Err("URL has no host".to_owned());
    };
    check_no_credentials(&url)?;
    // http and https always have a known default port.
    let port = url.port_or_known_default().unwrap_or(80);
    let addrs: Vec<SocketAddr> = match host {
        Host::Ipv4(ip) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
        Host::Ipv6(ip) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
        Host::Domain(name) => match tokio::net::lookup_host((name, port)).await {
            Ok(addrs) => addrs.collect(),
            Err(_) => Vec::new(),
        },
    };
    if addrs.is_empty() {
        return Err("host does not resolve".to_owned());
    }
    if !allow_private {
        if let Some(bad) = addrs.iter().find(|a| !is_public(a.ip())) {
            let verb = if literal_ip(&url).is_some() {
                "is"
            } else {
                "resolves to"
            };
            return Err(format!("{host} {verb} a non-public address ({})", bad.ip()));
        }
    }
    Ok(CheckedUrl { url, addrs })
}

/// Refuses a URL carrying a user name or password: reqwest would send them
/// as Basic auth, and they would sit in clear with the decision. A callback is
/// authenticated by its signature.
pub fn check_no_credentials(url: &Url) -> Result<(), String> {
    if url.username().is_empty() && url.password().is_none() {
        Ok(())
    } else {
        Err("must not carry credentials (user:password@)".to_owned())
    }
}

/// Refuses a URL whose host is a non-public IP literal (unless
/// `allow_private`). Call it before every delivery: reqwest connects to
/// IP-literal hosts without asking [`GuardedResolver`]. Names pass; the
/// resolver judges them at connect time. The url crate has already
/// normalised the spellings of IPv4 (`2130706433`, `0x7f.1`, `0177.0.0.1`
/// all parse to 127.0.0.1) and IPv6 (`[::ffff:127.0.0.1]`).
pub fn check_literal(url: &Url, allow_private: bool) -> Result<(), String> {
    check_no_credentials(url)?;
    match literal_ip(url) {
        Some(ip) if !allow_private && !is_public(ip) => {
            Err(format!("{ip} is a non-public address"))
        }
        _ => Ok(()),
    }
}

/// The error [`GuardedResolver`] fails with when a name resolves only to
/// non-public addresses. It sits in the source chain of the `reqwest::Error`;
/// [`refused_by_guard`] finds it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{host} resolves only to non-public addresses ({addrs})")]
pub struct NonPublicAddress {
    pub host: String,
    pub addrs: String,
}

/// True when `err` (typically a `reqwest::Error`) was caused by
/// [`GuardedResolver`] refusing the host's addresses, as opposed to an
/// ordinary network failure.
pub fn refused_by_guard(err: &(dyn StdError + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(e) = current {
        if e.is::<NonPublicAddress>() {
            return true;
        }
        current = e.source();
    }
    false
}

/// A reqwest resolver that resolves with the system resolver and drops every
/// non-public address (unless `allow_private`), failing when none is left. It
/// judges the addresses actually connected to, so a name re-pointed at a
/// private address after [`check_url`] (DNS rebinding) is not reached.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    allow_private: bool,
}

impl GuardedResolver {
    pub fn new(allow_private: bool) -> Self {
        Self { allow_private }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // Port 0: reqwest puts in the URL's port.
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let (kept, refused): (Vec<SocketAddr>, Vec<SocketAddr>) = resolved
                .into_iter()
                .partition(|a| allow_private || is_public(a.ip()));
            if kept.is_empty() {
                let addrs = refused
                    .iter()
                    .map(|a| a.ip().to_string())
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(
                    Box::new(NonPublicAddress { host, addrs }) as Box<dyn StdError + Send + Sync>
                );
            }
            Ok(Box::new(kept.into_iter()) as Addrs)
        })
    }
}

/// The HTTP client for callback deliveries: [`GuardedResolver`], no
/// redirects, no proxy, `timeout` for the whole request (connecting within
/// at most 10 s of it), user agent `riskgate/<version>`.
pub fn client(allow_private: bool, timeout: Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver::new(allow_private)))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(timeout.min(CONNECT_TIMEOUT))
        .user_agent(USER_AGENT)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn ip(s: &str) -> IpAddr {
        IpAddr::from_str(s).unwrap()
    }

    #[test]
    fn address_table() {
        let non_public = [
            // IPv4
            "0.0.0.0",
            "0.1.2.3",
            "127.0.0.1",
            "127.255.255.254",
            "10.0.0.1",
            "10.255.255.255",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.0.1",
            "192.168.255.255",
            "169.254.0.1",
            "169.254.169.254", // AWS/GCP/Azure metadata
            "100.64.0.1",
            "100.100.100.200", // Alibaba metadata
            "100.127.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.200",
            "198.18.0.1",
            "198.19.255.255",
            "192.88.99.1",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            // IPv6
            "::",
            "::1",
            "fe80::1",
            "febf:ffff::1",
            "fec0::1",
            "fc00::1",
            "fd12:3456::1",
            "fd00:ec2::254", // AWS metadata over IPv6
            "ff02::1",
            "ff0e::1",
            "2001:db8::1",
            "2001:db8:ffff::1",
            "3fff::1",
            "2001::1",      // Teredo
            "2001:2::1",    // benchmarking
            "100::1",       // discard-only
            "64:ff9b:1::1", // local-use NAT64
            "5f00::1",      // SRv6 SIDs, outside 2000::/3
            // IPv4 embedded in IPv6
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "::10.0.0.1",
            "64:ff9b::127.0.0.1",
            "64:ff9b::a9fe:a9fe", // 169.254.169.254
            "2002:7f00:1::",      // 6to4 of 127.0.0.1
            "2002:c0a8:101::1",   // 6to4 of 192.168.1.1
            "2002:a9fe:a9fe::1",  // 6to4 of 169.254.169.254
        ];
        for s in non_public {
            assert!(!is_public(ip(s)), "{s} should not be public");
        }

        let public = [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "126.255.255.255",
            "128.0.0.0",
            "169.253.255.255",
            "169.255.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.1",
            "192.0.3.1",
            "192.167.255.255",
            "192.169.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "198.51.101.1",
            "203.0.114.1",
            "223.255.255.255",
            "2606:4700:4700::1111",
            "2001:4860:4860::8888",
            "2a00:1450:4001::1",
            "2001:200::1",
            "3ffe:ffff::1",
            "::ffff:8.8.8.8",
            "::8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ];
        for s in public {
            assert!(is_public(ip(s)), "{s} should be public");
        }
    }

    #[test]
    fn metadata_endpoints_are_not_public() {
        for s in ["169.254.169.254", "fd00:ec2::254", "100.100.100.200"] {
            assert!(!is_public(ip(s)), "{s}");
        }
    }

    #[tokio::test]
    async fn check_url_refuses_loopback_literals() {
        let err = check_url("http://127.0.0.1:9/x", false).await.unwrap_err();
        assert!(err.contains("non-public address (127.0.0.1)"), "{err}");
        let err = check_url("http://[::1]:8080/", false).await.unwrap_err();
        assert!(err.contains("non-public address (::1)"), "{err}");
        let err = check_url("https://[::ffff:127.0.0.1]/", false)
            .await
            .unwrap_err();
        assert!(err.contains("non-public"), "{err}");
        let err = check_url("http://169.254.169.254/latest/meta-data/", false)
            .await
            .unwrap_err();
        assert!(err.contains("169.254.169.254"), "{err}");

        let ok = check_url("http://127.0.0.1:9/x", true).await.unwrap();
        assert_eq!(ok.addrs, vec![SocketAddr::from(([127, 0, 0, 1], 9))]);
        assert_eq!(ok.url.as_str(), "http://127.0.0.1:9/x");
    }

    #[tokio::test]
    async fn check_url_resolves_names() {
        // /etc/hosts maps localhost to loopback; no DNS server is needed.
        let err = check_url("http://localhost/", false).await.unwrap_err();
        assert!(
            err.contains("localhost resolves to a non-public address"),
            "{err}"
        );
        let ok = check_url("http://localhost/", true).await.unwrap();
        assert!(!ok.addrs.is_empty());
        assert!(ok
            .addrs
            .iter()
            .all(|a| a.ip().is_loopback() && a.port() == 80));
        let ok = check_url("https://localhost/hook", true).await.unwrap();
        assert!(ok.addrs.iter().all(|a| a.port() == 443));
    }

    #[tokio::test]
    async fn check_url_accepts_public_literals_without_dns() {
        let ok = check_url("https://8.8.8.8/hook", false).await.unwrap();
        assert_eq!(ok.addrs, vec![SocketAddr::from(([8, 8, 8, 8], 443))]);
        let ok = check_url("http://[2606:4700:4700::1111]:8443/", false)
            .await
            .unwrap();
        assert_eq!(ok.addrs[0].port(), 8443);
    }

    #[tokio::test]
    async fn check_url_refuses_bad_schemes_and_shapes() {
        for (url, want) in [
            ("ftp://x", "scheme"),
            ("file:///etc/passwd", "scheme"),
            ("gopher://127.0.0.1/", "scheme"),
            ("javascript:alert(1)", "scheme"),
            ("not a url", "not a valid URL"),
            ("http://", "not a valid URL"),
            ("", "not a valid URL"),
        ] {
            let err = check_url(url, true).await.unwrap_err();
            assert!(err.contains(want), "{url}: {err}");
        }
    }

    #[tokio::test]
    async fn check_url_reports_names_that_do_not_resolve() {
        // .invalid never resolves (RFC 6761). Bounded in case a resolver hangs.
        let result = tokio::time::timeout(
            Duration::from_secs(30),
            check_url("http://riskgate-test.invalid/", true),
        )
        .await
        .unwrap();
        assert_eq!(result.unwrap_err(), "host does not resolve");
    }

    #[test]
    fn url_crate_normalises_ipv4_tricks_and_literals_are_refused() {
        for s in [
            "http://2130706433/",
            "http://0x7f.1/",
            "http://0177.0.0.1/",
            "http://127.1/",
            "http://0x7f000001/",
        ] {
            let url = Url::parse(s).unwrap();
            assert_eq!(url.host(), Some(Host::Ipv4(Ipv4Addr::LOCALHOST)), "{s}");
            let err = check_literal(&url, false).unwrap_err();
            assert!(err.contains("127.0.0.1"), "{s}: {err}");
            assert!(check_literal(&url, true).is_ok());
        }
        for s in [
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[fd00:ec2::254]/",
            "http://169.254.169.254/",
            "http://0/",
        ] {
            let url = Url::parse(s).unwrap();
            assert!(check_literal(&url, false).is_err(), "{s}");
        }
        for s in [
            "http://8.8.8.8/",
            "http://[2001:4860:4860::8888]/",
            "http://localhost/",
        ] {
            // Public literals pass; names are left to the resolver.
            let url = Url::parse(s).unwrap();
            assert!(check_literal(&url, false).is_ok(), "{s}");
        }
    }

    #[tokio::test]
    async fn resolver_filters_non_public_addresses() {
        let name = || Name::from_str("localhost").unwrap();
        let err = match GuardedResolver::new(false).resolve(name()).await {
            Ok(addrs) => panic!("resolved to {:?}", addrs.collect::<Vec<_>>()),
            Err(err) => err,
        };
        assert!(refused_by_guard(err.as_ref()), "{err}");
        assert!(err.to_string().contains("127.0.0.1"), "{err}");

        let addrs: Vec<SocketAddr> = GuardedResolver::new(true)
            .resolve(name())
            .await
            .unwrap()
            .collect();
        assert!(
            addrs.contains(&SocketAddr::from(([127, 0, 0, 1], 0))),
            "{addrs:?}"
        );
    }

    /// A one-response HTTP server on 127.0.0.1 that counts connections and
    /// records request lines.
    struct TestServer {
        port: u16,
        connections: Arc<AtomicUsize>,
        requests: Arc<Mutex<Vec<String>>>,
    }

    async fn test_server(response: String) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (conns, reqs) = (connections.clone(), requests.clone());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                conns.fetch_add(1, Ordering::SeqCst);
                let (reqs, response) = (reqs.clone(), response.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let text = String::from_utf8_lossy(&buf);
                    let line = text.lines().next().unwrap_or_default().to_owned();
                    reqs.lock().unwrap().push(line);
                    let _ = stream.write_all(response.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        TestServer {
            port,
            connections,
            requests,
        }
    }

    const OK: &str = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";

    #[tokio::test]
    async fn client_refuses_names_resolving_to_loopback() {
        let server = test_server(OK.to_owned()).await;
        let url = format!("http://localhost:{}/hook", server.port);

        let guarded = client(false, Duration::from_secs(5)).unwrap();
        let err = guarded.post(&url).body("{}").send().await.unwrap_err();
        assert!(err.is_connect(), "{err:?}");
        assert!(refused_by_guard(&err), "{err:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(server.connections.load(Ordering::SeqCst), 0);

        let open = client(true, Duration::from_secs(5)).unwrap();
        let response = open.post(&url).body("{}").send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), "ok");
        assert_eq!(server.connections.load(Ordering::SeqCst), 1);
        assert_eq!(
            server.requests.lock().unwrap().as_slice(),
            ["POST /hook HTTP/1.1"]
        );
    }

    #[tokio::test]
    async fn client_does_not_follow_redirects() {
        let redirect = "HTTP/1.1 302 Found\r\nlocation: /elsewhere\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
        let server = test_server(redirect.to_owned()).await;
        let http = client(true, Duration::from_secs(5)).unwrap();
        let response = http
            .post(format!("http://localhost:{}/start", server.port))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 302);
        assert_eq!(response.headers()["location"], "/elsewhere");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            server.requests.lock().unwrap().as_slice(),
            ["POST /start HTTP/1.1"]
        );
    }

    #[tokio::test]
    async fn client_sends_our_user_agent() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 1024];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = stream.read(&mut chunk).await.unwrap();
                assert!(n > 0);
                buf.extend_from_slice(&chunk[..n]);
            }
            stream.write_all(OK.as_bytes()).await.unwrap();
            String::from_utf8(buf).unwrap().to_ascii_lowercase()
        });
        let http = client(true, Duration::from_secs(5)).unwrap();
        let response = http
            .get(format!("http://127.0.0.1:{port}/"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let request = server.await.unwrap();
        let want = format!("user-agent: riskgate/{}\r\n", env!("CARGO_PKG_VERSION"));
        assert!(request.contains(&want), "{request}");
    }
    #[tokio::test]
    async fn urls_with_credentials_are_never_used() {
        for s in [
            "https://user:pass@example.com/hook",
            "https://user@example.com/hook",
            "https://:pass@example.com/hook",
            "http://user:pass@127.0.0.1:8080/hook",
        ] {
            let url = Url::parse(s).unwrap();
            let err = check_literal(&url, true).unwrap_err();
            assert!(err.contains("credentials"), "{s}: {err}");
            let err = check_url(s, true).await.unwrap_err();
            assert!(err.contains("credentials"), "{s}: {err}");
        }
        assert!(check_literal(&Url::parse("https://example.com/hook").unwrap(), true).is_ok());
    }
}
