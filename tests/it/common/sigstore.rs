//! A Sigstore instance of the test's own, built to the published formats: a Fulcio-like CA
//! issuing short-lived code-signing certificates for an OIDC identity (the issuer in
//! Fulcio's extension, the subject as a URI SAN, an SCT from a CT log embedded), a Rekor-like
//! log (a `dsse` 0.0.1 entry with its signed entry timestamp, inclusion proof and signed-note
//! checkpoint), and the `trusted_root.json` that trusts them. It signs images as cosign 3
//! does: a Sigstore bundle v0.3 whose DSSE envelope holds an in-toto statement of predicate
//! type `https://sigstore.dev/cosign/sign/v1` naming the image digest.

use base64::Engine as _;
use p256::ecdsa::SigningKey;
use p256::pkcs8::{DecodePrivateKey as _, EncodePublicKey as _};
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, PublicKeyData as _, SanType,
};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use signature::Signer as _;

const ISSUER_OID: &[u64] = &[1, 3, 6, 1, 4, 1, 57264, 1, 1];
const SCT_OID: &[u64] = &[1, 3, 6, 1, 4, 1, 11129, 2, 4, 2];
pub const SIGN_PREDICATE: &str = "https://sigstore.dev/cosign/sign/v1";
const REKOR: &str = "rekor.test.example";

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn sign_der(key: &SigningKey, message: &[u8]) -> Vec<u8> {
    let sig: p256::ecdsa::Signature = key.sign(message);
    sig.to_der().as_bytes().to_vec()
}

fn pem(der: &[u8]) -> String {
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        b64(der)
    )
}

/// An in-toto statement about image `digest` (`sha256:…`), as JSON bytes.
fn statement(digest: &str, predicate_type: &str, predicate: &Value) -> Vec<u8> {
    json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "image", "digest": {"sha256": digest.strip_prefix("sha256:").unwrap()}}],
        "predicateType": predicate_type,
        "predicate": predicate,
    })
    .to_string()
    .into_bytes()
}

/// DSSE's pre-authentication encoding of `payload`.
fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

fn spki(key: &SigningKey) -> Vec<u8> {
    key.verifying_key()
        .to_public_key_der()
        .unwrap()
        .as_bytes()
        .to_vec()
}

pub fn now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

/// A certificate time at `unix` seconds (rcgen's time type, which it does not re-export).
macro_rules! at {
    ($unix:expr) => {
        rcgen::date_time_ymd(1970, 1, 1)
            + std::time::Duration::from_secs(u64::try_from($unix).unwrap())
    };
}
pub(crate) use at;

/// The first element of a DER SEQUENCE, raw (a certificate's `tbsCertificate`).
fn first_element(der: &[u8]) -> Vec<u8> {
    fn header(b: &[u8]) -> (usize, usize) {
        if b[1] < 0x80 {
            (2, usize::from(b[1]))
        } else {
            let n = usize::from(b[1] & 0x7f);
            let len = b[2..2 + n]
                .iter()
                .fold(0, |l, &x| (l << 8) | usize::from(x));
            (2 + n, len)
        }
    }
    let (outer, _) = header(der);
    let inner = &der[outer..];
    let (h, len) = header(inner);
    inner[..h + len].to_vec()
}

/// How a test certificate and its log entry differ from a good one.
#[derive(Clone, Copy)]
pub struct Options {
    /// The certificate's validity, in seconds from now.
    pub valid: (i64, i64),
    /// When the log integrated the entry, in seconds from now.
    pub logged: i64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            valid: (-60, 600),
            logged: -30,
        }
    }
}

pub struct TestSigstore {
    ca_key: KeyPair,
    ca_params: CertificateParams,
    ca_der: Vec<u8>,
    ct: SigningKey,
    rekor: SigningKey,
}

