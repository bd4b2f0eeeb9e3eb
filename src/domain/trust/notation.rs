//! Notation (Notary Project) signatures: an OCI referrer of artifact type
//! `application/vnd.cncf.notary.signature` whose layer is a signature envelope over the
//! payload `{"targetArtifact": descriptor}`, signed with the key of an X.509 code-signing
//! certificate that chains to a CA of a trust store (the Notary Project's `ca` trust store
//! type, signing scheme `notary.x509`). The JWS envelope (flattened JSON serialization) is
//! verified; a COSE envelope is listed with that reason.

use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;

use super::PublicKey;
use super::sigstore::crypto::{self, Hash};
use super::sigstore::x509::{self, Cert};
use super::sigstore::{Authority, Window};
use crate::model::Digest;

/// The artifact type of a Notation signature.
pub const SIGNATURE_ARTIFACT: &str = "application/vnd.cncf.notary.signature";
const JWS: &str = "application/jose+json";
const COSE: &str = "application/cose";
const PAYLOAD_TYPE: &str = "application/vnd.cncf.notary.payload.v1+json";
const SCHEME: &str = "io.cncf.notary.signingScheme";
const EXPIRY: &str = "io.cncf.notary.expiry";
/// A trust store by name, with its CA certificates (DER).
pub(super) type Store = (String, Vec<Vec<u8>>);

/// Envelopes larger than this are not read: one with a three-certificate chain is a few KiB.
pub const ENVELOPE_LIMIT: u64 = 256 * 1024;

