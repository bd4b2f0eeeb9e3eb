//! Fulcio certificates: reading an X.509 certificate, chaining a signing certificate to a
//! certificate authority of the trusted root at a given time, the signer's identity (the
//! OIDC issuer extension and the subject alternative name), and the embedded signed
//! certificate timestamps (RFC 6962 precertificate SCTs) checked against the CT logs.

use super::crypto::{self, Hash};
use super::der::{self, Reader, Tlv};
use super::root::{Authority, TrustedRoot};

const EXT_SCT: &str = "1.3.6.1.4.1.11129.2.4.2";
const EXT_SAN: &str = "2.5.29.17";
const EXT_EKU: &str = "2.5.29.37";
const EXT_BASIC_CONSTRAINTS: &str = "2.5.29.19";
const EXT_ISSUER_V1: &str = "1.3.6.1.4.1.57264.1.1";
const EXT_ISSUER_V2: &str = "1.3.6.1.4.1.57264.1.8";
const CODE_SIGNING: &str = "1.3.6.1.5.5.7.3.3";
const TIME_STAMPING: &str = "1.3.6.1.5.5.7.3.8";

/// An extension: its OID (content bytes), criticality and value (the OCTET STRING content).
#[derive(Debug, Clone, Copy)]
pub struct Extension<'a> {
    pub oid: &'a [u8],
    pub value: &'a [u8],
}

/// A parsed certificate borrowing its DER.
#[derive(Debug, Clone)]
pub struct Cert<'a> {
    pub raw: &'a [u8],
    pub tbs: &'a [u8],
    tbs_fields: Vec<Tlv<'a>>,
    pub issuer: &'a [u8],
    pub subject: &'a [u8],
    pub not_before: i64,
    pub not_after: i64,
    pub spki: &'a [u8],
    sig_alg: &'a [u8],
    signature: &'a [u8],
    pub extensions: Vec<Extension<'a>>,
}

impl<'a> Cert<'a> {
    pub fn parse(raw: &'a [u8]) -> Result<Self, String> {
        let mut outer = der::sequence(raw, "a certificate")?;
        let tbs = outer.expect(der::SEQUENCE, "the certificate's to-be-signed part")?;
        let mut alg = outer.sequence("the certificate's signature algorithm")?;
        let sig_alg = alg.expect(der::OID, "a signature algorithm OID")?.content;
        let bits = outer.expect(der::BIT_STRING, "the certificate's signature")?;
        let signature = bits
            .content
            .split_first()
            .map(|(_, s)| s)
            .ok_or("the certificate's signature is empty")?;

        let mut fields = Vec::new();
        let mut r = Reader::new(tbs.content);
        while !r.is_empty() {
            fields.push(r.any()?);
        }
        // version [0] is optional; everything after it is positional.
        let at = usize::from(fields.first().is_some_and(|f| f.tag == 0xa0));
        let field = |i: usize, what: &str| {
            fields
                .get(at + i)
                .copied()
                .ok_or_else(|| format!("the certificate has no {what}"))
        };
        let issuer = field(2, "issuer")?.raw;
        let validity = field(3, "validity")?;
        let subject = field(4, "subject")?.raw;
        let spki = field(5, "public key")?.raw;
        let mut v = Reader::new(validity.content);
        let not_before = der::time(&v.any()?)?;
        let not_after = der::time(&v.any()?)?;
        let mut extensions = Vec::new();
        if let Some(exts) = fields.iter().find(|f| f.tag == 0xa3) {
            let mut list = der::sequence(exts.content, "the certificate's extensions")?;
            while !list.is_empty() {
                let mut e = list.sequence("an extension")?;
                let oid = e.expect(der::OID, "an extension OID")?.content;
                e.optional(0x01)?;
                let value = e.expect(der::OCTET_STRING, "an extension value")?.content;
                extensions.push(Extension { oid, value });
            }
        }
        Ok(Self {
            raw,
            tbs: tbs.raw,
            tbs_fields: fields,
            issuer,
            subject,
            not_before,
            not_after,
            spki,
            sig_alg,
            signature,
            extensions,
        })
    }

