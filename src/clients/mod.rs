//! What semdock calls out to, persisting nothing: the company directory (LDAP, Active
//! Directory), the `OpenID Connect` provider, other registries (connector feeds' upstreams),
//! and the outbound policy that bounds where connectors and webhooks may connect.
//!
//! It must not: know feeds, roles or any other policy of the domain, nor HTTP's server side.
//! Every client fails with the one `ClientError`.

mod jwt;
pub mod ldap;
pub mod oidc;
pub mod outbound;
pub mod registry;
pub mod workload;

use std::fmt;

/// Whom semdock called: names the peer in every message of a `ClientError`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// Where directory accounts come from: the LDAP directory, or the `OpenID Connect`
    /// provider that signs them in.
    Directory,
    /// A connector feed's upstream registry.
    Upstream,
    /// A workload identity issuer (a CI system's or a cluster's OpenID Connect issuer).
    Issuer,
    /// A registry that replication pushes to.
    Replica,
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Directory => "the directory",
            Self::Upstream => "the upstream registry",
            Self::Issuer => "the workload identity issuer",
            Self::Replica => "the replication target",
        })
    }
}

/// What an outbound call can fail with. The domain acts on the difference between the two:
/// an unavailable peer may answer later (a cached copy may serve, local accounts still log
/// in); a refusal will not change by asking again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// Unreachable, timed out, TLS failed, rate-limited (429) or failing (5xx).
    #[error("{peer} is unavailable: {why}")]
    Unavailable { peer: Peer, why: String },
    /// It answered, but not as configured or asked: refused the credentials, refused by the
    /// outbound policy, or an answer this client cannot use.
    #[error("{peer} refused: {why}")]
    Refused { peer: Peer, why: String },
}

impl ClientError {
    pub fn unavailable(peer: Peer, why: impl fmt::Display) -> Self {
        Self::Unavailable {
            peer,
            why: why.to_string(),
        }
    }

    pub fn refused(peer: Peer, why: impl fmt::Display) -> Self {
        Self::Refused {
            peer,
            why: why.to_string(),
        }
    }
}
