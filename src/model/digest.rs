//! Content digests (`sha256:<64 hex>`, `sha512:<128 hex>`), the only true identity of a
//! blob or manifest, and the hasher that computes them while bytes stream by.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest as _, Sha256, Sha512};

/// A digest algorithm this registry stores content by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    /// Every algorithm, the canonical one first.
    pub const ALL: [Self; 2] = [Self::Sha256, Self::Sha512];

    /// The name in a digest string and on disk.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Sha512 => "sha512",
        }
    }

    /// Hex digits of an encoded digest.
    #[must_use]
    pub fn hex_len(self) -> usize {
        match self {
            Self::Sha256 => 64,
            Self::Sha512 => 128,
        }
    }

    /// The algorithm named `name`, if this registry supports it.
    #[must_use]
    pub fn named(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    #[must_use]
    pub fn hasher(self) -> Hasher {
        match self {
            Self::Sha256 => Hasher::Sha256(Sha256::new()),
            Self::Sha512 => Hasher::Sha512(Sha512::new()),
        }
    }
}

/// Hashes bytes as they arrive, with one algorithm.
#[derive(Clone)]
pub enum Hasher {
    Sha256(Sha256),
    Sha512(Sha512),
}

impl Default for Hasher {
    fn default() -> Self {
        Algorithm::Sha256.hasher()
    }
}

impl Hasher {
    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Self::Sha256(h) => h.update(bytes),
            Self::Sha512(h) => h.update(bytes),
        }
    }

    #[must_use]
    pub fn algorithm(&self) -> Algorithm {
        match self {
            Self::Sha256(_) => Algorithm::Sha256,
            Self::Sha512(_) => Algorithm::Sha512,
        }
    }

    /// The hasher's state as bytes, to resume it in another process (`Hasher::resume`):
    /// the algorithm's name, a colon, then the state the algorithm defines.
    #[must_use]
    pub fn suspend(&self) -> Vec<u8> {
        use sha2::digest::common::hazmat::SerializableState as _;
        let mut out = format!("{}:", self.algorithm().name()).into_bytes();
        match self {
            Self::Sha256(h) => out.extend_from_slice(&h.serialize()),
            Self::Sha512(h) => out.extend_from_slice(&h.serialize()),
        }
        out
    }

    /// A hasher from what `suspend` returned; `None` when the bytes are not such a state.
    #[must_use]
    pub fn resume(bytes: &[u8]) -> Option<Self> {
        use sha2::digest::common::hazmat::SerializableState;
        fn state<H: SerializableState>(bytes: &[u8]) -> Option<H> {
            H::deserialize(bytes.try_into().ok()?).ok()
        }
        let colon = bytes.iter().position(|b| *b == b':')?;
        let (name, rest) = (&bytes[..colon], &bytes[colon + 1..]);
        match Algorithm::named(std::str::from_utf8(name).ok()?)? {
            Algorithm::Sha256 => state(rest).map(Self::Sha256),
            Algorithm::Sha512 => state(rest).map(Self::Sha512),
        }
    }

    /// The digest of every byte taken.
    #[must_use]
    pub fn finish(self) -> Digest {
        match self {
            Self::Sha256(h) => Digest::from_output(Algorithm::Sha256, &h.finalize()),
            Self::Sha512(h) => Digest::from_output(Algorithm::Sha512, &h.finalize()),
        }
    }
}

/// A validated digest: `sha256:<64 lowercase hex>` or `sha512:<128 lowercase hex>`.
///
/// Other registered algorithms are recognised so that the caller gets "unsupported" rather
/// than "malformed".
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

/// Why a string is not a digest this registry can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error(
        "digest {0:?} is malformed: expected sha256:<64 lowercase hex digits> or sha512:<128 lowercase hex digits>"
    )]
    Malformed(String),
    #[error("digest algorithm {0:?} is not supported: use sha256 or sha512")]
    Unsupported(String),
}

