//! The Sigstore bundle (`bundle.sigstore.json`, protobuf-JSON `Bundle` of media types
//! `application/vnd.dev.sigstore.bundle+json;version=0.1|0.2|0.3` and
//! `application/vnd.dev.sigstore.bundle.v0.3+json`): parsed into plain values, every
//! base64 field decoded. Parsing only; nothing here is trusted yet.

use serde::Deserialize;
use serde_json::Value;

use super::root::{RawJson, b64};

/// The bundle format versions this verifier reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    V01,
    V02,
    V03,
}

/// What the signature is verified with.
#[derive(Debug, Clone)]
pub enum Material {
    /// A signing certificate (DER), and for v0.1/v0.2 chains the rest of the chain.
    Certificate { leaf: Vec<u8>, rest: Vec<Vec<u8>> },
    /// A key the verifier must bring (the bundle holds only a hint).
    PublicKey,
}

/// What was signed.
#[derive(Debug, Clone)]
pub enum Content {
    Message {
        /// The digest the bundle claims (an unauthenticated hint, checked for consistency).
        digest: Option<Vec<u8>>,
        signature: Vec<u8>,
    },
    Dsse {
        payload_type: String,
        payload: Vec<u8>,
        signature: Vec<u8>,
    },
}

impl Content {
    /// The signature bytes: what a timestamp authority countersigns.
    #[must_use]
    pub fn signature(&self) -> &[u8] {
        match self {
            Self::Message { signature, .. } | Self::Dsse { signature, .. } => signature,
        }
    }
}

/// An RFC 6962 inclusion proof and the checkpoint it is rooted in.
#[derive(Debug, Clone)]
pub struct Proof {
    pub log_index: u64,
    pub root_hash: Vec<u8>,
    pub tree_size: u64,
    pub hashes: Vec<Vec<u8>>,
    pub checkpoint: Option<String>,
}