impl TestSigstore {
    pub fn new() -> Self {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "test fulcio");
        ca_params.not_before = at!(now() - 86_400);
        ca_params.not_after = at!(now() + 86_400);
        let ca_der = ca_params.self_signed(&ca_key).unwrap().der().to_vec();
        let key = || {
            let mut seed = [0u8; 32];
            rand::fill(&mut seed);
            SigningKey::from_slice(&seed).unwrap()
        };
        Self {
            ca_key,
            ca_params,
            ca_der,
            ct: key(),
            rekor: key(),
        }
    }

    fn log(key: &SigningKey, url: &str) -> Value {
        let spki = spki(key);
        json!({
            "baseUrl": url,
            "hashAlgorithm": "SHA2_256",
            "publicKey": {
                "rawBytes": b64(&spki),
                "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                "validFor": {"start": "2020-01-01T00:00:00Z"}
            },
            "logId": {"keyId": b64(&sha256(&spki))}
        })
    }

    /// The `trusted_root.json` that trusts this instance.
    pub fn trusted_root(&self) -> Value {
        json!({
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [Self::log(&self.rekor, &format!("https://{REKOR}"))],
            "certificateAuthorities": [{
                "subject": {"organization": "test", "commonName": "test fulcio"},
                "uri": "https://fulcio.test.example",
                "certChain": {"certificates": [{"rawBytes": b64(&self.ca_der)}]},
                "validFor": {"start": "2020-01-01T00:00:00Z"}
            }],
            "ctlogs": [Self::log(&self.ct, "https://ct.test.example")],
            "timestampAuthorities": []
        })
    }

    /// A leaf certificate for `issuer` and `subject` with an embedded SCT, and its key.
    fn certificate(&self, issuer: &str, subject: &str, o: Options) -> (Vec<u8>, SigningKey) {
        let leaf_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.serial_number = Some(vec![0x2a, 7, 7].into());
        params.not_before = at!(now() + o.valid.0);
        params.not_after = at!(now() + o.valid.1);
        params.subject_alt_names = vec![SanType::URI(subject.try_into().unwrap())];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
        params.custom_extensions = vec![CustomExtension::from_oid_content(
            ISSUER_OID,
            issuer.as_bytes().to_vec(),
        )];
        let ca = Issuer::from_params(&self.ca_params, &self.ca_key);
        let precert = params.signed_by(&leaf_key, &ca).unwrap();
        let tbs = first_element(precert.der());
        // The CT log's signed certificate timestamp over the precertificate (RFC 6962).
        let timestamp = u64::try_from((now() + o.valid.0) * 1000)
            .unwrap()
            .to_be_bytes();
        let mut signed = vec![0u8, 0];
        signed.extend_from_slice(&timestamp);
        signed.extend_from_slice(&[0, 1]);
        signed.extend_from_slice(&sha256(&self.ca_key.subject_public_key_info()));
        signed.extend_from_slice(&u32::try_from(tbs.len()).unwrap().to_be_bytes()[1..]);
        signed.extend_from_slice(&tbs);
        signed.extend_from_slice(&[0, 0]);
        let signature = sign_der(&self.ct, &signed);
        let mut sct = vec![0u8];
        sct.extend_from_slice(&sha256(&spki(&self.ct)));
        sct.extend_from_slice(&timestamp);
        sct.extend_from_slice(&[0, 0, 4, 3]);
        sct.extend_from_slice(&u16::try_from(signature.len()).unwrap().to_be_bytes());
        sct.extend_from_slice(&signature);
        let mut list = u16::try_from(sct.len()).unwrap().to_be_bytes().to_vec();
        list.extend_from_slice(&sct);
        let mut octets = u16::try_from(list.len()).unwrap().to_be_bytes().to_vec();
        octets.extend_from_slice(&list);
        let mut value = vec![0x04, u8::try_from(octets.len()).unwrap()];
        value.extend_from_slice(&octets);
        params
            .custom_extensions
            .push(CustomExtension::from_oid_content(SCT_OID, value));
        let cert = params.signed_by(&leaf_key, &ca).unwrap();
        let key = SigningKey::from_pkcs8_der(&leaf_key.serialize_der()).unwrap();
        (cert.der().to_vec(), key)
    }

    /// The log entry of a DSSE envelope: body, SET, inclusion proof of a one-leaf tree and
    /// its checkpoint.
    fn entry(&self, payload: &[u8], signature: &[u8], cert_der: &[u8], logged: i64) -> Value {
        let pem = format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            b64(cert_der)
        );
        let body = json!({
            "apiVersion": "0.0.1",
            "kind": "dsse",
            "spec": {
                "payloadHash": {"algorithm": "sha256", "value": hex::encode(sha256(payload))},
                "signatures": [{"signature": b64(signature), "verifier": b64(pem.as_bytes())}]
            }
        })
        .to_string()
        .into_bytes();
        let log_id = sha256(&spki(&self.rekor));
        let integrated = now() + logged;
        let set = sign_der(
            &self.rekor,
            format!(
                r#"{{"body":"{}","integratedTime":{integrated},"logID":"{}","logIndex":0}}"#,
                b64(&body),
                hex::encode(log_id)
            )
            .as_bytes(),
        );
        let root = sha256(&[&[0u8][..], &body].concat());
        let note = format!("{REKOR} - 1\n1\n{}\n", b64(&root));
        let mut line = log_id[..4].to_vec();
        line.extend_from_slice(&sign_der(&self.rekor, note.as_bytes()));
        let checkpoint = format!("{note}\n\u{2014} {REKOR} {}\n", b64(&line));
        json!({
            "logIndex": "0",
            "logId": {"keyId": b64(&log_id)},
            "kindVersion": {"kind": "dsse", "version": "0.0.1"},
            "integratedTime": integrated.to_string(),
            "inclusionPromise": {"signedEntryTimestamp": b64(&set)},
            "inclusionProof": {
                "logIndex": "0",
                "rootHash": b64(&root),
                "treeSize": "1",
                "hashes": [],
                "checkpoint": {"envelope": checkpoint}
            },
            "canonicalizedBody": b64(&body)
        })
    }

    /// cosign 2's keyless signature of `payload` (a simple-signing payload) by the identity
    /// (`issuer`, `subject`): the signature (base64), the certificate and its chain (PEM),
    /// and the Rekor bundle annotation (a `hashedrekord` entry and its signed entry
    /// timestamp) — the annotations of the `.sig` layer.
    pub fn sign_legacy(
        &self,
        payload: &[u8],
        issuer: &str,
        subject: &str,
        o: Options,
    ) -> (String, String, String, String) {
        let (cert, key) = self.certificate(issuer, subject, o);
        let signature = sign_der(&key, payload);
        let body = json!({
            "apiVersion": "0.0.1",
            "kind": "hashedrekord",
            "spec": {
                "data": {"hash": {"algorithm": "sha256", "value": hex::encode(sha256(payload))}},
                "signature": {"content": b64(&signature), "publicKey": {"content": b64(pem(&cert).as_bytes())}}
            }
        });
        let bundle = self.rekor_annotation(&body, o);
        (b64(&signature), pem(&cert), pem(&self.ca_der), bundle)
    }

    /// cosign 2's keyless attestation of image `digest` (`attest` without a key): the DSSE
    /// envelope (JSON), the certificate and chain (PEM), and the Rekor bundle annotation (an
    /// `intoto` 0.0.2 entry) — the `.att` layer and its annotations.
    pub fn attest_legacy(
        &self,
        digest: &str,
        issuer: &str,
        subject: &str,
        predicate_type: &str,
        predicate: &Value,
    ) -> (Vec<u8>, String, String, String) {
        let o = Options::default();
        let (cert, key) = self.certificate(issuer, subject, o);
        let payload_type = "application/vnd.in-toto+json";
        let statement = statement(digest, predicate_type, predicate);
        let signature = sign_der(&key, &pae(payload_type, &statement));
        let statement = String::from_utf8(statement).unwrap();
        let envelope = json!({
            "payloadType": payload_type,
            "payload": b64(statement.as_bytes()),
            "signatures": [{"keyid": "", "sig": b64(&signature)}],
        });
        let body = json!({
            "apiVersion": "0.0.2",
            "kind": "intoto",
            "spec": {"content": {
                "envelope": {
                    "payloadType": payload_type,
                    "payload": b64(b64(statement.as_bytes()).as_bytes()),
                    "signatures": [{"sig": b64(b64(&signature).as_bytes()), "publicKey": b64(pem(&cert).as_bytes())}],
                },
                "payloadHash": {"algorithm": "sha256", "value": hex::encode(sha256(statement.as_bytes()))},
            }}
        });
        let bundle = self.rekor_annotation(&body, o);
        (
            envelope.to_string().into_bytes(),
            pem(&cert),
            pem(&self.ca_der),
            bundle,
        )
    }

    /// cosign's `dev.sigstore.cosign/bundle` annotation for a log entry of `body`: the entry
    /// as Rekor answered it, and its signed entry timestamp.
    fn rekor_annotation(&self, body: &Value, o: Options) -> String {
        let body = body.to_string().into_bytes();
        let log_id = hex::encode(sha256(&spki(&self.rekor)));
        let integrated = now() + o.logged;
        let set = sign_der(
            &self.rekor,
            format!(
                r#"{{"body":"{}","integratedTime":{integrated},"logID":"{log_id}","logIndex":0}}"#,
                b64(&body)
            )
            .as_bytes(),
        );
        json!({
            "SignedEntryTimestamp": b64(&set),
            "Payload": {"body": b64(&body), "integratedTime": integrated, "logIndex": 0, "logID": log_id}
        })
        .to_string()
    }

    /// A cosign 3 signature bundle of image `digest` (`sha256:…`) by the identity
    /// (`issuer`, `subject`), the statement of predicate type `predicate`.
    pub fn sign(
        &self,
        digest: &str,
        issuer: &str,
        subject: &str,
        predicate: &str,
        o: Options,
    ) -> Vec<u8> {
        self.attest(digest, issuer, subject, predicate, &json!({}), o)
    }

    /// A bundle of an in-toto statement about image `digest` of predicate type
    /// `predicate_type` with `predicate`, by the identity (`issuer`, `subject`): what
    /// `cosign attest` and GitHub's attestation actions attach.
    pub fn attest(
        &self,
        digest: &str,
        issuer: &str,
        subject: &str,
        predicate_type: &str,
        predicate: &Value,
        o: Options,
    ) -> Vec<u8> {
        let (cert, key) = self.certificate(issuer, subject, o);
        let statement = statement(digest, predicate_type, predicate);
        let payload_type = "application/vnd.in-toto+json";
        let pae = pae(payload_type, &statement);
        let signature = sign_der(&key, &pae);
        json!({
            "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
            "verificationMaterial": {
                "certificate": {"rawBytes": b64(&cert)},
                "tlogEntries": [self.entry(&statement, &signature, &cert, o.logged)]
            },
            "dsseEnvelope": {
                "payload": b64(&statement),
                "payloadType": payload_type,
                "signatures": [{"sig": b64(&signature), "keyid": ""}]
            }
        })
        .to_string()
        .into_bytes()
    }
}
