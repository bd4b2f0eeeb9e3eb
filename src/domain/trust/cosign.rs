//! cosign's signature format, read from what the registry itself stores: a signature
//! manifest (under the tag `sha256-<hex>.sig`, or as an OCI 1.1 referrer of artifact type
//! `application/vnd.dev.cosign.artifact.sig.v1+json`) whose layers are simple-signing
//! payloads, each carrying its signature in the `dev.cosignproject.cosign/signature`
//! annotation. The payload names the image digest it signs; the signature is over the
//! payload's bytes.

use base64::Engine as _;
use serde::Deserialize;

use crate::model::Digest;

/// The media type of a simple-signing payload layer.
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The artifact type of a cosign signature pushed as a referrer.
pub const SIGNATURE_ARTIFACT: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
/// The layer annotation holding the base64 signature.
const SIGNATURE: &str = "dev.cosignproject.cosign/signature";
/// The layer annotation holding a Fulcio certificate (keyless signing).
const CERTIFICATE: &str = "dev.sigstore.cosign/certificate";
/// The layer annotation holding the certificate's chain (PEM, intermediates and root).
const CHAIN: &str = "dev.sigstore.cosign/chain";
/// The layer annotation holding Rekor's answer: the entry and its signed entry timestamp.
const REKOR_BUNDLE: &str = "dev.sigstore.cosign/bundle";
/// Payloads larger than this are not read: cosign's are a few hundred bytes.
pub const PAYLOAD_LIMIT: u64 = 64 * 1024;

/// The tag cosign stores the signatures of `digest` under (`sha256-<hex>.sig`).
#[must_use]
pub fn signature_tag(digest: &str) -> Option<String> {
    let (algorithm, hex) = digest.split_once(':')?;
    Some(format!("{algorithm}-{hex}.sig"))
}

/// Whether `tag` is one cosign writes beside an image (signatures, attestations, SBOMs):
/// such tags are the image's trust material, not releases.
#[must_use]
pub fn is_cosign_tag(tag: &str) -> bool {
    tag.starts_with("sha256-")
        && [".sig", ".att", ".sbom"]
            .iter()
            .any(|suffix| tag.ends_with(suffix))
}

/// The image a pushed manifest signs: the digest cosign's tag names, or the subject of a
/// referrer of cosign's signature artifact type. `None` for anything else.
#[must_use]
pub fn signed_by(
    tags: &[&crate::model::Tag],
    manifest: &crate::model::manifest::Manifest,
) -> Option<String> {
    tags.iter()
        .find_map(|t| {
            let hex = t.as_str().strip_prefix("sha256-")?.strip_suffix(".sig")?;
            Some(format!("sha256:{hex}"))
        })
        .or_else(|| {
            (manifest.artifact_type.as_deref() == Some(SIGNATURE_ARTIFACT))
                .then(|| manifest.subject.as_ref().map(ToString::to_string))
                .flatten()
        })
}

/// One signature layer of a signature manifest.
#[derive(Debug, Clone)]
pub struct SignatureLayer {
    /// The payload blob.
    pub payload: Digest,
    pub size: u64,
    /// The signature, decoded; `Err` with a sentence when the annotation is not base64.
    pub signature: Result<Vec<u8>, String>,
    /// The annotations of a keyless signature.
    pub keyless: Keyless,
}

impl SignatureLayer {
    /// Whether it carries a certificate (keyless) rather than being made with a key.
    #[must_use]
    pub fn keyless(&self) -> bool {
        self.keyless.certificate.is_some()
    }
}

/// What a keyless cosign layer carries in its annotations.
#[derive(Debug, Clone, Default)]
pub struct Keyless {
    /// The Fulcio certificate (PEM).
    pub certificate: Option<String>,
    /// The certificate's chain (PEM).
    pub chain: Option<String>,
    /// Rekor's bundle annotation (JSON).
    pub rekor: Option<String>,
}

