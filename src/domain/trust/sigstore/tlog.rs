//! Rekor transparency log entries: that an entry's body records exactly what the bundle
//! signed (hashedrekord, dsse and intoto bodies of Rekor v1, hashedrekord and dsse 0.0.2 of
//! Rekor v2), the signed entry timestamp (SET), the RFC 6962 inclusion proof and the
//! signed-note checkpoint it is rooted in.

use base64::Engine as _;
use serde_json::Value;

use super::bundle::{Entry, Proof};
use super::crypto::{self, Hash};
use super::root::{Log, b64};
use crate::domain::trust::PublicKey;

/// Who signed, as the verifier knows it: the certificate (DER) or the expected key.
pub enum Signer<'a> {
    Certificate(&'a [u8]),
    Key(&'a PublicKey),
}

/// What the bundle signed, as an entry must record it.
pub struct Claim<'a> {
    pub signature: &'a [u8],
    /// For a message signature: the artifact's SHA-256.
    pub digest: Option<[u8; 32]>,
    /// For a DSSE envelope: its payload type and payload.
    pub dsse: Option<(&'a str, &'a [u8])>,
}

fn field<'v>(v: &'v Value, path: &[&str]) -> Result<&'v Value, String> {
    let mut at = v;
    for p in path {
        at = at
            .get(p)
            .ok_or_else(|| format!("the log entry's body has no {}", path.join(".")))?;
    }
    Ok(at)
}

fn text<'v>(v: &'v Value, path: &[&str]) -> Result<&'v str, String> {
    field(v, path)?
        .as_str()
        .ok_or_else(|| format!("the log entry's {} is not a string", path.join(".")))
}

fn pem_der(pem: &[u8]) -> Result<Vec<u8>, String> {
    let pem = std::str::from_utf8(pem).map_err(|_| "a PEM in the log entry is not text")?;
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::trim)
        .collect();
    b64(&body, "a PEM in the log entry")
}

fn same_key(a: &PublicKey, b: &PublicKey) -> bool {
    match (a, b) {
        (PublicKey::P256(a), PublicKey::P256(b)) => a == b,
        (PublicKey::P384(a), PublicKey::P384(b)) => a == b,
        (PublicKey::Ed25519(a), PublicKey::Ed25519(b)) => a == b,
        (PublicKey::Rsa(a), PublicKey::Rsa(b)) => a == b,
        _ => false,
    }
}

/// Whether the DER the entry names as its verifier (a certificate or a `SubjectPublicKeyInfo`)
/// is the bundle's signer.
fn is_signer(der: &[u8], signer: &Signer<'_>) -> bool {
    match signer {
        Signer::Certificate(cert) => der == *cert,
        Signer::Key(key) => crypto::key_from_spki(der).is_ok_and(|k| same_key(&k, key)),
    }
}

fn check(ok: bool, what: &str) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(format!(
            "the transparency log entry does not match the bundle: {what}"
        ))
    }
}

/// The DSSE pre-authentication encoding of a payload.
#[must_use]
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// Checks that the entry's body records this signature, by this signer, over this content.
pub fn verify_body(entry: &Entry, claim: &Claim<'_>, signer: &Signer<'_>) -> Result<(), String> {
    let body: Value = serde_json::from_slice(&entry.body)
        .map_err(|e| format!("the log entry's body is not JSON: {e}"))?;
    let kind = text(&body, &["kind"])?;
    let api = text(&body, &["apiVersion"])?;
    if kind != entry.kind || api != entry.version {
        return Err(format!(
            "the log entry claims to be {} {} but its body is {kind} {api}",
            entry.kind, entry.version
        ));
    }
    let spec = field(&body, &["spec"])?;
    match (kind, api, claim.dsse) {
        ("hashedrekord", "0.0.1", None) => hashedrekord_v1(spec, claim, signer),
        ("hashedrekord", "0.0.2", _) => hashedrekord_v2(spec, claim, signer),
        ("dsse", "0.0.1", Some((_, payload))) => dsse_v1(spec, claim, payload, signer),
        ("dsse", "0.0.2", Some((_, payload))) => dsse_v2(spec, claim, payload, signer),
        ("intoto", "0.0.2", Some(dsse)) => intoto_v2(spec, claim, dsse, signer),
        (kind, api, _) => Err(format!(
            "a {kind} {api} log entry is not one this verifier reads for a {} bundle",
            if claim.dsse.is_some() {
                "DSSE"
            } else {
                "message signature"
            }
        )),
    }
}

fn hashedrekord_v1(spec: &Value, claim: &Claim<'_>, signer: &Signer<'_>) -> Result<(), String> {
    let digest = claim.digest.ok_or("no artifact digest")?;
    check(
        text(spec, &["data", "hash", "algorithm"])? == "sha256"
            && text(spec, &["data", "hash", "value"])? == hex::encode(digest),
        "it records another artifact digest",
    )?;
    check(
        b64(
            text(spec, &["signature", "content"])?,
            "the entry's signature",
        )? == claim.signature,
        "it records another signature",
    )?;
    let pem = b64(
        text(spec, &["signature", "publicKey", "content"])?,
        "the entry's key",
    )?;
    check(
        is_signer(&pem_der(&pem)?, signer),
        "it records another certificate or key",
    )
}

