//! Where a webhook subscription may point. A stranger chooses the URL, so
//! the rules keep Lookout from being turned against its own network (SSRF):
//! `https` only (plain `http` only to hosts an operator lists), no
//! credentials in the URL, and never an address that is not public —
//! loopback, private (RFC 1918), link-local, CGNAT (RFC 6598), unique-local
//! (RFC 4193), multicast, unspecified, documentation, benchmarking or
//! reserved, nor one of those wrapped in IPv6 (IPv4-mapped, -compatible,
//! 6to4, NAT64). The URL is checked when someone subscribes and again at
//! every delivery; host names are resolved by [`Guarded`], the delivery
//! client's resolver, which checks every address and hands the connection
//! exactly the addresses it checked, so a name that re-resolves to a
//! private address (DNS rebinding) cannot slip through. Addresses follow
//! the IANA special-purpose registries (RFC 6890).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// What a subscription's URL may be, beyond the fixed rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Hosts plain `http://` may be used for (probes.yaml
    /// `page.webhooks.allow_http`); their addresses must still be public.
    pub allow_http: Vec<String>,
    /// Loopback addresses (127.0.0.0/8, ::1) are allowed, and plain `http`
    /// to them: for tests only (`app::Tuning::webhook_loopback`), never
    /// from probes.yaml.
    pub allow_loopback: bool,
}

/// Why a webhook URL or address is refused; shown to the subscriber.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("this is not a URL")]
    NotUrl,
    #[error("the URL is longer than {MAX_URL} characters")]
    TooLong,
    #[error("the URL must start with https://")]
    NotHttps,
    #[error("a user name or password in the URL is not accepted")]
    Credentials,
    #[error("{host} is a {kind} address, not a public one")]
    Address { host: String, kind: &'static str },
    #[error("{host} does not resolve to an address")]
    Unresolved { host: String },
}

/// The longest URL accepted.
pub const MAX_URL: usize = 2000;

/// Checks a URL's form and, when its host is an IP address, that address.
/// Host names are checked when resolved ([`check_host`], [`Guarded`]).
pub fn check_url(raw: &str, policy: &Policy) -> Result<url::Url, Refused> {
    let raw = raw.trim();
    if raw.len() > MAX_URL {
        return Err(Refused::TooLong);
    }
    let url = url::Url::parse(raw).map_err(|_| Refused::NotUrl)?;
    match url.scheme() {
        "https" | "http" => {}
        "ws" | "wss" | "ftp" | "file" => return Err(Refused::NotHttps),
        _ => return Err(Refused::NotUrl),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Refused::Credentials);
    }
    let host = match url.host() {
        Some(h) => h.to_owned(),
        None => return Err(Refused::NotUrl),
    };
    let literal = match &host {
        url::Host::Ipv4(a) => Some(IpAddr::V4(*a)),
        url::Host::Ipv6(a) => Some(IpAddr::V6(*a)),
        url::Host::Domain(_) => None,
    };
    let name = host.to_string();
    if let Some(ip) = literal {
        check_ip(&name, ip, policy)?;
    }
    let http_allowed = policy
        .allow_http
        .iter()
        .any(|h| h.eq_ignore_ascii_case(&name))
        || (policy.allow_loopback && literal.is_some_and(|ip| ip.is_loopback()));
    if url.scheme() == "http" && !http_allowed {
        return Err(Refused::NotHttps);
    }
    Ok(url)
}

/// One address, under the policy.
pub fn check_ip(host: &str, ip: IpAddr, policy: &Policy) -> Result<(), Refused> {
    match forbidden(ip) {
        Some("loopback") if policy.allow_loopback => Ok(()),
        Some(kind) => Err(Refused::Address {
            host: host.to_string(),
            kind,
        }),
        None => Ok(()),
    }
}

/// Resolves `host` and checks every address it has: one that is not
/// public refuses the host, whatever the others are.
pub async fn check_host(host: &str, policy: &Policy) -> Result<Vec<SocketAddr>, Refused> {
    let addrs: Vec<SocketAddr> = match tokio::net::lookup_host((host, 0)).await {
        Ok(a) => a.collect(),
        Err(_) => Vec::new(),
    };
    if addrs.is_empty() {
        return Err(Refused::Unresolved {
            host: host.to_string(),
        });
    }
    for a in &addrs {
        check_ip(host, a.ip(), policy)?;
    }
    Ok(addrs)
}

/// Checks a whole URL: its form, then its host's addresses.
pub async fn check(raw: &str, policy: &Policy) -> Result<url::Url, Refused> {
    let url = check_url(raw, policy)?;
    if let Some(url::Host::Domain(d)) = url.host() {
        check_host(d, policy).await?;
    }
    Ok(url)
}

