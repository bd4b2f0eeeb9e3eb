//! Notation (Notary Project) signatures, made here to the Notary Project's signature
//! specification: a flattened JWS envelope (and a `COSE_Sign1` one) over
//! `{"targetArtifact": …}` signed ES256 by the key of an X.509 code-signing certificate
//! (`x5c` / `x5chain`, leaf first), attached as a referrer of
//! artifact type `application/vnd.cncf.notary.signature`; the CA and certificates are made
//! with rcgen. A feed that requires a signature chaining to a trust store takes only those,
//! in the real binary on both backends.

use base64::Engine as _;
use p256::pkcs8::DecodePrivateKey as _;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use serde_json::{Value, json};
use signature::Signer as _;

use crate::common::sigstore::{at, b64, now};
use crate::common::{OCI_MANIFEST, run};
use crate::release::{Backend, Registry};
use semdock::model::Digest;

const NOTATION: &str = "application/vnd.cncf.notary.signature";
const JWS: &str = "application/jose+json";

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A CA of the test's own, and the code-signing certificates it issues.
struct Ca {
    key: KeyPair,
    params: CertificateParams,
    pem: String,
    der: Vec<u8>,
}

impl Ca {
    fn new(name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.not_before = at!(now() - 86_400);
        params.not_after = at!(now() + 86_400 * 365);
        let cert = params.self_signed(&key).unwrap();
        Self {
            pem: cert.pem(),
            der: cert.der().to_vec(),
            key,
            params,
        }
    }

    /// A leaf for `usage`, valid `valid` seconds from now; its DER and key.
    fn leaf(
        &self,
        usage: ExtendedKeyUsagePurpose,
        valid: (i64, i64),
    ) -> (Vec<u8>, p256::ecdsa::SigningKey) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "release signer");
        params.extended_key_usages = vec![usage];
        params.not_before = at!(now() + valid.0);
        params.not_after = at!(now() + valid.1);
        let cert = params
            .signed_by(&key, &Issuer::from_params(&self.params, &self.key))
            .unwrap();
        let signing = p256::ecdsa::SigningKey::from_pkcs8_der(&key.serialize_der()).unwrap();
        (cert.der().to_vec(), signing)
    }

    /// `notation sign`'s JWS envelope of `digest` by a leaf of this CA.
    fn sign(&self, digest: &str, leaf: &(Vec<u8>, p256::ecdsa::SigningKey)) -> Value {
        let header = json!({
            "alg": "ES256",
            "cty": "application/vnd.cncf.notary.payload.v1+json",
            "io.cncf.notary.signingScheme": "notary.x509",
            "io.cncf.notary.signingTime": "2026-12-06T10:00:00Z",
            "crit": ["io.cncf.notary.signingScheme"]
        });
        let payload =
            json!({"targetArtifact": {"mediaType": OCI_MANIFEST, "digest": digest, "size": 1}});
        let protected = b64url(header.to_string().as_bytes());
        let payload = b64url(payload.to_string().as_bytes());
        let sig: p256::ecdsa::Signature = leaf.1.sign(format!("{protected}.{payload}").as_bytes());
        json!({
            "payload": payload,
            "protected": protected,
            "header": {"x5c": [b64(&leaf.0), b64(&self.der)], "io.cncf.notary.signingAgent": "semdock-tests"},
            "signature": b64url(&sig.to_bytes()),
        })
    }
}

fn cbor(v: &ciborium::Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(v, &mut out).unwrap();
    out
}