fn hashedrekord_v2(spec: &Value, claim: &Claim<'_>, signer: &Signer<'_>) -> Result<(), String> {
    let spec = field(spec, &["hashedRekordV002"])?;
    let expected = match claim.dsse {
        Some((t, p)) => crypto::sha256(&pae(t, p)),
        None => claim.digest.ok_or("no artifact digest")?,
    };
    check(
        b64(text(spec, &["data", "digest"])?, "the entry's digest")? == expected,
        "it records another digest",
    )?;
    check(
        b64(
            text(spec, &["signature", "content"])?,
            "the entry's signature",
        )? == claim.signature,
        "it records another signature",
    )?;
    check(
        verifier_v2(field(spec, &["signature", "verifier"])?, signer)?,
        "it records another certificate or key",
    )
}

fn dsse_v1(
    spec: &Value,
    claim: &Claim<'_>,
    payload: &[u8],
    signer: &Signer<'_>,
) -> Result<(), String> {
    check(
        text(spec, &["payloadHash", "algorithm"])? == "sha256"
            && text(spec, &["payloadHash", "value"])? == hex::encode(crypto::sha256(payload)),
        "it records another DSSE payload",
    )?;
    let sigs = field(spec, &["signatures"])?
        .as_array()
        .ok_or("no signatures")?;
    let matching = sigs.iter().any(|s| {
        let sig = s
            .get("signature")
            .and_then(Value::as_str)
            .map(|t| b64(t, "sig"));
        let ver = s
            .get("verifier")
            .and_then(Value::as_str)
            .map(|t| b64(t, "verifier"));
        matches!((sig, ver), (Some(Ok(sig)), Some(Ok(ver)))
                    if sig == claim.signature && pem_der(&ver).is_ok_and(|d| is_signer(&d, signer)))
    });
    check(
        sigs.len() == 1 && matching,
        "it records another DSSE signature or signer",
    )
}

fn dsse_v2(
    spec: &Value,
    claim: &Claim<'_>,
    payload: &[u8],
    signer: &Signer<'_>,
) -> Result<(), String> {
    let spec = field(spec, &["dsseV002"])?;
    check(
        b64(text(spec, &["payloadHash", "digest"])?, "the payload hash")?
            == crypto::sha256(payload),
        "it records another DSSE payload",
    )?;
    let sigs = field(spec, &["signatures"])?
        .as_array()
        .ok_or("no signatures")?;
    let mut matching = false;
    for s in sigs {
        let sig = b64(text(s, &["content"])?, "the entry's signature")?;
        matching |= sig == claim.signature && verifier_v2(field(s, &["verifier"])?, signer)?;
    }
    check(
        sigs.len() == 1 && matching,
        "it records another DSSE signature or signer",
    )
}

fn intoto_v2(
    spec: &Value,
    claim: &Claim<'_>,
    (payload_type, payload): (&str, &[u8]),
    signer: &Signer<'_>,
) -> Result<(), String> {
    let env = field(spec, &["content", "envelope"])?;
    let logged = b64(text(env, &["payload"])?, "the entry's payload")?;
    let logged = b64(&String::from_utf8_lossy(&logged), "the entry's payload")?;
    check(
        logged == payload && text(env, &["payloadType"])? == payload_type,
        "it records another in-toto payload",
    )?;
    check(
        text(spec, &["content", "payloadHash", "value"])? == hex::encode(crypto::sha256(payload)),
        "it records another payload hash",
    )?;
    let sigs = field(env, &["signatures"])?
        .as_array()
        .ok_or("no signatures")?;
    let mut matching = false;
    for s in sigs {
        // intoto 0.0.2 encodes the signature in base64 twice; anything else is not ours.
        let sig = b64(text(s, &["sig"])?, "the entry's signature")?;
        let sig = b64(&String::from_utf8_lossy(&sig), "the entry's signature").unwrap_or_default();
        let key = pem_der(&b64(text(s, &["publicKey"])?, "the entry's key")?)?;
        matching |= sig == claim.signature && is_signer(&key, signer);
    }
    check(
        sigs.len() == 1 && matching,
        "it records another signature or signer",
    )
}

fn verifier_v2(v: &Value, signer: &Signer<'_>) -> Result<bool, String> {
    if let Some(c) = v.get("x509Certificate") {
        return Ok(is_signer(
            &b64(text(c, &["rawBytes"])?, "the entry's certificate")?,
            signer,
        ));
    }
    if let Some(k) = v.get("publicKey") {
        return Ok(is_signer(
            &b64(text(k, &["rawBytes"])?, "the entry's key")?,
            signer,
        ));
    }
    Err("the log entry names no verifier".into())
}

