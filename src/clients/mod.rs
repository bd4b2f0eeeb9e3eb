//! What semdock calls out to, persisting nothing: the company directory (LDAP, Active
//! Directory), the `OpenID Connect` provider, other registries (connector feeds' upstreams),
//! and the outbound policy that bounds where connectors and webhooks may connect.
//!
//! It must not: know feeds, roles or any other policy of the domain, nor HTTP's server side.

pub mod ldap;
pub mod oidc;
pub mod outbound;
pub mod registry;
