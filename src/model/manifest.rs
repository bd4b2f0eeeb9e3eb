//! Manifests: which kind a body is, and what it references.
//!
//! Parsing uses `oci-spec` for the document shapes; this module adds what a registry needs on
//! top: the media type decided from body and `Content-Type` together, the blobs and child
//! manifests the body points at, and its subject. It must not look anything up.

use std::collections::BTreeMap;

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};
use serde::Deserialize;

use super::digest::{Digest, DigestError};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// The media types a manifest may have; the only ones it is ever served with.
pub const MANIFEST_TYPES: [&str; 4] = [
    OCI_MANIFEST,
    OCI_INDEX,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
];
const DOCKER_SCHEMA1: [&str; 2] = [
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
];

/// Whether a manifest describes one image (or artifact) or a list of manifests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestKind {
    Image,
    Index,
}

/// What a registry needs to know about a manifest body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub media_type: String,
    pub kind: ManifestKind,
    /// Config and layers: blobs that must exist in the repository.
    pub blobs: Vec<Digest>,
    /// Non-distributable layers (Windows base images' foreign layers): fetched by clients
    /// from their `urls`, never pushed to a private registry, so never required here.
    pub external: Vec<Digest>,
    /// Child manifests of an index: manifests that must exist in the repository.
    pub children: Vec<Digest>,
    pub subject: Option<Digest>,
    /// `artifactType`, or for an image manifest without one, its config media type: what the
    /// referrers API reports.
    pub artifact_type: Option<String>,
    pub annotations: BTreeMap<String, String>,
}

/// Why a body is not a manifest this registry stores.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest is not valid JSON: {0}")]
    NotJson(String),
    #[error(
        "Docker schema 1 manifests are not supported: push with a current client, which sends schema 2 or OCI"
    )]
    Schema1,
    #[error("manifest mediaType {body:?} does not match the Content-Type {header:?}")]
    MediaTypeMismatch { body: String, header: String },
    #[error(
        "{0:?} is not a manifest media type: send an OCI image manifest or index ({OCI_MANIFEST}, {OCI_INDEX}) or a Docker manifest or manifest list ({DOCKER_MANIFEST}, {DOCKER_MANIFEST_LIST}); an artifact is an OCI manifest with artifactType"
    )]
    NotAManifestType(String),
    #[error("manifest is invalid: {0}")]
    Invalid(String),
    #[error("manifest references an unusable digest: {0}")]
    Digest(#[from] DigestError),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    schema_version: Option<serde_json::Value>,
    media_type: Option<String>,
    manifests: Option<serde_json::Value>,
}

/// `Content-Type` without parameters, or `None` when it says nothing about the kind.
fn header_media_type(content_type: Option<&str>) -> Option<&str> {
    let essence = content_type?.split(';').next()?.trim();
    (!essence.is_empty() && essence != "application/json" && essence != "application/octet-stream")
        .then_some(essence)
}

/// Whether a layer of `media_type` is non-distributable: OCI's `…layer.nondistributable…`
/// (deprecated in image-spec 1.1, still pushed by Windows images) and Docker's foreign layers.
fn is_non_distributable(media_type: &str) -> bool {
    media_type.starts_with("application/vnd.oci.image.layer.nondistributable.")
        || media_type.starts_with("application/vnd.docker.image.rootfs.foreign.")
}

fn digest_of(d: &Descriptor) -> Result<Digest, ManifestError> {
    Ok(d.digest().to_string().parse()?)
}

impl Manifest {
    /// Parses a manifest body sent with `content_type`.
    pub fn parse(body: &[u8], content_type: Option<&str>) -> Result<Self, ManifestError> {
        let probe: Probe =
            serde_json::from_slice(body).map_err(|e| ManifestError::NotJson(e.to_string()))?;
        let header = header_media_type(content_type);
        if probe
            .schema_version
            .as_ref()
            .and_then(serde_json::Value::as_u64)
            == Some(1)
            || header.is_some_and(|h| DOCKER_SCHEMA1.contains(&h))
        {
            return Err(ManifestError::Schema1);
        }
        if let (Some(body), Some(header)) = (probe.media_type.as_deref(), header)
            && body != header
        {
            return Err(ManifestError::MediaTypeMismatch {
                body: body.to_owned(),
                header: header.to_owned(),
            });
        }
        let is_index = match probe.media_type.as_deref().or(header) {
            Some(OCI_INDEX | DOCKER_MANIFEST_LIST) => true,
            Some(_) => false,
            None => probe.manifests.is_some(),
        };
        let default_type = if is_index { OCI_INDEX } else { OCI_MANIFEST };
        let media_type = probe
            .media_type
            .as_deref()
            .or(header)
            .unwrap_or(default_type)
            .to_owned();
        // Anything else would be served back with its own Content-Type: a body claiming
        // text/html would run as a page on the UI's origin.
        if !MANIFEST_TYPES.contains(&media_type.as_str()) {
            return Err(ManifestError::NotAManifestType(media_type));
        }
        if is_index {
            Self::parse_index(body, media_type)
        } else {
            Self::parse_image(body, media_type)
        }
    }