/// The canonical JSON a Rekor v1 signed entry timestamp signs.
#[must_use]
pub fn set_payload(entry: &Entry, integrated_time: i64) -> Vec<u8> {
    let body = base64::engine::general_purpose::STANDARD.encode(&entry.body);
    format!(
        r#"{{"body":"{body}","integratedTime":{integrated_time},"logID":"{}","logIndex":{}}}"#,
        hex::encode(&entry.log_id),
        entry.log_index
    )
    .into_bytes()
}

/// Verifies the signed entry timestamp: the log's promise that it integrated the entry at
/// its integrated time.
pub fn verify_set(entry: &Entry, log: &Log) -> Result<i64, String> {
    let set = entry
        .set
        .as_ref()
        .ok_or("the log entry has no signed entry timestamp")?;
    let t = entry
        .integrated_time
        .ok_or("the log entry has a signed entry timestamp but no integrated time")?;
    if crypto::verify(&log.key, Hash::Sha256, &set_payload(entry, t), set) {
        Ok(t)
    } else {
        Err(format!(
            "the signed entry timestamp does not verify with the key of {}",
            log.base_url
        ))
    }
}

fn node(left: &[u8], right: &[u8]) -> [u8; 32] {
    crypto::sha256(&[&[1u8][..], left, right].concat())
}

/// The root an RFC 6962 inclusion proof leads to from a leaf hash (RFC 9162 §2.1.3.2).
pub fn root_from_proof(
    index: u64,
    size: u64,
    leaf: [u8; 32],
    proof: &[Vec<u8>],
) -> Result<[u8; 32], String> {
    if index >= size {
        return Err(format!(
            "the inclusion proof's index {index} is not within its tree of size {size}"
        ));
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = leaf;
    for p in proof {
        if s == 0 {
            return Err("the inclusion proof has more hashes than its tree has levels".into());
        }
        if f & 1 == 1 || f == s {
            r = node(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err("the inclusion proof has fewer hashes than its tree has levels".into());
    }
    Ok(r)
}

/// Verifies the inclusion proof of `body` and the checkpoint it is rooted in.
pub fn verify_inclusion(entry: &Entry, proof: &Proof, log: &Log) -> Result<(), String> {
    if proof.log_index != entry.log_index && entry.integrated_time.is_none() {
        return Err("the inclusion proof is for another log index than the entry".into());
    }
    let leaf = crypto::sha256(&[&[0u8][..], &entry.body].concat());
    let root = root_from_proof(proof.log_index, proof.tree_size, leaf, &proof.hashes)?;
    if root.as_slice() != proof.root_hash {
        return Err("the inclusion proof does not lead to its root hash: the entry is not proven to be in the log".into());
    }
    let text = proof
        .checkpoint
        .as_deref()
        .ok_or("the inclusion proof has no checkpoint")?;
    let cp = super::checkpoint::Checkpoint::parse(text)?;
    cp.verify(log)?;
    if cp.size != proof.tree_size || cp.root_hash != proof.root_hash {
        return Err("the checkpoint is for another tree than the inclusion proof".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(n: u8) -> [u8; 32] {
        crypto::sha256(&[0, n])
    }

    #[test]
    fn an_inclusion_proof_leads_to_the_root_only_when_untampered() {
        // A tree of five leaves: root = H(H(H(0,1),H(2,3)), 4).
        let l: Vec<[u8; 32]> = (0..5).map(leaf).collect();
        let n01 = node(&l[0], &l[1]);
        let n23 = node(&l[2], &l[3]);
        let n0123 = node(&n01, &n23);
        let root = node(&n0123, &l[4]);
        let proof = vec![l[3].to_vec(), n01.to_vec(), l[4].to_vec()];
        assert_eq!(root_from_proof(2, 5, l[2], &proof).unwrap(), root);
        assert_eq!(
            root_from_proof(4, 5, l[4], &[n0123.to_vec()]).unwrap(),
            root
        );
        let mut bad = proof.clone();
        bad[1][0] ^= 1;
        assert_ne!(root_from_proof(2, 5, l[2], &bad).unwrap(), root);
        assert!(root_from_proof(5, 5, l[2], &proof).is_err());
        assert!(root_from_proof(2, 5, l[2], &proof[..2]).is_err());
    }

    #[test]
    fn the_set_payload_is_canonical_json_with_sorted_keys() {
        let entry = Entry {
            log_index: 7,
            log_id: vec![0xab, 0xcd],
            kind: "hashedrekord".into(),
            version: "0.0.1".into(),
            integrated_time: Some(1_700_000_000),
            set: None,
            proof: None,
            body: b"{}".to_vec(),
        };
        assert_eq!(
            String::from_utf8(set_payload(&entry, 1_700_000_000)).unwrap(),
            r#"{"body":"e30=","integratedTime":1700000000,"logID":"abcd","logIndex":7}"#
        );
    }
}