impl Keyless {
    fn of(annotations: &std::collections::BTreeMap<String, String>) -> Self {
        Self {
            certificate: annotations.get(CERTIFICATE).cloned(),
            chain: annotations.get(CHAIN).cloned(),
            rekor: annotations.get(REKOR_BUNDLE).cloned(),
        }
    }
}

#[derive(Deserialize)]
struct Manifest {
    #[serde(default)]
    layers: Vec<Layer>,
}

#[derive(Deserialize)]
struct Layer {
    #[serde(rename = "mediaType")]
    media_type: String,
    digest: String,
    size: u64,
    #[serde(default)]
    annotations: std::collections::BTreeMap<String, String>,
}

/// The signature layers of a signature manifest's body; layers of other kinds are skipped.
pub fn layers(body: &[u8]) -> Result<Vec<SignatureLayer>, String> {
    let manifest: Manifest = serde_json::from_slice(body)
        .map_err(|e| format!("the signature manifest cannot be read: {e}"))?;
    let mut out = Vec::new();
    for layer in manifest.layers {
        if layer.media_type != SIMPLE_SIGNING {
            continue;
        }
        let payload: Digest = layer
            .digest
            .parse()
            .map_err(|e| format!("a signature layer's digest is invalid: {e}"))?;
        let signature = match layer.annotations.get(SIGNATURE) {
            None => Err("a signature layer has no signature annotation".to_owned()),
            Some(b64) => base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|_| "a signature annotation is not base64".to_owned()),
        };
        out.push(SignatureLayer {
            payload,
            size: layer.size,
            signature,
            keyless: Keyless::of(&layer.annotations),
        });
    }
    Ok(out)
}

#[derive(Deserialize)]
struct RekorBundle {
    #[serde(rename = "SignedEntryTimestamp")]
    set: String,
    #[serde(rename = "Payload")]
    payload: RekorPayload,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RekorPayload {
    body: String,
    integrated_time: i64,
    log_index: u64,
    #[serde(rename = "logID")]
    log_id: String,
}

/// What a keyless cosign layer signed: a simple-signing payload, or a DSSE envelope (JSON).
pub enum Signed<'a> {
    Message {
        payload: &'a [u8],
        signature: &'a [u8],
    },
    Envelope(&'a [u8]),
}

/// cosign's older keyless signature or attestation (certificate, chain and Rekor bundle in
/// the layer's annotations) as the Sigstore bundle v0.1 it is equivalent to: the same
/// certificate, log entry and signed entry timestamp, over the same content. Roots in the
/// chain are left out: they come from the trusted root.
pub fn legacy_bundle(layer: &Keyless, signed: &Signed<'_>) -> Result<Vec<u8>, String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let leaf =
        super::sigstore::x509::pem_certificates(layer.certificate.as_deref().unwrap_or_default())?;
    let leaf = leaf
        .first()
        .ok_or("the certificate annotation holds no certificate")?;
    let mut certificates = vec![serde_json::json!({"rawBytes": b64.encode(leaf)})];
    for c in super::sigstore::x509::pem_certificates(layer.chain.as_deref().unwrap_or_default())? {
        let root = super::sigstore::x509::Cert::parse(&c).is_ok_and(|c| c.self_signed());
        if !root {
            certificates.push(serde_json::json!({"rawBytes": b64.encode(&c)}));
        }
    }
    let rekor: RekorBundle = serde_json::from_str(layer.rekor.as_deref().ok_or(
        "a keyless signature without a Rekor bundle annotation: nothing proves when it was made",
    )?)
    .map_err(|e| format!("the Rekor bundle annotation cannot be read: {e}"))?;
    let body = b64
        .decode(&rekor.payload.body)
        .map_err(|_| "the Rekor entry's body is not base64".to_owned())?;
    let body_json: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| format!("the Rekor entry's body is not JSON: {e}"))?;
    let log_id = hex::decode(&rekor.payload.log_id)
        .map_err(|_| "the Rekor entry's log id is not hex".to_owned())?;
    let (content_key, content) = match signed {
        Signed::Message { payload, signature } => (
            "messageSignature",
            serde_json::json!({
                "messageDigest": {
                    "algorithm": "SHA2_256",
                    "digest": b64.encode(super::sigstore::crypto::sha256(payload)),
                },
                "signature": b64.encode(signature),
            }),
        ),
        Signed::Envelope(envelope) => (
            "dsseEnvelope",
            serde_json::from_slice(envelope)
                .map_err(|e| format!("the DSSE envelope cannot be read: {e}"))?,
        ),
    };
    let mut bundle = serde_json::json!({
        "mediaType": "application/vnd.dev.sigstore.bundle+json;version=0.1",
        "verificationMaterial": {
            "x509CertificateChain": {"certificates": certificates},
            "tlogEntries": [{
                "logIndex": rekor.payload.log_index.to_string(),
                "logId": {"keyId": b64.encode(log_id)},
                "kindVersion": {
                    "kind": body_json.get("kind").and_then(serde_json::Value::as_str).unwrap_or_default(),
                    "version": body_json.get("apiVersion").and_then(serde_json::Value::as_str).unwrap_or_default(),
                },
                "integratedTime": rekor.payload.integrated_time.to_string(),
                "inclusionPromise": {"signedEntryTimestamp": rekor.set},
                "canonicalizedBody": rekor.payload.body,
            }],
        },
    });
    bundle[content_key] = content;
    Ok(bundle.to_string().into_bytes())
}