/// A transparency log entry as the bundle carries it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub log_index: u64,
    pub log_id: Vec<u8>,
    pub kind: String,
    pub version: String,
    pub integrated_time: Option<i64>,
    pub set: Option<Vec<u8>>,
    pub proof: Option<Proof>,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct Bundle {
    pub version: Version,
    pub material: Material,
    pub entries: Vec<Entry>,
    pub timestamps: Vec<Vec<u8>>,
    pub content: Content,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BundleJson {
    media_type: String,
    verification_material: MaterialJson,
    message_signature: Option<MessageJson>,
    dsse_envelope: Option<DsseJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MaterialJson {
    certificate: Option<RawJson>,
    x509_certificate_chain: Option<ChainJson>,
    public_key: Option<Value>,
    #[serde(default)]
    tlog_entries: Vec<EntryJson>,
    timestamp_verification_data: Option<TimestampsJson>,
}

#[derive(Deserialize)]
struct ChainJson {
    #[serde(default)]
    certificates: Vec<RawJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TimestampsJson {
    #[serde(default)]
    rfc3161_timestamps: Vec<SignedTimestampJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SignedTimestampJson {
    signed_timestamp: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EntryJson {
    log_index: Value,
    log_id: KeyIdJson,
    kind_version: KindVersionJson,
    integrated_time: Option<Value>,
    inclusion_promise: Option<PromiseJson>,
    inclusion_proof: Option<ProofJson>,
    canonicalized_body: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyIdJson {
    key_id: String,
}

#[derive(Deserialize)]
struct KindVersionJson {
    kind: String,
    version: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromiseJson {
    signed_entry_timestamp: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProofJson {
    log_index: Value,
    root_hash: String,
    tree_size: Value,
    #[serde(default)]
    hashes: Vec<String>,
    checkpoint: Option<CheckpointJson>,
}

#[derive(Deserialize)]
struct CheckpointJson {
    envelope: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MessageJson {
    message_digest: Option<DigestJson>,
    signature: String,
}

#[derive(Deserialize)]
struct DigestJson {
    algorithm: String,
    digest: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DsseJson {
    payload: String,
    payload_type: String,
    #[serde(default)]
    signatures: Vec<DsseSignatureJson>,
}

#[derive(Deserialize)]
struct DsseSignatureJson {
    sig: String,
}

/// A protobuf-JSON 64-bit integer: a decimal string (or a JSON number), never negative here.
fn uint(v: &Value, what: &str) -> Result<u64, String> {
    let parsed = match v {
        Value::String(s) => s.parse::<u64>().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    };
    parsed.ok_or_else(|| format!("{what} is {v}, not a non-negative integer"))
}

fn version(media_type: &str) -> Result<Version, String> {
    match media_type {
        "application/vnd.dev.sigstore.bundle+json;version=0.1" => Ok(Version::V01),
        "application/vnd.dev.sigstore.bundle+json;version=0.2" => Ok(Version::V02),
        "application/vnd.dev.sigstore.bundle+json;version=0.3"
        | "application/vnd.dev.sigstore.bundle.v0.3+json" => Ok(Version::V03),
        other => Err(format!(
            "the bundle's media type {other:?} is not a Sigstore bundle version this verifier reads (0.1 to 0.3)"
        )),
    }
}

fn entry(e: &EntryJson) -> Result<Entry, String> {
    let proof = e
        .inclusion_proof
        .as_ref()
        .map(|p| -> Result<Proof, String> {
            Ok(Proof {
                log_index: uint(&p.log_index, "the inclusion proof's log index")?,
                root_hash: b64(&p.root_hash, "the inclusion proof's root hash")?,
                tree_size: uint(&p.tree_size, "the inclusion proof's tree size")?,
                hashes: p
                    .hashes
                    .iter()
                    .map(|h| b64(h, "an inclusion proof hash"))
                    .collect::<Result<_, _>>()?,
                checkpoint: p.checkpoint.as_ref().map(|c| c.envelope.clone()),
            })
        })
        .transpose()?;
    Ok(Entry {
        log_index: uint(&e.log_index, "the log entry's index")?,
        log_id: b64(&e.log_id.key_id, "the log entry's log id")?,
        kind: e.kind_version.kind.clone(),
        version: e.kind_version.version.clone(),
        integrated_time: e
            .integrated_time
            .as_ref()
            .map(|t| uint(t, "the log entry's integrated time"))
            .transpose()?
            .map(|t| i64::try_from(t).unwrap_or(i64::MAX))
            .filter(|&t| t != 0),
        set: e
            .inclusion_promise
            .as_ref()
            .map(|p| b64(&p.signed_entry_timestamp, "the signed entry timestamp"))
            .transpose()?,
        proof,
        body: b64(&e.canonicalized_body, "the log entry's body")?,
    })
}

impl Bundle {
    pub fn from_json(bytes: &[u8]) -> Result<Self, String> {
        let json: BundleJson = serde_json::from_slice(bytes)
            .map_err(|e| format!("the bundle is not a Sigstore bundle: {e}"))?;
        let version = version(&json.media_type)?;
        let m = &json.verification_material;
        let material = if let Some(c) = &m.certificate {
            Material::Certificate {
                leaf: b64(&c.raw_bytes, "the signing certificate")?,
                rest: Vec::new(),
            }
        } else if let Some(chain) = &m.x509_certificate_chain {
            let mut certs = chain
                .certificates
                .iter()
                .map(|c| b64(&c.raw_bytes, "a certificate of the bundle's chain"))
                .collect::<Result<Vec<_>, _>>()?;
            if certs.is_empty() {
                return Err("the bundle's certificate chain is empty".into());
            }
            let leaf = certs.remove(0);
            Material::Certificate { leaf, rest: certs }
        } else if m.public_key.is_some() {
            Material::PublicKey
        } else {
            return Err(
                "the bundle has no verification material (certificate or public key)".into(),
            );
        };
        let content = match (&json.message_signature, &json.dsse_envelope) {
            (Some(ms), None) => Content::Message {
                digest: ms
                    .message_digest
                    .as_ref()
                    .map(|d| {
                        if d.algorithm == "SHA2_256" {
                            b64(&d.digest, "the message digest")
                        } else {
                            Err(format!(
                                "the message digest uses {}, where SHA2_256 is expected",
                                d.algorithm
                            ))
                        }
                    })
                    .transpose()?,
                signature: b64(&ms.signature, "the message signature")?,
            },
            (None, Some(d)) => {
                let [s] = d.signatures.as_slice() else {
                    return Err(format!(
                        "the DSSE envelope has {} signatures, where exactly one is expected",
                        d.signatures.len()
                    ));
                };
                Content::Dsse {
                    payload_type: d.payload_type.clone(),
                    payload: b64(&d.payload, "the DSSE payload")?,
                    signature: b64(&s.sig, "the DSSE signature")?,
                }
            }
            _ => {
                return Err(
                    "the bundle holds neither exactly one message signature nor one DSSE envelope"
                        .into(),
                );
            }
        };
        Ok(Self {
            version,
            material,
            entries: m.tlog_entries.iter().map(entry).collect::<Result<_, _>>()?,
            timestamps: m
                .timestamp_verification_data
                .as_ref()
                .map(|t| {
                    t.rfc3161_timestamps
                        .iter()
                        .map(|s| b64(&s.signed_timestamp, "an RFC 3161 timestamp"))
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()?
                .unwrap_or_default(),
            content,
        })
    }
}