impl Ca {
    /// `notation sign --signature-format cose`'s envelope of `digest`: a `COSE_Sign1_Tagged`
    /// structure, ES256, the chain under label 33 (x5chain).
    fn sign_cose(&self, digest: &str, leaf: &(Vec<u8>, p256::ecdsa::SigningKey)) -> Vec<u8> {
        use ciborium::Value as C;
        let scheme = "io.cncf.notary.signingScheme";
        let protected = cbor(&C::Map(vec![
            (C::Integer(1.into()), C::Integer((-7).into())),
            (C::Integer(2.into()), C::Array(vec![C::Text(scheme.into())])),
            (
                C::Integer(3.into()),
                C::Text("application/vnd.cncf.notary.payload.v1+json".into()),
            ),
            (C::Text(scheme.into()), C::Text("notary.x509".into())),
            (
                C::Text("io.cncf.notary.signingTime".into()),
                C::Tag(1, Box::new(C::Integer(now().into()))),
            ),
        ]));
        let payload =
            json!({"targetArtifact": {"mediaType": OCI_MANIFEST, "digest": digest, "size": 1}})
                .to_string()
                .into_bytes();
        let input = cbor(&C::Array(vec![
            C::Text("Signature1".into()),
            C::Bytes(protected.clone()),
            C::Bytes(Vec::new()),
            C::Bytes(payload.clone()),
        ]));
        let sig: p256::ecdsa::Signature = leaf.1.sign(&input);
        cbor(&C::Tag(
            18,
            Box::new(C::Array(vec![
                C::Bytes(protected),
                C::Map(vec![(
                    C::Integer(33.into()),
                    C::Array(vec![C::Bytes(leaf.0.clone()), C::Bytes(self.der.clone())]),
                )]),
                C::Bytes(payload),
                C::Bytes(sig.to_bytes().to_vec()),
            ])),
        ))
    }
}

fn upload(r: &Registry, repo: &str, blob: &[u8]) -> Digest {
    let digest = Digest::of(blob);
    let res = r
        .admin()
        .post(&r.url(&format!("/v2/{repo}/blobs/uploads/?digest={digest}")))
        .send(blob)
        .unwrap();
    assert_eq!(res.status(), 201);
    digest
}

/// Attaches a JWS `envelope` to `repo@digest` as `notation sign` does.
fn attach(r: &Registry, repo: &str, digest: &str, envelope: &Value) {
    attach_envelope(r, repo, digest, &envelope.to_string().into_bytes(), JWS);
}

/// Attaches `bytes`, an envelope of `media_type`, to `repo@digest`.
fn attach_envelope(r: &Registry, repo: &str, digest: &str, bytes: &[u8], media_type: &str) {
    let layer = upload(r, repo, bytes);
    let config = upload(r, repo, b"{}");
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": NOTATION,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config.as_str(), "size": 2},
        "layers": [{"mediaType": media_type, "digest": layer.as_str(), "size": bytes.len()}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": digest, "size": 1},
        "annotations": {"io.cncf.notary.x509chain.thumbprint#S256": "[]"},
    });
    let body = serde_json::to_vec(&manifest).unwrap();
    let res = r
        .admin()
        .put(&r.url(&format!("/v2/{repo}/manifests/{}", Digest::of(&body))))
        .header("Content-Type", OCI_MANIFEST)
        .send(&body[..])
        .unwrap();
    assert_eq!(res.status(), 201);
}

