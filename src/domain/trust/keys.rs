//! Public keys a signature is verified with: PEM `PUBLIC KEY` (`SubjectPublicKeyInfo`), as
//! `cosign generate-key-pair` and `openssl pkey -pubout` write them. ECDSA P-256 and P-384
//! (DER or fixed-size signatures), Ed25519, and RSA (PKCS #1 v1.5 or PSS) with SHA-256 —
//! what cosign signs with for each kind of key.

use p256::pkcs8::DecodePublicKey;
use sha2_10::Digest as _;
use signature::Verifier as _;

/// A public key of a kind semdock verifies with.
#[derive(Clone)]
pub enum PublicKey {
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
    Ed25519(ed25519_dalek::VerifyingKey),
    Rsa(rsa::RsaPublicKey),
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kind())
    }
}

impl PublicKey {
    /// Reads a PEM `PUBLIC KEY`; a sentence saying what is wrong when it is not one of the
    /// kinds above.
    pub fn from_pem(pem: &str) -> Result<Self, String> {
        let pem = pem.trim();
        if !pem.starts_with("-----BEGIN PUBLIC KEY-----") {
            return Err(if pem.contains("PRIVATE KEY") {
                "this is a private key: give the public key (cosign.pub, or `openssl pkey -pubout`), never the private one".into()
            } else {
                "not a PEM public key: expected -----BEGIN PUBLIC KEY----- (cosign.pub, or `openssl pkey -pubout`)".into()
            });
        }
        if let Ok(k) = p256::ecdsa::VerifyingKey::from_public_key_pem(pem) {
            return Ok(Self::P256(k));
        }
        if let Ok(k) = p384::ecdsa::VerifyingKey::from_public_key_pem(pem) {
            return Ok(Self::P384(k));
        }
        if let Ok(k) = ed25519_dalek::VerifyingKey::from_public_key_pem(pem) {
            return Ok(Self::Ed25519(k));
        }
        if let Ok(k) = rsa::RsaPublicKey::from_public_key_pem(pem) {
            use rsa::traits::PublicKeyParts as _;
            if k.size() < 256 {
                return Err(format!(
                    "an RSA key of {} bits is too weak: use 2048 bits or more",
                    k.size() * 8
                ));
            }
            return Ok(Self::Rsa(k));
        }
        Err("a public key of a kind semdock does not verify with: use ECDSA P-256 or P-384, Ed25519, or RSA".into())
    }