impl Digest {
    /// The SHA-256 digest of `bytes`, the canonical one.
    #[must_use]
    pub fn of(bytes: &[u8]) -> Self {
        Self::from_sha256(&Sha256::digest(bytes))
    }

    /// The digest of `bytes` by `algorithm`.
    #[must_use]
    pub fn of_with(algorithm: Algorithm, bytes: &[u8]) -> Self {
        let mut h = algorithm.hasher();
        h.update(bytes);
        h.finish()
    }

    /// Builds a digest from a finished SHA-256 output.
    #[must_use]
    pub fn from_sha256(output: &[u8]) -> Self {
        Self::from_output(Algorithm::Sha256, output)
    }

    fn from_output(algorithm: Algorithm, output: &[u8]) -> Self {
        Self(format!("{}:{}", algorithm.name(), hex::encode(output)))
    }

    #[must_use]
    pub fn algorithm(&self) -> Algorithm {
        if self.0.starts_with("sha512:") {
            Algorithm::Sha512
        } else {
            Algorithm::Sha256
        }
    }

    /// The hex digits, without the algorithm.
    #[must_use]
    pub fn hex(&self) -> &str {
        &self.0[self.algorithm().name().len() + 1..]
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let Some((algorithm, encoded)) = s.split_once(':') else {
            return Err(DigestError::Malformed(s.to_owned()));
        };
        let algorithm_ok = !algorithm.is_empty()
            && algorithm
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b));
        let encoded_ok = !encoded.is_empty()
            && encoded
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"=_-".contains(&b));
        if !algorithm_ok || !encoded_ok {
            return Err(DigestError::Malformed(s.to_owned()));
        }
        let Some(known) = Algorithm::named(algorithm) else {
            return Err(DigestError::Unsupported(algorithm.to_owned()));
        };
        let hex_ok = encoded.len() == known.hex_len()
            && encoded
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !hex_ok {
            return Err(DigestError::Malformed(s.to_owned()));
        }
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_suspended_hasher_resumes_where_it_stopped() {
        for algorithm in Algorithm::ALL {
            let mut h = algorithm.hasher();
            h.update(&vec![7u8; 100_001]);
            let mut resumed = Hasher::resume(&h.suspend()).unwrap();
            h.update(b"tail");
            resumed.update(b"tail");
            assert_eq!(resumed.finish(), h.finish());
        }
        assert!(Hasher::resume(b"sha256:short").is_none());
        assert!(Hasher::resume(b"md5:anything").is_none());
    }

    #[test]
    fn digest_of_empty_bytes_is_the_well_known_one() {
        assert_eq!(
            Digest::of(b"").as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn parses_valid_and_rejects_malformed_digests() {
        let good = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(good.parse::<Digest>().unwrap().hex().len(), 64);
        for bad in [
            "",
            "sha256",
            "sha256:",
            "sha256:abc",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "sha256:../../../../etc/passwd",
            ":abc",
        ] {
            assert!(
                matches!(bad.parse::<Digest>(), Err(DigestError::Malformed(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            "sha384:abcd".parse::<Digest>(),
            Err(DigestError::Unsupported(_))
        ));
        // sha512 has 128 digits; 64 are malformed.
        assert!(matches!(
            format!("sha512:{}", "a".repeat(64)).parse::<Digest>(),
            Err(DigestError::Malformed(_))
        ));
    }

    #[test]
    fn sha512_digests_parse_hash_and_stream() {
        let d = Digest::of_with(Algorithm::Sha512, b"");
        assert_eq!(
            d.as_str(),
            "sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
        );
        assert_eq!(d.algorithm(), Algorithm::Sha512);
        assert_eq!(d.hex().len(), 128);
        assert_eq!(d.as_str().parse::<Digest>().unwrap(), d);
        let mut h = Algorithm::Sha512.hasher();
        h.update(b"ab");
        h.update(b"c");
        assert_eq!(h.finish(), Digest::of_with(Algorithm::Sha512, b"abc"));
    }
}
