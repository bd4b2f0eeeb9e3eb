//! Where semdock may connect on behalf of a feed administrator: the upstreams of connector
//! feeds and the receivers of webhooks. A feed administrator chooses those URLs, so they
//! must not become a way into what the node can reach and she cannot: the node itself, its
//! loopback and link-local networks (cloud metadata at `169.254.169.254`), and the private
//! ranges of the site.
//!
//! The check runs on the *resolved* address of every connection — each redirect hop
//! included — inside the HTTP client's resolver, so the address checked is the address
//! connected to (a name that resolves to a public address when checked and a private one
//! when used, DNS rebinding, cannot slip through). HTTP proxies from the environment are
//! not used by these clients: a proxy would connect on their behalf, past the check.
//!
//! Denied unless the configuration's `outbound.allow` names them: every address that is not
//! globally routable (loopback, unspecified, link-local, private and shared ranges,
//! documentation, benchmarking, multicast and reserved ranges, IPv4-mapped and NAT64 forms
//! of those) and every address of this host. Always denied: the registry's own listening
//! socket, so that no request loops back into semdock. The server's own directory and
//! identity provider (LDAP, OIDC) are configured by the server's administrator in the
//! configuration file and are not subject to this policy.
//!
//! It must not: resolve names itself outside the client's resolver (the answer could
//! differ from the one connected to).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use ureq::config::{Config as AgentConfig, ConfigBuilder};
use ureq::http::Uri;
use ureq::typestate::AgentScope;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

/// The destinations connectors and webhooks may reach.
#[derive(Debug, Clone, Default)]
pub struct Outbound {
    /// Ranges an administrator allows although they are not public (internal registries,
    /// an on-site webhook receiver).
    allow: Vec<IpNet>,
    /// The registry's own listening sockets: never a destination.
    own: Vec<SocketAddr>,
}

impl Outbound {
    /// A policy allowing `allow` (CIDR ranges, or single addresses) beside the public
    /// internet; `own` are the sockets this node listens on.
    pub fn new(allow: &[String], own: Vec<SocketAddr>) -> Result<Self, String> {
        let allow = allow
            .iter()
            .map(|a| {
                let a = a.trim();
                a.parse::<IpNet>()
                    .or_else(|_| a.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        format!(
                            "outbound.allow: {a:?} is not an address range: write a CIDR range such as \"10.20.0.0/16\" or one address such as \"10.20.1.5\""
                        )
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { allow, own })
    }

    /// Whether a connection to `addr` is allowed; `Err` says why not, as a sentence.
    pub fn check(&self, addr: SocketAddr) -> Result<(), String> {
        let ip = canonical(addr.ip());
        if self.is_own_socket(ip, addr.port()) {
            return Err(format!(
                "{addr} is this registry itself, which connectors and webhooks never call"
            ));
        }
        if self.allow.iter().any(|net| net.contains(&ip)) {
            return Ok(());
        }
        let what = if let Some(what) = non_public(ip) {
            what
        } else if is_local(ip) {
            "an address of this host"
        } else {
            return Ok(());
        };
        Err(format!(
            "{} is {what}, which connectors and webhooks may not reach: a server administrator can allow it with outbound.allow in the configuration",
            addr.ip()
        ))
    }

    fn is_own_socket(&self, ip: IpAddr, port: u16) -> bool {
        self.own.iter().any(|own| {
            own.port() == port
                && (canonical(own.ip()) == ip
                    || (own.ip().is_unspecified() && (ip.is_loopback() || is_local(ip))))
        })
    }

    /// An HTTP client configured by `config` whose every connection is checked by this
    /// policy, and which never goes through a proxy.
    #[must_use]
    pub fn agent(self: &Arc<Self>, config: ConfigBuilder<AgentScope>) -> ureq::Agent {
        let config = config.proxy(None).build();
        ureq::Agent::with_parts(
            config,
            DefaultConnector::new(),
            Guarded {
                policy: self.clone(),
                inner: DefaultResolver::default(),
            },
        )
    }
}

/// Whether `e` (from a client made by [`Outbound::agent`]) is this policy's refusal; its
/// sentence then.
#[must_use]
pub fn refusal(e: &ureq::Error) -> Option<String> {
    match e {
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::PermissionDenied => {
            Some(io.to_string())
        }
        _ => None,
    }
}

/// An IPv4 address in its IPv4 form when it hides in IPv6 (mapped `::ffff:a.b.c.d`).
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 @ IpAddr::V4(_) => v4,
    }
}

