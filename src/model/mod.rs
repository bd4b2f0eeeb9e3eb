//! The nouns of the registry: digests, names, references and manifests.
//!
//! Everything here is plain data with validation. It must not do I/O, know about HTTP or
//! storage, or hold policy: it only says whether a value is well formed.

pub mod access;
pub mod digest;
pub mod instant;
pub mod manifest;
pub mod names;
pub mod secret;

pub use access::{Action, Caps, Role, Scope};
pub use digest::{Algorithm, Digest, DigestError, Hasher};
pub use manifest::{Manifest, ManifestError};
pub use names::{
    FeedName, ImageRef, NameError, Reference, Repository, Tag, parse_image, parse_image_ref,
};
pub use secret::Secret;