    #[must_use]
    pub fn extension(&self, dotted: &str) -> Option<&'a [u8]> {
        let oid = der::oid(dotted);
        self.extensions
            .iter()
            .find(|e| e.oid == oid.as_slice())
            .map(|e| e.value)
    }

    /// Whether `issuer`'s key signed this certificate.
    #[must_use]
    pub fn signed_by(&self, issuer: &Cert<'_>) -> bool {
        let Ok(key) = crypto::key_from_spki(issuer.spki) else {
            return false;
        };
        let Ok(hash) = Hash::of_algorithm(self.sig_alg) else {
            return false;
        };
        self.issuer == issuer.subject && crypto::verify(&key, hash, self.tbs, self.signature)
    }

    #[must_use]
    pub fn valid_at(&self, t: i64) -> bool {
        self.not_before <= t && t <= self.not_after
    }

    /// Whether the certificate is a CA's (basic constraints with `cA` true).
    #[must_use]
    pub fn is_ca(&self) -> bool {
        self.extension(EXT_BASIC_CONSTRAINTS).is_some_and(|v| {
            der::sequence(v, "basic constraints")
                .and_then(|mut r| r.optional(0x01))
                .is_ok_and(|b| b.is_some_and(|b| b.content == [0xff]))
        })
    }

    #[must_use]
    pub fn self_signed(&self) -> bool {
        self.issuer == self.subject
    }
}

/// Chains `leaf` to one of `authorities` trusted at `t`, every certificate valid at `t`.
/// Returns the certificate that issued the leaf (DER).
pub fn chain_to(
    leaf: &Cert<'_>,
    extra: &[Vec<u8>],
    authorities: &[Authority],
    t: i64,
    what: &str,
) -> Result<Vec<u8>, String> {
    if leaf.is_ca() {
        return Err(format!("the {what} certificate is a CA's, not a signer's"));
    }
    if !leaf.valid_at(t) {
        return Err(format!(
            "the {what} certificate is valid from {} to {} (unix seconds), not at {t}",
            leaf.not_before, leaf.not_after
        ));
    }
    let mut reasons = Vec::new();
    for a in authorities {
        if !a.valid.contains(t) {
            continue;
        }
        let mut pool: Vec<&[u8]> = extra.iter().map(Vec::as_slice).collect();
        pool.extend(a.chain.iter().map(Vec::as_slice));
        match build(leaf, &pool, &a.chain, t) {
            Ok(issuer) => return Ok(issuer),
            Err(e) => reasons.push(e),
        }
    }
    Err(if reasons.is_empty() {
        format!("no {what} authority of the trusted root is trusted at unix time {t}")
    } else {
        format!(
            "the {what} certificate does not chain to an authority of the trusted root: {}",
            reasons.join("; ")
        )
    })
}

fn build(leaf: &Cert<'_>, pool: &[&[u8]], anchors: &[Vec<u8>], t: i64) -> Result<Vec<u8>, String> {
    let mut current = leaf.clone();
    let mut issuer_of_leaf: Option<Vec<u8>> = None;
    for _ in 0..8 {
        if anchors.iter().any(|a| a.as_slice() == current.raw) && current.self_signed() {
            return issuer_of_leaf.ok_or_else(|| "the certificate is itself a root".into());
        }
        let next = pool
            .iter()
            .filter_map(|raw| Cert::parse(raw).ok())
            .find(|c| current.signed_by(c))
            .ok_or("no certificate of the authority signed it")?;
        if !next.is_ca() {
            return Err("it was signed by a certificate that is not a CA's".into());
        }
        if !next.valid_at(t) {
            return Err(format!(
                "an authority certificate is valid from {} to {}, not at {t}",
                next.not_before, next.not_after
            ));
        }
        if issuer_of_leaf.is_none() {
            issuer_of_leaf = Some(next.raw.to_vec());
        }
        if next.self_signed() && !anchors.iter().any(|a| a.as_slice() == next.raw) {
            return Err("it chains to a root that the trusted root does not hold".into());
        }
        current = next;
    }
    Err("the certificate chain is longer than 8".into())
}