/// The media type of an attestation layer: a DSSE envelope (cosign's `.att` tag).
pub const DSSE: &str = "application/vnd.dsse.envelope.v1+json";
/// Envelopes larger than this are not read.
pub const ENVELOPE_LIMIT: u64 = 256 * 1024;

/// The DSSE envelope layers (digest, size, keyless annotations) of an attestation manifest
/// (cosign's `.att`).
pub fn attestation_layers(body: &[u8]) -> Result<Vec<(Digest, u64, Keyless)>, String> {
    let manifest: Manifest = serde_json::from_slice(body)
        .map_err(|e| format!("the attestation manifest cannot be read: {e}"))?;
    manifest
        .layers
        .into_iter()
        .filter(|l| l.media_type == DSSE)
        .map(|l| {
            l.digest
                .parse()
                .map(|d| (d, l.size, Keyless::of(&l.annotations)))
                .map_err(|e| format!("an attestation layer's digest is invalid: {e}"))
        })
        .collect()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    payload_type: String,
    payload: String,
    #[serde(default)]
    signatures: Vec<EnvelopeSignature>,
}

#[derive(Deserialize)]
struct EnvelopeSignature {
    sig: String,
}

/// An attestation a DSSE envelope carries about image `digest`, once its signature verifies
/// with one of `keys`: (the key's name, predicate type, predicate).
pub fn check_envelope(
    envelope: &[u8],
    digest: &str,
    keys: &[(&String, crate::domain::trust::PublicKey)],
) -> Result<(String, String, serde_json::Value), String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let e: Envelope = serde_json::from_slice(envelope)
        .map_err(|e| format!("the DSSE envelope cannot be read: {e}"))?;
    if e.payload_type != "application/vnd.in-toto+json" {
        return Err(format!(
            "the DSSE envelope holds {:?}, not an in-toto statement",
            e.payload_type
        ));
    }
    let payload = b64
        .decode(&e.payload)
        .map_err(|_| "the DSSE payload is not base64".to_owned())?;
    let statement: serde_json::Value = serde_json::from_slice(&payload)
        .map_err(|e| format!("the in-toto statement is not JSON: {e}"))?;
    let hex = digest.split_once(':').map_or(digest, |(_, h)| h);
    let about = statement
        .get("subject")
        .and_then(serde_json::Value::as_array)
        .is_some_and(|s| {
            s.iter().any(|s| {
                s.pointer("/digest/sha256")
                    .and_then(serde_json::Value::as_str)
                    == Some(hex)
            })
        });
    if !about {
        return Err("the in-toto statement is about another image".into());
    }
    let pae = super::sigstore::pae(&e.payload_type, &payload);
    let signer = e.signatures.iter().find_map(|s| {
        let sig = b64.decode(&s.sig).ok()?;
        keys.iter()
            .find(|(_, k)| k.verifies(&pae, &sig))
            .map(|(n, _)| (*n).clone())
    });
    let Some(key) = signer else {
        return Err(if keys.is_empty() {
            "no trusted key to verify it with".into()
        } else {
            "signed by a key that is not trusted, or its statement was changed after signing".into()
        });
    };
    let predicate_type = statement
        .get("predicateType")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let predicate = statement
        .get("predicate")
        .cloned()
        .unwrap_or(serde_json::Value::Null);
    Ok((key, predicate_type, predicate))
}

