//! The one HTTP client every provider call goes through.
//!
//! A provider's API lives on the public internet. Unless the operator says otherwise
//! (`outbound.allow_private_networks`, for tests and on-premise providers), the client refuses
//! loopback, private, link-local, unique-local and other non-public addresses: checked on the
//! URL when it names an address, and after DNS resolution when it names a host, so a name that
//! resolves to 127.0.0.1 is refused too. Redirects are not followed, so an allowed host cannot
//! hand the request on to a refused one.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::{Method, RequestBuilder, Url};

/// Why a request was not sent. The texts are fixed: nothing of the target's answer or of the
/// network's state reaches a tenant through them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the provider URL is not an http(s) URL")]
    NotHttp,
    #[error("the provider URL points at an address that is not public")]
    NotPublic,
}

/// Whether an address is reachable on the public internet. Everything else (this machine, the
/// operator's networks, link-local metadata services, documentation and reserved ranges) is
/// refused unless the operator allows private networks.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        // Shared address space (carrier-grade NAT), 100.64.0.0/10.
        || (a == 100 && (64..128).contains(&b))
        // Benchmarking, 198.18.0.0/15.
        || (a == 198 && (b == 18 || b == 19))
        // Reserved, 240.0.0.0/4.
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || ip.is_unique_local()
        || ip.is_unicast_link_local()
        // Documentation, 2001:db8::/32.
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)
        // IPv4-compatible and NAT64 forms carry an IPv4 address that was not checked.
        || first == 0
        || (first == 0x64 && ip.segments()[1] == 0xff9b))
}

/// Resolves names as the system does, then drops the addresses that are not public.
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| is_public(a.ip()))
                .collect();
            if found.is_empty() {
                return Err(
                    Box::new(Refused::NotPublic) as Box<dyn std::error::Error + Send + Sync>
                );
            }
            Ok(Box::new(found.into_iter()) as Addrs)
        })
    }
}

/// The guarded client. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Outbound {
    client: reqwest::Client,
    allow_private_networks: bool,
}

impl Outbound {
    /// `timeout` bounds each whole request.
    pub fn new(timeout: Duration, allow_private_networks: bool) -> Result<Self, reqwest::Error> {
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none());
        if !allow_private_networks {
            builder = builder.dns_resolver(Arc::new(PublicOnly));
        }
        Ok(Outbound {
            client: builder.build()?,
            allow_private_networks,
        })
    }

    pub fn allows_private_networks(&self) -> bool {
        self.allow_private_networks
    }

    /// Checks a URL the way a request to it would be checked, without sending anything. Names
    /// are checked again, after resolution, when a request is sent.
    pub fn check(&self, url: &str) -> Result<Url, Refused> {
        let url = Url::parse(url).map_err(|_| Refused::NotHttp)?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Refused::NotHttp);
        }
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            Some(url::Host::Domain(_)) => None,
            None => return Err(Refused::NotHttp),
        };
        if let Some(ip) = literal {
            if !self.allow_private_networks && !is_public(ip) {
                return Err(Refused::NotPublic);
            }
        }
        Ok(url)
    }

    /// A request to `url`, or why it may not be sent.
    pub fn request(&self, method: Method, url: &str) -> Result<RequestBuilder, Refused> {
        let url = self.check(url)?;
        Ok(self.client.request(method, url))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_pass() {
        for private in [
            "127.0.0.1",
            "127.8.9.10",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "2001:db8::1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["8.8.8.8", "52.1.2.3", "172.32.0.1", "2606:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn urls_naming_private_addresses_are_refused_unless_allowed() {
        let guarded = Outbound::new(Duration::from_secs(1), false).unwrap();
        for url in [
            "http://127.0.0.1:8080/internal/path?x=1#",
            "http://[::1]/",
            "http://169.254.169.254/latest/meta-data/",
            "https://[::ffff:7f00:1]/",
            "http://2130706433/",
        ] {
            assert_eq!(guarded.check(url).unwrap_err(), Refused::NotPublic, "{url}");
        }
        assert_eq!(
            guarded.check("file:///etc/passwd").unwrap_err(),
            Refused::NotHttp
        );
        assert_eq!(guarded.check("gopher://x/").unwrap_err(), Refused::NotHttp);
        assert!(guarded.check("https://api.twilio.com/2010-04-01").is_ok());
        let open = Outbound::new(Duration::from_secs(1), true).unwrap();
        assert!(open.check("http://127.0.0.1:8080/").is_ok());
    }

    #[tokio::test]
    async fn names_that_resolve_to_private_addresses_are_refused_after_resolution() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let guarded = Outbound::new(Duration::from_secs(2), false).unwrap();
        let err = guarded
            .request(Method::GET, &format!("http://localhost:{port}/"))
            .unwrap()
            .send()
            .await
            .unwrap_err();
        assert!(err.is_connect() && !err.is_timeout(), "{err:?}");
        let reached = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
        assert!(reached.is_err(), "no connection was opened");
    }
}