/// What kind of non-public address `ip` is; `None` for a globally routable one.
fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => non_public_v6(v6),
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(if ip.is_loopback() {
        "a loopback address"
    } else if a == 0 {
        "an unspecified address"
    } else if ip.is_link_local() {
        "a link-local address (cloud metadata services live there)"
    } else if ip.is_private() {
        "a private address"
    } else if a == 100 && (64..128).contains(&b) {
        "a shared (carrier-grade NAT) address"
    } else if ip.is_multicast() || ip.is_broadcast() || a >= 240 {
        "a multicast or reserved address"
    } else if ip.is_documentation() || (a == 198 && (18..20).contains(&b)) {
        "a documentation or benchmarking address"
    } else if a == 192 && b == 0 && c == 0 {
        "an IETF protocol address"
    } else {
        return None;
    })
}

fn non_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    // NAT64 (64:ff9b::/96) reaches the IPv4 address in its last 32 bits.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [.., hi, lo] = s;
        let v4 = Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
        return non_public_v4(v4);
    }
    Some(if ip.is_loopback() {
        "a loopback address"
    } else if ip.is_unspecified() {
        "an unspecified address"
    } else if ip.is_unicast_link_local() {
        "a link-local address"
    } else if ip.is_unique_local() {
        "a private (unique local) address"
    } else if ip.is_multicast() {
        "a multicast address"
    } else if s[0] == 0x2001 && s[1] == 0x0db8 {
        "a documentation address"
    } else if s[0] & 0xe000 != 0x2000 {
        // Outside 2000::/3, the only global unicast block assigned.
        "a reserved address"
    } else {
        return None;
    })
}

/// Whether `ip` is an address of this host: binding to it succeeds only then.
fn is_local(ip: IpAddr) -> bool {
    std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

/// A resolver that resolves as usual and then keeps only the addresses the policy allows.
#[derive(Debug)]
struct Guarded {
    policy: Arc<Outbound>,
    inner: DefaultResolver,
}

impl Resolver for Guarded {
    fn resolve(
        &self,
        uri: &Uri,
        config: &AgentConfig,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let resolved = self.inner.resolve(uri, config, timeout)?;
        let mut kept = self.inner.empty();
        let mut refused = None;
        for addr in &resolved {
            match self.policy.check(*addr) {
                Ok(()) => kept.push(*addr),
                Err(why) => refused = refused.or(Some(why)),
            }
        }
        match refused {
            Some(why) if kept.is_empty() => Err(ureq::Error::Io(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                why,
            ))),
            _ => Ok(kept),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sock(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn internal_destinations_are_refused_and_public_ones_allowed() {
        let p = Outbound::default();
        for denied in [
            "127.0.0.1:80",
            "127.3.4.5:5000",
            "0.0.0.0:80",
            "169.254.169.254:80",
            "10.1.2.3:443",
            "172.16.0.1:443",
            "172.31.255.255:443",
            "192.168.1.1:80",
            "100.64.0.1:80",
            "224.0.0.1:80",
            "255.255.255.255:80",
            "[::1]:80",
            "[::]:80",
            "[fe80::1]:80",
            "[fd00::1]:80",
            "[::ffff:127.0.0.1]:80",
            "[::ffff:169.254.169.254]:80",
            "[64:ff9b::a9fe:a9fe]:80",
        ] {
            assert!(p.check(sock(denied)).is_err(), "{denied} must be refused");
        }
        for allowed in [
            "1.1.1.1:443",
            "8.8.8.8:53",
            "172.32.0.1:443",
            "[2606:4700::1111]:443",
        ] {
            assert!(p.check(sock(allowed)).is_ok(), "{allowed} must be allowed");
        }
        let why = p.check(sock("169.254.169.254:80")).unwrap_err();
        assert!(
            why.contains("link-local") && why.contains("outbound.allow"),
            "{why}"
        );
    }

    #[test]
    fn the_allow_list_opens_ranges_but_never_the_registry_itself() {
        let p = Outbound::new(
            &["10.20.0.0/16".into(), "127.0.0.2".into()],
            vec![sock("0.0.0.0:5000")],
        )
        .unwrap();
        assert!(p.check(sock("10.20.3.4:443")).is_ok());
        assert!(p.check(sock("10.21.0.1:443")).is_err());
        assert!(p.check(sock("127.0.0.2:8080")).is_ok());
        assert!(p.check(sock("127.0.0.1:8080")).is_err());
        // Listening on every address: each of this host's addresses on that port is itself.
        let why = p.check(sock("127.0.0.2:5000")).unwrap_err();
        assert!(why.contains("this registry itself"), "{why}");
        assert!(Outbound::new(&["internal.example".into()], Vec::new()).is_err());
    }
}