/// The DER certificates of a PEM text; a sentence when it holds another kind of block.
pub(crate) fn pem_certificates(pem: &str) -> Result<Vec<Vec<u8>>, String> {
    use base64::Engine as _;
    let mut out = Vec::new();
    let mut body: Option<String> = None;
    for line in pem.lines().map(str::trim) {
        match line {
            "-----BEGIN CERTIFICATE-----" => body = Some(String::new()),
            "-----END CERTIFICATE-----" => {
                let b = body
                    .take()
                    .ok_or("an END CERTIFICATE line without its BEGIN")?;
                out.push(
                    base64::engine::general_purpose::STANDARD
                        .decode(b)
                        .map_err(|_| "a certificate in the PEM is not base64".to_owned())?,
                );
            }
            l if l.starts_with("-----BEGIN") => {
                return Err(format!("{l}: only certificates are expected here"));
            }
            l => {
                if let Some(b) = body.as_mut() {
                    b.push_str(l);
                }
            }
        }
    }
    Ok(out)
}

/// The OIDC issuer Fulcio recorded in the certificate.
#[must_use]
pub fn oidc_issuer(cert: &Cert<'_>) -> Option<String> {
    if let Some(v) = cert.extension(EXT_ISSUER_V2) {
        let mut r = Reader::new(v);
        let s = r.expect(0x0c, "a UTF8String").ok()?;
        return String::from_utf8(s.content.to_vec()).ok();
    }
    cert.extension(EXT_ISSUER_V1)
        .and_then(|v| String::from_utf8(v.to_vec()).ok())
}

/// The subject alternative names: URIs, e-mail addresses, DNS names, Fulcio's usernames.
pub fn subjects(cert: &Cert<'_>) -> Result<Vec<String>, String> {
    let Some(v) = cert.extension(EXT_SAN) else {
        return Ok(Vec::new());
    };
    let mut names = der::sequence(v, "the subject alternative names")?;
    let mut out = Vec::new();
    while !names.is_empty() {
        let n = names.any()?;
        let text = match n.tag {
            0x81 | 0x82 | 0x86 => n.content,
            0xa0 => {
                let mut other = Reader::new(n.content);
                other.expect(der::OID, "an otherName type")?;
                let explicit = other.expect(0xa0, "an otherName value")?;
                Reader::new(explicit.content).any()?.content
            }
            _ => continue,
        };
        out.push(String::from_utf8_lossy(text).into_owned());
    }
    Ok(out)
}

/// Whether the certificate may sign code (its extended key usage names code signing).
pub fn allows_code_signing(cert: &Cert<'_>) -> Result<bool, String> {
    has_purpose(cert, CODE_SIGNING)
}

/// Whether the certificate may sign timestamps (its extended key usage names time stamping).
pub fn allows_time_stamping(cert: &Cert<'_>) -> Result<bool, String> {
    has_purpose(cert, TIME_STAMPING)
}