#[allow(clippy::too_many_lines)] // one story, told in order
fn notation_release(backend: Backend) {
    let r = Registry::start(backend);
    for feed in ["staging", "prod"] {
        let (status, body) = r.json("POST", "/api/v1/feeds", &json!({"name": feed}));
        assert!(status == 201 || status == 409, "{body}");
    }
    let ca = Ca::new("acme code signing CA");
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("ca.pem");
    std::fs::write(&pem, &ca.pem).unwrap();
    let out = run(&mut r.cli(&["trust", "store", "add", "acme-ca", pem.to_str().unwrap()]));
    assert!(
        out.contains("trust store acme-ca (1 CA certificates)"),
        "{out}"
    );
    let good = ca.leaf(ExtendedKeyUsagePurpose::CodeSigning, (-60, 3600));
    // A signing certificate is not a CA: the store refuses it.
    let leaf_pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        b64(&good.0)
    );
    let (status, body) = r.json(
        "POST",
        "/api/v1/trust/stores",
        &json!({"name": "leaf", "pem": leaf_pem}),
    );
    assert_eq!(status, 400, "{body}");
    let out = run(&mut r.cli(&["trust", "policy", "prod", "--store", "acme-ca"]));
    assert!(
        out.contains("a certificate of trust store acme-ca"),
        "{out}"
    );

    let promote = |tag: &str, digest: &str| {
        r.json(
            "POST",
            "/api/v1/promotions",
            &json!({"from": format!("staging/web:{tag}"), "to": format!("prod/web:{tag}"), "expected_digest": digest}),
        )
    };
    let (_, signed) = r.push("staging/web", "7.0.0", "signed with notation");
    attach(&r, "staging/web", &signed, &ca.sign(&signed, &good));
    let (status, body) = promote("7.0.0", &signed);
    assert_eq!(status, 200, "{body}");
    let (_, verified) = r.get("/api/v1/verify?ref=prod/web:7.0.0");
    assert_eq!(
        verified["verified_stores"],
        json!(["acme-ca"]),
        "{verified}"
    );
    assert_eq!(verified["signatures"][0]["form"], "notation", "{verified}");

    let refused = |tag: &str, envelope_of: &dyn Fn(&str) -> Value| {
        let (_, digest) = r.push("staging/web", tag, &format!("build {tag}"));
        attach(&r, "staging/web", &digest, &envelope_of(&digest));
        let (status, body) = promote(tag, &digest);
        assert_eq!(status, 403, "{tag}: {body}");
        body["error"]["message"].as_str().unwrap().to_owned()
    };
    let expired = ca.leaf(ExtendedKeyUsagePurpose::CodeSigning, (-7200, -3600));
    let why = refused("7.1.0", &|d| ca.sign(d, &expired));
    assert!(why.contains("certificate is valid from"), "{why}");
    let server = ca.leaf(ExtendedKeyUsagePurpose::ServerAuth, (-60, 3600));
    let why = refused("7.2.0", &|d| ca.sign(d, &server));
    assert!(why.contains("not for code signing"), "{why}");
    let other = Ca::new("someone else's CA");
    let stranger = other.leaf(ExtendedKeyUsagePurpose::CodeSigning, (-60, 3600));
    let why = refused("7.3.0", &|d| other.sign(d, &stranger));
    assert!(why.contains("trust store acme-ca"), "{why}");
    let why = refused("7.4.0", &|_| ca.sign(&signed, &good));
    assert!(why.contains("signs another image"), "{why}");
    let why = refused("7.5.0", &|d| {
        let mut e = ca.sign(&signed, &good);
        let payload =
            json!({"targetArtifact": {"mediaType": OCI_MANIFEST, "digest": d, "size": 1}});
        e["payload"] = b64url(payload.to_string().as_bytes()).into();
        e
    });
    assert!(why.contains("changed after signing"), "{why}");

    // The COSE envelope verifies as the JWS one does; changed after signing, it does not.
    let (_, cose) = r.push("staging/web", "7.6.0", "signed with notation, COSE");
    attach_envelope(
        &r,
        "staging/web",
        &cose,
        &ca.sign_cose(&cose, &good),
        "application/cose",
    );
    let (status, body) = promote("7.6.0", &cose);
    assert_eq!(status, 200, "{body}");
    let (_, tampered) = r.push("staging/web", "7.7.0", "COSE, tampered");
    let mut envelope = ca.sign_cose(&tampered, &good);
    let last = envelope.len() - 1;
    envelope[last] ^= 1;
    attach_envelope(&r, "staging/web", &tampered, &envelope, "application/cose");
    let (status, body) = promote("7.7.0", &tampered);
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("changed after signing"),
        "{body}"
    );

    let out = run(&mut r.cli(&["trust", "store", "list"]));
    assert!(out.contains("acme-ca"), "{out}");
    run(&mut r.cli(&["trust", "store", "remove", "acme-ca"]));
    let (_, after) = r.get("/api/v1/verify?ref=prod/web:7.0.0");
    assert_eq!(after["verified"], false, "{after}");
}

#[test]
fn only_notation_signatures_chaining_to_the_trust_store_enter_prod_on_the_embedded_backend() {
    notation_release(Backend::Embedded);
}

#[test]
fn only_notation_signatures_chaining_to_the_trust_store_enter_prod_on_postgres_and_s3() {
    notation_release(Backend::Distributed);
}
