//! Keys from DER `SubjectPublicKeyInfo` and signature checks with an explicit hash, as
//! X.509, Rekor, CT logs and timestamp authorities name it. Builds on the kinds of
//! [`PublicKey`] semdock already verifies with; no second crypto stack.

use p256::pkcs8::DecodePublicKey as _;
use sha2_10::Digest as _;
use signature::hazmat::PrehashVerifier as _;

use super::der;
use crate::domain::trust::PublicKey;

/// A hash a signature is made over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    #[must_use]
    pub fn digest(self, bytes: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha256 => sha2_10::Sha256::digest(bytes).to_vec(),
            Self::Sha384 => sha2_10::Sha384::digest(bytes).to_vec(),
            Self::Sha512 => sha2_10::Sha512::digest(bytes).to_vec(),
        }
    }

    /// The hash an X.509 / CMS algorithm identifier names (a signature or digest algorithm).
    pub fn of_algorithm(oid_content: &[u8]) -> Result<Self, String> {
        const TABLE: &[(&str, Hash)] = &[
            ("1.2.840.10045.4.3.2", Hash::Sha256),
            ("1.2.840.10045.4.3.3", Hash::Sha384),
            ("1.2.840.10045.4.3.4", Hash::Sha512),
            ("1.2.840.113549.1.1.11", Hash::Sha256),
            ("1.2.840.113549.1.1.12", Hash::Sha384),
            ("1.2.840.113549.1.1.13", Hash::Sha512),
            ("2.16.840.1.101.3.4.2.1", Hash::Sha256),
            ("2.16.840.1.101.3.4.2.2", Hash::Sha384),
            ("2.16.840.1.101.3.4.2.3", Hash::Sha512),
            // Ed25519 hashes internally; the message is passed whole.
            ("1.3.101.112", Hash::Sha512),
        ];
        TABLE
            .iter()
            .find(|(dotted, _)| der::oid(dotted) == oid_content)
            .map(|(_, h)| *h)
            .ok_or_else(|| "a signature or digest algorithm that is not supported is named".into())
    }
}

/// A public key from its DER `SubjectPublicKeyInfo` (or PKCS #1, for RSA).
pub fn key_from_spki(der: &[u8]) -> Result<PublicKey, String> {
    if let Ok(k) = p256::ecdsa::VerifyingKey::from_public_key_der(der) {
        return Ok(PublicKey::P256(k));
    }
    if let Ok(k) = p384::ecdsa::VerifyingKey::from_public_key_der(der) {
        return Ok(PublicKey::P384(k));
    }
    if let Ok(k) = ed25519_dalek::VerifyingKey::from_public_key_der(der) {
        return Ok(PublicKey::Ed25519(k));
    }
    if let Ok(k) = rsa::RsaPublicKey::from_public_key_der(der) {
        return Ok(PublicKey::Rsa(k));
    }
    // Trusted roots may hold an RSA key as a bare PKCS #1 `RSAPublicKey` (`PKCS1_RSA_*`).
    if let Ok(k) = <rsa::RsaPublicKey as rsa::pkcs1::DecodeRsaPublicKey>::from_pkcs1_der(der) {
        return Ok(PublicKey::Rsa(k));
    }
    Err("a public key of a kind that is not supported (ECDSA P-256/P-384, Ed25519, RSA)".into())
}

/// Whether `sig` is `key`'s signature of `message` hashed with `hash`.
#[must_use]
pub fn verify(key: &PublicKey, hash: Hash, message: &[u8], sig: &[u8]) -> bool {
    if let PublicKey::Ed25519(k) = key {
        return ed25519_dalek::Signature::from_slice(sig)
            .is_ok_and(|s| k.verify_strict(message, &s).is_ok());
    }
    verify_prehashed(key, hash, &hash.digest(message), sig)
}

/// Whether `sig` is `key`'s signature of a message whose `hash` is `digest`. Ed25519 signs
/// whole messages, so never verifies here.
#[must_use]
pub fn verify_prehashed(key: &PublicKey, hash: Hash, digest: &[u8], sig: &[u8]) -> bool {
    match key {
        PublicKey::P256(k) => p256::ecdsa::Signature::from_der(sig)
            .is_ok_and(|s| k.verify_prehash(digest, &s).is_ok()),
        PublicKey::P384(k) => p384::ecdsa::Signature::from_der(sig)
            .is_ok_and(|s| k.verify_prehash(digest, &s).is_ok()),
        PublicKey::Ed25519(_) => false,
        PublicKey::Rsa(k) => {
            let scheme = match hash {
                Hash::Sha256 => rsa::Pkcs1v15Sign::new::<sha2_10::Sha256>(),
                Hash::Sha384 => rsa::Pkcs1v15Sign::new::<sha2_10::Sha384>(),
                Hash::Sha512 => rsa::Pkcs1v15Sign::new::<sha2_10::Sha512>(),
            };
            k.verify(scheme, digest, sig).is_ok()
        }
    }
}

#[must_use]
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    sha2_10::Sha256::digest(bytes).into()
}
