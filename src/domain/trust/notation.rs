//! Notation (Notary Project) signatures: an OCI referrer of artifact type
//! `application/vnd.cncf.notary.signature` whose layer is a signature envelope over the
//! payload `{"targetArtifact": descriptor}`, signed with the key of an X.509 code-signing
//! certificate that chains to a CA of a trust store (the Notary Project's `ca` trust store
//! type, signing scheme `notary.x509`), in either envelope the specification allows: JWS
//! (flattened JSON serialization) or COSE (`COSE_Sign1_Tagged`, read with `ciborium`).

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
        JWS | COSE => Ok((media_type, digest, size)),
        other => Err(format!(
            "the envelope's media type {other:?} is not a Notation envelope"
        )),
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

/// What an envelope (JWS or COSE) says, once its protected header is checked.
struct Opened {
    alg: String,
    payload: Vec<u8>,
    /// `x5c` / `x5chain`: the signing certificate first.
    certs: Vec<Vec<u8>>,
    /// The bytes the signature is over.
    input: Vec<u8>,
    signature: Vec<u8>,
}

fn open_jws(envelope: &[u8], now: i64) -> Result<Opened, String> {
    let e: Envelope = serde_json::from_slice(envelope)
        .map_err(|e| format!("the envelope is not a flattened JWS: {e}"))?;
    let header: Value = serde_json::from_slice(&b64url(&e.protected, "protected header")?)
        .map_err(|_| "the envelope's protected header is not JSON")?;
    let alg = check_header(&header, now)?;
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
    Ok(Opened {
        alg,
        payload: b64url(&e.payload, "payload")?,
        certs,
        input: format!("{}.{}", e.protected, e.payload).into_bytes(),
        signature: b64url(&e.signature, "signature")?,
    })
}

/// A COSE header label as the JWS header would name it: `alg`, `crit`, `cty`, or the
/// Notary Project's text labels; times (CBOR tag 1) as RFC 3339.
fn cose_header(map: &[(ciborium::Value, ciborium::Value)]) -> Value {
    use ciborium::Value as C;
    fn json(v: &C) -> Value {
        match v {
            C::Text(t) => Value::from(t.as_str()),
            C::Integer(i) => i128::from(*i)
                .try_into()
                .map_or(Value::Null, |i: i64| Value::from(i)),
            C::Array(items) => Value::Array(items.iter().map(json).collect()),
            C::Tag(1, t) => match t.as_ref() {
                C::Integer(i) => i64::try_from(i128::from(*i))
                    .ok()
                    .and_then(|s| jiff::Timestamp::from_second(s).ok())
                    .map_or(Value::Null, |ts| Value::from(ts.to_string())),
                _ => Value::Null,
            },
            _ => Value::Null,
        }
    }
    let mut out = serde_json::Map::new();
    for (k, v) in map {
        let key = match k {
            C::Integer(i) => match i128::from(*i) {
                1 => "alg".to_owned(),
                2 => "crit".to_owned(),
                3 => "cty".to_owned(),
                other => other.to_string(),
            },
            C::Text(t) => t.clone(),
            _ => continue,
        };
        let value = if key == "alg" {
            let alg = match v {
                C::Integer(i) => match i128::from(*i) {
                    -7 => "ES256",
                    -35 => "ES384",
                    -36 => "ES512",
                    -37 => "PS256",
                    -38 => "PS384",
                    -39 => "PS512",
                    _ => "unknown",
                },
                _ => "unknown",
            };
            Value::from(alg)
        } else {
            json(v)
        };
        out.insert(key, value);
    }
    Value::Object(out)
}

fn open_cose(envelope: &[u8], now: i64) -> Result<Opened, String> {
    use ciborium::Value as C;
    let value: C = ciborium::de::from_reader(envelope)
        .map_err(|e| format!("the envelope is not CBOR: {e}"))?;
    let C::Tag(18, sign1) = value else {
        return Err("the envelope is not a COSE_Sign1_Tagged structure".into());
    };
    let C::Array(parts) = *sign1 else {
        return Err("the COSE_Sign1 structure is not an array".into());
    };
    let [
        C::Bytes(protected),
        C::Map(unprotected),
        C::Bytes(payload),
        C::Bytes(signature),
    ] = parts.as_slice()
    else {
        return Err("the COSE_Sign1 structure is not [protected, unprotected, payload, signature] with an attached payload".into());
    };
    let protected_map: C = ciborium::de::from_reader(protected.as_slice())
        .map_err(|e| format!("the protected header is not CBOR: {e}"))?;
    let C::Map(protected_map) = protected_map else {
        return Err("the protected header is not a map".into());
    };
    let alg = check_header(&cose_header(&protected_map), now)?;
    let certs = unprotected
        .iter()
        .find(|(k, _)| matches!(k, C::Integer(i) if i128::from(*i) == 33))
        .map(|(_, v)| match v {
            C::Bytes(b) => vec![b.clone()],
            C::Array(items) => items
                .iter()
                .filter_map(|i| match i {
                    C::Bytes(b) => Some(b.clone()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        })
        .unwrap_or_default();
    let structure = C::Array(vec![
        C::Text("Signature1".into()),
        C::Bytes(protected.clone()),
        C::Bytes(Vec::new()),
        C::Bytes(payload.clone()),
    ]);
    let mut input = Vec::new();
    ciborium::ser::into_writer(&structure, &mut input)
        .map_err(|e| format!("the COSE signing input cannot be built: {e}"))?;
    Ok(Opened {
        alg,
        payload: payload.clone(),
        certs,
        input,
        signature: signature.clone(),
    })
}

/// Verifies a Notation envelope (`media_type`: JWS or COSE) over image `digest` at `now`
/// against the trust stores; answers the store its certificate chains to.
pub(super) fn verify_envelope(
    media_type: &str,
    envelope: &[u8],
    digest: &str,
    stores: &[Store],
    now: i64,
) -> Result<String, String> {
    let e = if media_type == COSE {
        open_cose(envelope, now)?
    } else {
        open_jws(envelope, now)?
    };
    let payload: Value =
        serde_json::from_slice(&e.payload).map_err(|_| "the envelope's payload is not JSON")?;
    let target = payload
        .pointer("/targetArtifact/digest")
        .and_then(Value::as_str)
        .ok_or("the payload names no target artifact")?;
    if target != digest {
        return Err(format!("it signs another image ({target})"));
    }
    let (leaf_der, rest) = e
        .certs
        .split_first()
        .ok_or("the envelope carries no certificate (x5c)")?;
    let leaf = Cert::parse(leaf_der)?;
    if !x509::allows_code_signing(&leaf)? {
        return Err("the signing certificate is not for code signing (its extended key usage does not name it)".into());
    }
    let key = crypto::key_from_spki(leaf.spki)?;
    if !verifies(&key, &e.alg, &e.input, &e.signature)? {
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