/// The envelope layer of a Notation signature manifest: (media type, digest, size).
pub(super) fn envelope_layer(manifest: &[u8]) -> Result<(String, Digest, u64), String> {
    let v: Value = serde_json::from_slice(manifest)
        .map_err(|e| format!("the Notation signature manifest cannot be read: {e}"))?;
    let layer = v
        .get("layers")
        .and_then(Value::as_array)
        .and_then(|l| l.first())
        .ok_or("the Notation signature manifest has no envelope layer")?;
    let media_type = layer
        .get("mediaType")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let digest = layer
        .get("digest")
        .and_then(Value::as_str)
        .and_then(|d| d.parse::<Digest>().ok())
        .ok_or("the envelope layer's digest is invalid")?;
    let size = layer
        .get("size")
        .and_then(Value::as_u64)
        .ok_or("the envelope layer has no size")?;
    match media_type.as_str() {
        JWS => Ok((media_type, digest, size)),
        COSE => Err("a COSE signature envelope: this release verifies Notation's JWS envelopes (notation sign --signature-format jws)".into()),
        other => Err(format!("the envelope's media type {other:?} is not a Notation envelope")),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    payload: String,
    protected: String,
    header: Unprotected,
    signature: String,
}

#[derive(Deserialize)]
struct Unprotected {
    #[serde(default)]
    x5c: Vec<String>,
}

fn b64url(s: &str, what: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .map_err(|_| format!("the envelope's {what} is not base64url"))
}

fn rfc3339(v: &Value, what: &str) -> Result<i64, String> {
    v.as_str()
        .and_then(|s| s.parse::<jiff::Timestamp>().ok())
        .map(jiff::Timestamp::as_second)
        .ok_or_else(|| format!("the envelope's {what} is not an RFC 3339 time"))
}

/// Checks the protected header: what is signed and how; answers `alg`.
fn check_header(header: &Value, now: i64) -> Result<String, String> {
    if header.get("cty").and_then(Value::as_str) != Some(PAYLOAD_TYPE) {
        return Err(format!("the envelope's content type is not {PAYLOAD_TYPE}"));
    }
    let crit: Vec<&str> = header
        .get("crit")
        .and_then(Value::as_array)
        .map(|c| c.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !crit.contains(&SCHEME) {
        return Err(format!("the envelope does not mark {SCHEME} critical"));
    }
    if let Some(unknown) = crit.iter().find(|c| ![SCHEME, EXPIRY].contains(c)) {
        return Err(format!(
            "the envelope marks {unknown} critical, which this verifier does not process"
        ));
    }
    match header.get(SCHEME).and_then(Value::as_str) {
        Some("notary.x509") => {}
        Some(other) => {
            return Err(format!(
                "signing scheme {other} is not verified here (notary.x509 is)"
            ));
        }
        None => return Err("the envelope names no signing scheme".into()),
    }
    if let Some(expiry) = header.get(EXPIRY) {
        let at = rfc3339(expiry, "expiry")?;
        if at < now {
            return Err(format!(
                "the signature expired at unix time {at}, as its signer set"
            ));
        }
    }
    header
        .get("alg")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| "the envelope names no signing algorithm".into())
}

/// Whether `signature` (JWS form) is `key`'s over `input` under `alg`, which must fit the key.
fn verifies(key: &PublicKey, alg: &str, input: &[u8], signature: &[u8]) -> Result<bool, String> {
    use signature::Verifier as _;
    Ok(match (alg, key) {
        ("ES256", PublicKey::P256(k)) => {
            p256::ecdsa::Signature::from_slice(signature).is_ok_and(|s| k.verify(input, &s).is_ok())
        }
        ("ES384", PublicKey::P384(k)) => {
            p384::ecdsa::Signature::from_slice(signature).is_ok_and(|s| k.verify(input, &s).is_ok())
        }
        ("PS256" | "PS384" | "PS512", PublicKey::Rsa(k)) => {
            let (hash, scheme) = match alg {
                "PS256" => (Hash::Sha256, rsa::Pss::new::<sha2_10::Sha256>()),
                "PS384" => (Hash::Sha384, rsa::Pss::new::<sha2_10::Sha384>()),
                _ => (Hash::Sha512, rsa::Pss::new::<sha2_10::Sha512>()),
            };
            k.verify(scheme, &hash.digest(input), signature).is_ok()
        }
        (alg, key) => {
            return Err(format!(
                "the envelope's algorithm {alg} does not fit its certificate's {} key",
                key.kind()
            ));
        }
    })
}

/// Verifies a JWS envelope over image `digest` at `now` against the trust stores (name, CA
/// certificates); answers the store its certificate chains to.
pub(super) fn verify_jws(
    envelope: &[u8],
    digest: &str,
    stores: &[Store],
    now: i64,
) -> Result<String, String> {
    let e: Envelope = serde_json::from_slice(envelope)
        .map_err(|e| format!("the envelope is not a flattened JWS: {e}"))?;
    let header: Value = serde_json::from_slice(&b64url(&e.protected, "protected header")?)
        .map_err(|_| "the envelope's protected header is not JSON")?;
    let alg = check_header(&header, now)?;
    let payload: Value = serde_json::from_slice(&b64url(&e.payload, "payload")?)
        .map_err(|_| "the envelope's payload is not JSON")?;
    let target = payload
        .pointer("/targetArtifact/digest")
        .and_then(Value::as_str)
        .ok_or("the payload names no target artifact")?;
    if target != digest {
        return Err(format!("it signs another image ({target})"));
    }
    let certs = e
        .header
        .x5c
        .iter()
        .map(|c| {
            base64::engine::general_purpose::STANDARD
                .decode(c)
                .map_err(|_| "a certificate of x5c is not base64".to_owned())
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (leaf_der, rest) = certs
        .split_first()
        .ok_or("the envelope carries no certificate (x5c)")?;
    let leaf = Cert::parse(leaf_der)?;
    if !x509::allows_code_signing(&leaf)? {
        return Err("the signing certificate is not for code signing (its extended key usage does not name it)".into());
    }
    let key = crypto::key_from_spki(leaf.spki)?;
    let input = format!("{}.{}", e.protected, e.payload);
    if !verifies(
        &key,
        &alg,
        input.as_bytes(),
        &b64url(&e.signature, "signature")?,
    )? {
        return Err("the signature does not verify with its certificate's key: the envelope was changed after signing".into());
    }
    if stores.is_empty() {
        return Err(
            "no trust store to verify its certificate with (semdock trust store add)".into(),
        );
    }
    let mut reasons = Vec::new();
    for (name, cas) in stores {
        let authorities: Vec<Authority> = cas
            .iter()
            .map(|ca| Authority {
                chain: vec![ca.clone()],
                valid: Window {
                    start: i64::MIN,
                    end: None,
                },
            })
            .collect();
        match x509::chain_to(&leaf, rest, &authorities, now, "signing") {
            Ok(_) => return Ok(name.clone()),
            Err(e) => reasons.push(format!("trust store {name}: {e}")),
        }
    }
    Err(reasons.join("; "))
}

/// The CA certificates (DER) of a PEM bundle; a sentence when one is not a CA's.
pub(super) fn ca_certificates(pem: &str) -> Result<Vec<Vec<u8>>, String> {
    let out = x509::pem_certificates(pem)?;
    for der in &out {
        if !Cert::parse(der)?.is_ca() {
            return Err("a certificate in the PEM is not a CA's: a trust store holds the CAs that issue signing certificates".into());
        }
    }
    if out.is_empty() {
        return Err("the PEM holds no certificate".into());
    }
    Ok(out)
}