#[derive(Deserialize)]
struct Payload {
    critical: Critical,
}

#[derive(Deserialize)]
struct Critical {
    image: Image,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct Image {
    #[serde(rename = "docker-manifest-digest")]
    digest: String,
}

/// Checks that simple-signing `payload` signs image `digest`; a sentence when it does not.
pub fn check_payload(payload: &[u8], digest: &str) -> Result<(), String> {
    let p: Payload = serde_json::from_slice(payload)
        .map_err(|_| "its payload is not a cosign simple-signing payload".to_owned())?;
    if p.critical.kind != "cosign container image signature" {
        return Err(format!(
            "its payload is of type {:?}, not a cosign container image signature",
            p.critical.kind
        ));
    }
    if p.critical.image.digest != digest {
        return Err(format!(
            "it signs another image ({}), not this one",
            p.critical.image.digest
        ));
    }
    Ok(())
}

/// A simple-signing payload for `digest` of `reference` (`host/repo`), as cosign writes it.
#[must_use]
pub fn payload_for(reference: &str, digest: &str) -> Vec<u8> {
    serde_json::json!({
        "critical": {
            "identity": {"docker-reference": reference},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature"
        },
        "optional": null
    })
    .to_string()
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_signs_only_the_digest_it_names() {
        let d = "sha256:aaaa";
        let p = payload_for("localhost:5000/prod/web", d);
        assert!(check_payload(&p, d).is_ok());
        let other = check_payload(&p, "sha256:bbbb").unwrap_err();
        assert!(other.contains("another image (sha256:aaaa)"), "{other}");
        assert!(check_payload(b"{}", d).is_err());
        let mut v: serde_json::Value = serde_json::from_slice(&p).unwrap();
        v["critical"]["type"] = "atomic container signature".into();
        let kind = check_payload(v.to_string().as_bytes(), d).unwrap_err();
        assert!(kind.contains("not a cosign"), "{kind}");
    }

    #[test]
    fn signature_layers_are_read_from_the_manifest_and_others_skipped() {
        let body = serde_json::json!({
            "schemaVersion": 2,
            "layers": [
                {"mediaType": SIMPLE_SIGNING, "digest": format!("sha256:{}", "a".repeat(64)), "size": 10,
                 "annotations": {SIGNATURE: "AAEC"}},
                {"mediaType": "application/octet-stream", "digest": format!("sha256:{}", "b".repeat(64)), "size": 1},
                {"mediaType": SIMPLE_SIGNING, "digest": format!("sha256:{}", "c".repeat(64)), "size": 10,
                 "annotations": {SIGNATURE: "!!", CERTIFICATE: "pem"}}
            ]
        });
        let found = layers(body.to_string().as_bytes()).unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].signature.as_deref(), Ok(&[0, 1, 2][..]));
        assert!(!found[0].keyless());
        assert!(found[1].signature.is_err() && found[1].keyless());
        assert_eq!(
            signature_tag("sha256:abc").as_deref(),
            Some("sha256-abc.sig")
        );
        assert!(is_cosign_tag("sha256-abc.att") && !is_cosign_tag("5.1.0"));
    }
}
