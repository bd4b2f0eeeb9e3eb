//! What the OIDC sign-in and workload identity clients share about the JWTs they check: the
//! algorithms accepted (asymmetric only: a published key never turns into an HMAC secret)
//! and finding the signing key among an issuer's published keys.

use std::sync::Arc;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Header};

use super::{ClientError, Peer};

/// Algorithms a token may be signed with.
pub(super) const ALGORITHMS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// `token`'s header and the key that should verify it: the published key its `kid` names
/// (or the only one), looked up in `keys(false)` and, when absent there, in `keys(true)`
/// (fetched again).
pub(super) fn signing_key(
    token: &str,
    peer: Peer,
    what: &str,
    keys: impl Fn(bool) -> Result<Arc<JwkSet>, ClientError>,
) -> Result<(Header, DecodingKey), ClientError> {
    let refused = |why: String| ClientError::Refused { peer, why };
    let header = jsonwebtoken::decode_header(token)
        .map_err(|e| refused(format!("the {what} is malformed: {e}")))?;
    if !ALGORITHMS.contains(&header.alg) {
        return Err(refused(format!(
            "the {what} is signed with {:?}, which semdock does not accept",
            header.alg
        )));
    }
    let find = |keys: &JwkSet| match &header.kid {
        Some(kid) => keys.find(kid).cloned(),
        None => (keys.keys.len() == 1).then(|| keys.keys[0].clone()),
    };
    let jwk = match find(&*keys(false)?) {
        Some(k) => k,
        None => find(&*keys(true)?).ok_or_else(|| {
            refused(format!(
                "the {what} is signed by a key the issuer does not list"
            ))
        })?,
    };
    let key = DecodingKey::from_jwk(&jwk)
        .map_err(|e| refused(format!("the issuer's key is unusable: {e}")))?;
    Ok((header, key))
}