    /// What kind of key it is, as the API shows it.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::P256(_) => "ecdsa-p256",
            Self::P384(_) => "ecdsa-p384",
            Self::Ed25519(_) => "ed25519",
            Self::Rsa(_) => "rsa",
        }
    }

    /// Whether `signature` is this key's signature of `message`.
    #[must_use]
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            Self::P256(k) => {
                let der = p256::ecdsa::Signature::from_der(signature);
                let fixed = p256::ecdsa::Signature::from_slice(signature);
                der.or(fixed).is_ok_and(|s| k.verify(message, &s).is_ok())
            }
            Self::P384(k) => {
                let der = p384::ecdsa::Signature::from_der(signature);
                let fixed = p384::ecdsa::Signature::from_slice(signature);
                // cosign hashes with SHA-256 whatever the curve; a signer following the
                // curve's own hash (SHA-384) is accepted too.
                der.or(fixed).is_ok_and(|s| {
                    use p384::ecdsa::signature::hazmat::PrehashVerifier as _;
                    let sha256 = sha2_10::Sha256::digest(message);
                    k.verify_prehash(&sha256, &s).is_ok() || k.verify(message, &s).is_ok()
                })
            }
            Self::Ed25519(k) => ed25519_dalek::Signature::from_slice(signature)
                .is_ok_and(|s| k.verify_strict(message, &s).is_ok()),
            Self::Rsa(k) => {
                let hashed = sha2_10::Sha256::digest(message);
                let pkcs1 = k
                    .verify(
                        rsa::Pkcs1v15Sign::new::<sha2_10::Sha256>(),
                        &hashed,
                        signature,
                    )
                    .is_ok();
                pkcs1
                    || k.verify(rsa::Pss::new::<sha2_10::Sha256>(), &hashed, signature)
                        .is_ok()
            }
        }
    }

    /// A short fingerprint of the key: the SHA-256 of its DER `SubjectPublicKeyInfo`, hex.
    #[must_use]
    pub fn fingerprint(pem: &str) -> String {
        use base64::Engine as _;
        let body: String = pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .map(str::trim)
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap_or_default();
        hex::encode(sha2_10::Sha256::digest(der))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::pkcs8::EncodePublicKey;
    use signature::Signer as _;

    fn pem(k: &impl EncodePublicKey) -> String {
        k.to_public_key_pem(p256::pkcs8::LineEnding::LF).unwrap()
    }

    #[test]
    fn each_kind_of_key_verifies_its_own_signatures_and_no_other() {
        let message = b"{\"critical\":{}}";
        let p256_key = p256::ecdsa::SigningKey::from_slice(&[7; 32]).unwrap();
        let p256_sig: p256::ecdsa::Signature = p256_key.sign(message);
        let k = PublicKey::from_pem(&pem(p256_key.verifying_key())).unwrap();
        assert_eq!(k.kind(), "ecdsa-p256");
        assert!(k.verifies(message, p256_sig.to_der().as_bytes()));
        assert!(k.verifies(message, &p256_sig.to_bytes()));
        assert!(!k.verifies(b"another message", p256_sig.to_der().as_bytes()));

        let p384_key = p384::ecdsa::SigningKey::from_slice(&[9; 48]).unwrap();
        let p384_sig: p384::ecdsa::Signature = p384_key.sign(message);
        let k = PublicKey::from_pem(&pem(p384_key.verifying_key())).unwrap();
        assert_eq!(k.kind(), "ecdsa-p384");
        assert!(k.verifies(message, p384_sig.to_der().as_bytes()));
        assert!(!k.verifies(message, p256_sig.to_der().as_bytes()));

        let ed_key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let ed_sig = ed_key.sign(message);
        let k = PublicKey::from_pem(&pem(&ed_key.verifying_key())).unwrap();
        assert_eq!(k.kind(), "ed25519");
        assert!(k.verifies(message, &ed_sig.to_bytes()));
        let mut bad = ed_sig.to_bytes();
        bad[3] ^= 1;
        assert!(!k.verifies(message, &bad));

        // Generated once with openssl (an unoptimised build takes long to make one).
        let rsa_key = {
            use rsa::pkcs8::DecodePrivateKey as _;
            rsa::RsaPrivateKey::from_pkcs8_pem(include_str!("testdata/rsa-2048-test-only.pem"))
                .unwrap()
        };
        let hashed = sha2_10::Sha256::digest(message);
        let rsa_sig = rsa_key
            .sign(rsa::Pkcs1v15Sign::new::<sha2_10::Sha256>(), &hashed)
            .unwrap();
        let k = PublicKey::from_pem(&pem(&rsa_key.to_public_key())).unwrap();
        assert_eq!(k.kind(), "rsa");
        assert!(k.verifies(message, &rsa_sig));
        assert!(!k.verifies(b"x", &rsa_sig));
    }

    #[test]
    fn what_is_not_a_usable_public_key_is_refused_with_a_sentence() {
        let private =
            "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----";
        assert!(
            PublicKey::from_pem(private)
                .unwrap_err()
                .contains("private key")
        );
        assert!(
            PublicKey::from_pem("hello")
                .unwrap_err()
                .contains("not a PEM")
        );
        let garbage = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----";
        assert!(PublicKey::from_pem(garbage).unwrap_err().contains("kind"));
    }
}
