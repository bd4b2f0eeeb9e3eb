//! A secret held in memory or a record: a password, a client secret, a signing key. Its
//! `Debug` says only that it is set, so a derived `Debug` of anything holding it (a record,
//! a configuration) never prints it into a log. It serialises as the plain string, because
//! records store it; what answers clients (API DTOs, pages) never holds one.

use serde::{Deserialize, Serialize};

#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    #[must_use]
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that uses it (a signature, a login).
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret_and_records_keep_it() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(!format!("{:?}", Some(&s)).contains("hunter2"));
        let bytes = postcard::to_stdvec(&s).unwrap();
        // The same bytes as the plain string, so records written before read unchanged.
        assert_eq!(bytes, postcard::to_stdvec("hunter2").unwrap());
        assert_eq!(postcard::from_bytes::<Secret>(&bytes).unwrap(), s);
    }
}