/// Why an address is not public, or `None` when it is: the IANA IPv4 and
/// IPv6 special-purpose address registries (RFC 6890 and updates). IPv6
/// that carries an IPv4 address (mapped, compatible, 6to4, NAT64) is judged
/// by that IPv4 address; any other IPv6 outside global unicast (2000::/3)
/// is refused.
pub fn forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(a) => forbidden_v4(a),
        IpAddr::V6(a) => forbidden_v6(a),
    }
}

fn forbidden_v4(a: Ipv4Addr) -> Option<&'static str> {
    let [o1, o2, o3, _] = a.octets();
    Some(match (o1, o2, o3) {
        (0, _, _) => "unspecified",
        (127, _, _) => "loopback",
        (10, _, _) | (192, 168, _) => "private",
        (172, 16..=31, _) => "private",
        (100, 64..=127, _) => "CGNAT",
        (169, 254, _) => "link-local",
        (192, 0, 0) => "reserved",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (198, 18..=19, _) => "benchmarking",
        (192, 88, 99) => "reserved",
        (224..=239, _, _) => "multicast",
        (240..=255, _, _) => "reserved",
        _ => return None,
    })
}

fn forbidden_v6(a: Ipv6Addr) -> Option<&'static str> {
    let s = a.segments();
    if a.is_unspecified() {
        return Some("unspecified");
    }
    if a.is_loopback() {
        return Some("loopback");
    }
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible, deprecated).
    if s[..5] == [0; 5] && s[5] == 0xffff {
        return forbidden_v4(embedded(s[6], s[7]));
    }
    if s[..6] == [0; 6] {
        return forbidden_v4(embedded(s[6], s[7])).or(Some("IPv4-compatible"));
    }
    // 64:ff9b::/96, NAT64 of a public IPv4 address (RFC 6052).
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return forbidden_v4(embedded(s[6], s[7]));
    }
    // 2002::/16, 6to4 (RFC 3056): the IPv4 address is in bits 16–48.
    if s[0] == 0x2002 {
        return forbidden_v4(embedded(s[1], s[2]));
    }
    Some(match s[0] {
        0xfc00..=0xfdff => "unique-local",
        0xfe80..=0xfebf => "link-local",
        0xfec0..=0xfeff => "site-local",
        0xff00..=0xffff => "multicast",
        // Teredo tunnels hide the real address; documentation; ORCHID.
        0x2001 if s[1] == 0 => "tunnel",
        0x2001 if s[1] == 0x0db8 => "documentation",
        0x2001 if (0x0010..=0x002f).contains(&s[1]) => "reserved",
        0x3fff if s[1] <= 0x0fff => "documentation",
        0x2000..=0x3fff => return None,
        _ => "reserved",
    })
}

/// The delivery client's resolver: resolves a name, refuses it if any of
/// its addresses is not public, and returns exactly the checked addresses,
/// so the connection goes where the check looked.
#[derive(Debug, Clone, Copy)]
pub struct Guarded {
    pub allow_loopback: bool,
}

impl reqwest::dns::Resolve for Guarded {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = Policy {
            allow_http: Vec::new(),
            allow_loopback: self.allow_loopback,
        };
        let host = name.as_str().to_string();
        Box::pin(async move {
            type BoxError = Box<dyn std::error::Error + Send + Sync>;
            let addrs = check_host(&host, &policy)
                .await
                .map_err(|e| Box::new(e) as BoxError)?;
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok::<_, BoxError>(addrs)
        })
    }
}