    fn parse_image(body: &[u8], media_type: String) -> Result<Self, ManifestError> {
        let m: ImageManifest =
            serde_json::from_slice(body).map_err(|e| ManifestError::Invalid(e.to_string()))?;
        let mut blobs = vec![digest_of(m.config())?];
        let mut external = Vec::new();
        for layer in m.layers() {
            if is_non_distributable(layer.media_type().as_ref()) {
                external.push(digest_of(layer)?);
            } else {
                blobs.push(digest_of(layer)?);
            }
        }
        let artifact_type = m
            .artifact_type()
            .as_ref()
            .map_or_else(|| m.config().media_type().to_string(), ToString::to_string);
        Ok(Self {
            media_type,
            kind: ManifestKind::Image,
            blobs,
            external,
            children: Vec::new(),
            subject: m.subject().as_ref().map(digest_of).transpose()?,
            artifact_type: Some(artifact_type),
            annotations: m
                .annotations()
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
        })
    }

    fn parse_index(body: &[u8], media_type: String) -> Result<Self, ManifestError> {
        let i: ImageIndex =
            serde_json::from_slice(body).map_err(|e| ManifestError::Invalid(e.to_string()))?;
        Ok(Self {
            media_type,
            kind: ManifestKind::Index,
            blobs: Vec::new(),
            external: Vec::new(),
            children: i
                .manifests()
                .iter()
                .map(digest_of)
                .collect::<Result<_, _>>()?,
            subject: i.subject().as_ref().map(digest_of).transpose()?,
            artifact_type: i.artifact_type().as_ref().map(ToString::to_string),
            annotations: i
                .annotations()
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn image(media_type: &str) -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{media_type}",
            "config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{D1}","size":2}},
            "layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{D2}","size":3}}]}}"#
        )
    }

    #[test]
    fn image_manifest_lists_config_and_layers() {
        let m = Manifest::parse(image(OCI_MANIFEST).as_bytes(), Some(OCI_MANIFEST)).unwrap();
        assert_eq!(m.kind, ManifestKind::Image);
        assert_eq!(m.blobs, vec![D1.parse().unwrap(), D2.parse().unwrap()]);
        assert_eq!(
            m.artifact_type.as_deref(),
            Some("application/vnd.oci.image.config.v1+json")
        );
    }

    #[test]
    fn non_distributable_layers_are_external_not_required_blobs() {
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"a/b","digest":"{D1}","size":1}},
            "layers":[{{"mediaType":"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip","digest":"{D2}","size":9,"urls":["https://example.com/x"]}},
                      {{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","digest":"{D1}","size":9}}]}}"#
        );
        let m = Manifest::parse(body.as_bytes(), Some(OCI_MANIFEST)).unwrap();
        assert_eq!(m.blobs, [D1.parse::<Digest>().unwrap()]);
        assert_eq!(
            m.external,
            [D2.parse::<Digest>().unwrap(), D1.parse().unwrap()]
        );
    }

    #[test]
    fn only_manifest_media_types_are_accepted() {
        for active in [
            "text/html",
            "application/javascript",
            "image/svg+xml",
            "application/xhtml+xml",
        ] {
            let body = format!(
                r#"{{"schemaVersion":2,"mediaType":"{active}","config":{{"mediaType":"a/b","digest":"{D1}","size":1}},"layers":[]}}"#
            );
            let err = Manifest::parse(body.as_bytes(), Some(active));
            assert!(
                matches!(err, Err(ManifestError::NotAManifestType(ref t)) if t == active),
                "{active}: {err:?}"
            );
            // Declared only in the header, with no mediaType in the body: refused too.
            let body = format!(
                r#"{{"schemaVersion":2,"config":{{"mediaType":"a/b","digest":"{D1}","size":1}},"layers":[]}}"#
            );
            let err = Manifest::parse(body.as_bytes(), Some(active));
            assert!(
                matches!(err, Err(ManifestError::NotAManifestType(_))),
                "{active}: {err:?}"
            );
        }
    }

    #[test]
    fn content_type_must_match_body_media_type() {
        let err = Manifest::parse(image(OCI_MANIFEST).as_bytes(), Some(DOCKER_MANIFEST));
        assert!(matches!(err, Err(ManifestError::MediaTypeMismatch { .. })));
    }

    #[test]
    fn index_lists_children_and_subject() {
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{D1}","size":9}}],
            "subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{D2}","size":9}}}}"#
        );
        let m = Manifest::parse(body.as_bytes(), None).unwrap();
        assert_eq!(m.kind, ManifestKind::Index);
        assert_eq!(m.children, vec![D1.parse().unwrap()]);
        assert_eq!(m.subject, Some(D2.parse().unwrap()));
    }

    #[test]
    fn schema1_and_garbage_are_refused_clearly() {
        assert_eq!(
            Manifest::parse(br#"{"schemaVersion":1,"name":"x"}"#, None),
            Err(ManifestError::Schema1)
        );
        assert!(matches!(
            Manifest::parse(b"\xff\x00", None),
            Err(ManifestError::NotJson(_))
        ));
        assert!(matches!(
            Manifest::parse(br#"{"schemaVersion":2,"layers":"x"}"#, Some(OCI_MANIFEST)),
            Err(ManifestError::Invalid(_))
        ));
    }
}