fn has_purpose(cert: &Cert<'_>, purpose: &str) -> Result<bool, String> {
    let Some(v) = cert.extension(EXT_EKU) else {
        return Ok(false);
    };
    let mut list = der::sequence(v, "the extended key usage")?;
    let wanted = der::oid(purpose);
    while !list.is_empty() {
        if list.expect(der::OID, "a key purpose")?.content == wanted.as_slice() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Verifies the certificate's embedded SCTs: at least one must be signed by a CT log of the
/// trusted root, over the precertificate `issuer` issued.
pub fn verify_scts(cert: &Cert<'_>, issuer: &[u8], root: &TrustedRoot) -> Result<(), String> {
    let value = cert.extension(EXT_SCT).ok_or(
        "the signing certificate carries no signed certificate timestamp (SCT) from a CT log",
    )?;
    let list = Reader::new(value)
        .expect(der::OCTET_STRING, "the SCT list")?
        .content;
    let issuer = Cert::parse(issuer)?;
    let issuer_key_hash = crypto::sha256(issuer.spki);
    let tbs = precert_tbs(cert)?;
    let mut r = Tls(list);
    let mut all = Tls(r.vec16()?);
    let mut reasons = Vec::new();
    while !all.0.is_empty() {
        let sct = all.vec16()?;
        match verify_sct(sct, &issuer_key_hash, &tbs, root) {
            Ok(()) => return Ok(()),
            Err(e) => reasons.push(e),
        }
    }
    Err(format!(
        "no embedded SCT verifies with a CT log of the trusted root: {}",
        reasons.join("; ")
    ))
}

fn verify_sct(
    sct: &[u8],
    issuer_key_hash: &[u8; 32],
    tbs: &[u8],
    root: &TrustedRoot,
) -> Result<(), String> {
    let mut r = Tls(sct);
    let version = r.take(1)?[0];
    if version != 0 {
        return Err(format!("an SCT has version {version}, not v1"));
    }
    let log_id = r.take(32)?;
    let timestamp = r.take(8)?;
    let extensions = r.vec16()?;
    let _hash_alg = r.take(1)?;
    let _sig_alg = r.take(1)?;
    let signature = r.vec16()?;
    let log = root
        .ctlogs
        .iter()
        .find(|l| l.key_id == log_id)
        .ok_or("an SCT is from a CT log the trusted root does not hold")?;
    let ms = u64::from_be_bytes(
        timestamp
            .try_into()
            .map_err(|_| "an SCT timestamp is malformed")?,
    );
    let secs = i64::try_from(ms / 1000).unwrap_or(i64::MAX);
    if !log.valid.contains(secs) {
        return Err(format!(
            "an SCT is from {} outside the window it is trusted in",
            log.base_url
        ));
    }
    let mut signed = vec![0u8, 0u8];
    signed.extend_from_slice(timestamp);
    signed.extend_from_slice(&[0, 1]);
    signed.extend_from_slice(issuer_key_hash);
    let len = u32::try_from(tbs.len()).map_err(|_| "the certificate is too large")?;
    signed.extend_from_slice(&len.to_be_bytes()[1..]);
    signed.extend_from_slice(tbs);
    let ext_len = u16::try_from(extensions.len()).map_err(|_| "SCT extensions are too large")?;
    signed.extend_from_slice(&ext_len.to_be_bytes());
    signed.extend_from_slice(extensions);
    if crypto::verify(&log.key, Hash::Sha256, &signed, signature) {
        Ok(())
    } else {
        Err(format!(
            "an SCT's signature does not verify with the key of {}",
            log.base_url
        ))
    }
}

/// The to-be-signed certificate as the CT log saw it: without the SCT list extension.
fn precert_tbs(cert: &Cert<'_>) -> Result<Vec<u8>, String> {
    let sct = der::oid(EXT_SCT);
    let mut content = Vec::new();
    for f in &cert.tbs_fields {
        if f.tag != 0xa3 {
            content.extend_from_slice(f.raw);
            continue;
        }
        let mut list = der::sequence(f.content, "the certificate's extensions")?;
        let mut kept = Vec::new();
        while !list.is_empty() {
            let e = list.expect(der::SEQUENCE, "an extension")?;
            let oid = Reader::new(e.content).expect(der::OID, "an extension OID")?;
            if oid.content != sct.as_slice() {
                kept.extend_from_slice(e.raw);
            }
        }
        let seq = [der::header(der::SEQUENCE, kept.len()), kept].concat();
        content.extend(der::header(0xa3, seq.len()));
        content.extend(seq);
    }
    Ok([der::header(der::SEQUENCE, content.len()), content].concat())
}

/// A reader of TLS presentation-language structures (RFC 5246 §4).
struct Tls<'a>(&'a [u8]);

impl<'a> Tls<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("an SCT list is truncated".into());
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn vec16(&mut self) -> Result<&'a [u8], String> {
        let len = self.take(2)?;
        self.take(usize::from(u16::from_be_bytes([len[0], len[1]])))
    }
}
