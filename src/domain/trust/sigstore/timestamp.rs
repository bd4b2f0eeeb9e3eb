//! RFC 3161 timestamps: a timestamp authority's countersignature proving the bundle's
//! signature existed at its `genTime`. The token's CMS `SignedData` must be signed (through
//! its signed attributes) by a certificate chaining to a timestamp authority of the trusted
//! root that is trusted at that time, and its message imprint must be the hash of the
//! bundle's signature bytes.

use super::crypto::{self, Hash};
use super::der::{self, Reader};
use super::root::TrustedRoot;
use super::x509::{self, Cert};

const SIGNED_DATA: &str = "1.2.840.113549.1.7.2";
const TST_INFO: &str = "1.2.840.113549.1.9.16.1.4";
const MESSAGE_DIGEST: &str = "1.2.840.113549.1.9.4";

/// Verifies one timestamp over `signature`; the unix seconds it proves.
pub fn verify(token: &[u8], signature: &[u8], root: &TrustedRoot) -> Result<i64, String> {
    let content_info = content_info(token)?;
    let mut ci = der::sequence(content_info, "the timestamp token")?;
    if ci.expect(der::OID, "the token's content type")?.content != der::oid(SIGNED_DATA).as_slice()
    {
        return Err("the timestamp token is not CMS SignedData".into());
    }
    let explicit = ci.expect(0xa0, "the token's content")?;
    let mut sd = der::sequence(explicit.content, "the timestamp's SignedData")?;
    sd.expect(der::INTEGER, "the SignedData version")?;
    sd.expect(der::SET, "the SignedData digest algorithms")?;
    let mut encap = sd.sequence("the encapsulated content")?;
    if encap
        .expect(der::OID, "the encapsulated content type")?
        .content
        != der::oid(TST_INFO).as_slice()
    {
        return Err("the timestamp token does not hold a TSTInfo".into());
    }
    let wrapped = encap.expect(0xa0, "the encapsulated TSTInfo")?;
    let tst_info = Reader::new(wrapped.content)
        .expect(der::OCTET_STRING, "the TSTInfo")?
        .content;
    let mut embedded: Vec<Vec<u8>> = Vec::new();
    if let Some(certs) = sd.optional(0xa0)? {
        let mut r = Reader::new(certs.content);
        while !r.is_empty() {
            embedded.push(r.any()?.raw.to_vec());
        }
    }
    sd.optional(0xa1)?;
    let mut signers = Reader::new(sd.expect(der::SET, "the signer infos")?.content);
    let mut si = signers.sequence("a signer info")?;
    si.expect(der::INTEGER, "the signer info version")?;
    si.any()?; // sid: which certificate; every candidate is tried against the signature.
    let digest_alg = Hash::of_algorithm(
        si.sequence("the digest algorithm")?
            .expect(der::OID, "a digest algorithm OID")?
            .content,
    )?;
    let attrs = si
        .optional(0xa0)?
        .ok_or("the timestamp's signer info has no signed attributes")?;
    let sig_alg_oid = si
        .sequence("the signature algorithm")?
        .expect(der::OID, "a signature algorithm OID")?
        .content;
    let sig_hash = Hash::of_algorithm(sig_alg_oid).unwrap_or(digest_alg);
    let sig = si
        .expect(der::OCTET_STRING, "the timestamp's signature")?
        .content;

    check_message_digest(attrs.content, &digest_alg.digest(tst_info))?;
    let gen_time = check_tst_info(tst_info, signature)?;

    // The signed attributes are signed as a SET, not with their implicit [0] tag.
    let mut signed_attrs = attrs.raw.to_vec();
    signed_attrs[0] = der::SET;
    let mut candidates: Vec<Vec<u8>> = embedded.clone();
    candidates.extend(root.tsas.iter().map(|a| a.chain[0].clone()));
    let mut reason = "no certificate of the timestamp or the trusted root signed it".to_owned();
    for raw in &candidates {
        let Ok(cert) = Cert::parse(raw) else { continue };
        let Ok(key) = crypto::key_from_spki(cert.spki) else {
            continue;
        };
        if !crypto::verify(&key, sig_hash, &signed_attrs, sig) {
            continue;
        }
        if !x509::allows_time_stamping(&cert)? {
            "the certificate that signed it is not for time stamping".clone_into(&mut reason);
            continue;
        }
        match x509::chain_to(
            &cert,
            &embedded,
            &root.tsas,
            gen_time,
            "timestamp authority",
        ) {
            Ok(_) => return Ok(gen_time),
            Err(e) => reason = e,
        }
    }
    Err(format!("the RFC 3161 timestamp is not trusted: {reason}"))
}

/// The token inside a `TimeStampResp`, or the token itself.
fn content_info(bytes: &[u8]) -> Result<&[u8], String> {
    let mut outer = der::sequence(bytes, "the RFC 3161 timestamp")?;
    let first = outer.any()?;
    if first.tag == der::OID {
        return Ok(bytes);
    }
    let status = Reader::new(first.content).expect(der::INTEGER, "the timestamp status")?;
    if !matches!(status.content, [0 | 1]) {
        return Err("the timestamp response reports that no timestamp was granted".into());
    }
    Ok(outer.expect(der::SEQUENCE, "the timestamp token")?.raw)
}

fn check_message_digest(attrs: &[u8], expected: &[u8]) -> Result<(), String> {
    let oid = der::oid(MESSAGE_DIGEST);
    let mut r = Reader::new(attrs);
    while !r.is_empty() {
        let mut attr = r.sequence("a signed attribute")?;
        if attr.expect(der::OID, "an attribute type")?.content != oid.as_slice() {
            continue;
        }
        let values = attr.expect(der::SET, "the attribute values")?;
        let digest = Reader::new(values.content).expect(der::OCTET_STRING, "a message digest")?;
        return if digest.content == expected {
            Ok(())
        } else {
            Err("the timestamp's signed message digest does not match its TSTInfo".into())
        };
    }
    Err("the timestamp's signed attributes have no message digest".into())
}

/// Checks the `TSTInfo`'s message imprint against `signature`; returns its `genTime`.
fn check_tst_info(tst_info: &[u8], signature: &[u8]) -> Result<i64, String> {
    let mut t = der::sequence(tst_info, "the TSTInfo")?;
    t.expect(der::INTEGER, "the TSTInfo version")?;
    t.expect(der::OID, "the TSTInfo policy")?;
    let mut imprint = t.sequence("the message imprint")?;
    let hash = Hash::of_algorithm(
        imprint
            .sequence("the imprint's hash algorithm")?
            .expect(der::OID, "a hash algorithm OID")?
            .content,
    )?;
    let hashed = imprint
        .expect(der::OCTET_STRING, "the hashed message")?
        .content;
    if hashed != hash.digest(signature).as_slice() {
        return Err(
            "the RFC 3161 timestamp is over other bytes than the bundle's signature".into(),
        );
    }
    t.expect(der::INTEGER, "the TSTInfo serial number")?;
    der::time(&t.expect(der::GENERALIZED_TIME, "the TSTInfo genTime")?)
}