/// The one client subscriber webhooks are delivered with: the guarded
/// resolver, no proxy (a proxy would connect where we did not check), no
/// redirects (3xx is a failure, as for Statuspage), 30 s to answer.
///
/// # Errors
/// [`ClientError`](crate::http_client::ClientError) when it cannot be built.
pub fn client(allow_loopback: bool) -> Result<reqwest::Client, crate::http_client::ClientError> {
    crate::http_client::build("webhook subscriptions", |b| {
        b.dns_resolver(std::sync::Arc::new(Guarded { allow_loopback }))
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(std::time::Duration::from_secs(10))
            .timeout(std::time::Duration::from_secs(30))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn strict() -> Policy {
        Policy::default()
    }

    #[test]
    fn every_kind_of_non_public_address_is_refused() {
        for (ip, kind) in [
            ("127.0.0.1", "loopback"),
            ("127.255.1.2", "loopback"),
            ("0.0.0.0", "unspecified"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("100.64.0.1", "CGNAT"),
            ("100.127.255.254", "CGNAT"),
            ("169.254.169.254", "link-local"),
            ("224.0.0.1", "multicast"),
            ("255.255.255.255", "reserved"),
            ("198.18.0.1", "benchmarking"),
            ("192.0.2.1", "documentation"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("fc00::1", "unique-local"),
            ("fd12:3456::1", "unique-local"),
            ("fe80::1", "link-local"),
            ("ff02::1", "multicast"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:10.0.0.1", "private"),
            ("::ffff:169.254.169.254", "link-local"),
            ("::127.0.0.1", "loopback"),
            ("64:ff9b::a00:1", "private"),
            ("2002:7f00:1::", "loopback"),
            ("2002:a9fe:a9fe::1", "link-local"),
            ("2001::1", "tunnel"),
            ("2001:db8::1", "documentation"),
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(forbidden(ip), Some(kind), "{ip}");
        }
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:1.1.1.1",
            "64:ff9b::101:101",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(forbidden(ip), None, "{ip}");
        }
    }

    proptest! {
        /// Wrapping an IPv4 address in IPv6 never changes the verdict.
        #[test]
        fn ipv6_forms_of_an_ipv4_address_get_its_verdict(v in any::<u32>()) {
            let v4 = Ipv4Addr::from(v);
            let bad = forbidden(IpAddr::V4(v4)).is_some();
            let [a, b, c, d] = v4.octets();
            let hi = u16::from_be_bytes([a, b]);
            let lo = u16::from_be_bytes([c, d]);
            let mapped = Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, hi, lo);
            let nat64 = Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, hi, lo);
            let six_to_four = Ipv6Addr::new(0x2002, hi, lo, 0, 0, 0, 0, 1);
            for v6 in [mapped, nat64, six_to_four] {
                prop_assert_eq!(forbidden(IpAddr::V6(v6)).is_some(), bad, "{}", v6);
            }
            // The deprecated compatible form is refused whatever it holds.
            let compatible = Ipv6Addr::new(0, 0, 0, 0, 0, 0, hi, lo);
            prop_assert!(forbidden(IpAddr::V6(compatible)).is_some());
        }
    }

    #[test]
    fn urls_must_be_https_public_and_without_credentials() {
        let p = strict();
        assert!(check_url("https://hooks.example.com/x", &p).is_ok());
        assert_eq!(
            check_url("http://hooks.example.com/x", &p),
            Err(Refused::NotHttps)
        );
        assert_eq!(check_url("not a url", &p), Err(Refused::NotUrl));
        assert_eq!(check_url("file:///etc/passwd", &p), Err(Refused::NotHttps));
        assert_eq!(check_url("gopher://x.example/", &p), Err(Refused::NotUrl));
        assert_eq!(
            check_url("https://u:p@hooks.example.com/", &p),
            Err(Refused::Credentials)
        );
        // Every spelling of loopback the URL standard turns into 127.0.0.1.
        for raw in [
            "https://127.0.0.1/",
            "https://127.1/",
            "https://0x7f.1/",
            "https://2130706433/",
            "https://0177.0.0.1/",
            "https://[::ffff:7f00:1]/",
            "https://[::1]:8443/",
            "https://0.0.0.0/",
            "https://169.254.169.254/latest/meta-data/",
            "https://[fd00::1]/",
        ] {
            assert!(
                matches!(check_url(raw, &p), Err(Refused::Address { .. })),
                "{raw}: {:?}",
                check_url(raw, &p)
            );
        }
        assert!(check_url(&format!("https://a.example/{}", "x".repeat(MAX_URL)), &p).is_err());
    }

    #[test]
    fn http_only_to_hosts_the_operator_lists_and_loopback_only_in_tests() {
        let operator = Policy {
            allow_http: vec!["hooks.partner.example".into()],
            allow_loopback: false,
        };
        assert!(check_url("http://hooks.partner.example/x", &operator).is_ok());
        assert!(check_url("http://other.example/x", &operator).is_err());
        // Listing a private address as a host does not make it public.
        let listed = Policy {
            allow_http: vec!["10.0.0.1".into()],
            allow_loopback: false,
        };
        assert!(check_url("http://10.0.0.1/", &listed).is_err());
        let tests = Policy {
            allow_http: vec![],
            allow_loopback: true,
        };
        assert!(check_url("http://127.0.0.1:9/", &tests).is_ok());
        assert!(check_url("http://10.0.0.1/", &tests).is_err());
    }

    #[tokio::test]
    async fn names_that_resolve_to_loopback_are_refused() {
        let r = check("https://localhost/", &strict()).await;
        assert!(
            matches!(
                r,
                Err(Refused::Address {
                    kind: "loopback",
                    ..
                })
            ),
            "{r:?}"
        );
        let r = check("https://does-not-exist.invalid/", &strict()).await;
        assert!(matches!(r, Err(Refused::Unresolved { .. })), "{r:?}");
    }
}
