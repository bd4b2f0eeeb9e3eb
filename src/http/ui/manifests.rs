//! A manifest's page: its layers, platforms and raw JSON.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use serde_json::Value;

use super::repositories::image_size;
use super::session::Viewer;
use super::{Nav, UiError, host, render, run, short, size};
use crate::domain::access::Pull;
use crate::model::{Digest, Reference, Repository};

pub struct Layer {
    pub digest: String,
    pub short: String,
    pub size: String,
    pub media_type: String,
}

pub struct Platform {
    pub digest: String,
    pub short: String,
    pub os_arch: String,
    pub size: String,
}

#[derive(Template)]
#[template(path = "manifest.html")]
struct ManifestPage {
    title: String,
    nav: Option<Nav>,
    repo: String,
    digest: String,
    media_type: String,
    artifact_type: String,
    size: String,
    config: Option<Layer>,
    layers: Vec<Layer>,
    total: String,
    platforms: Vec<Platform>,
    annotations: Vec<(String, String)>,
    referrers: Vec<Layer>,
    pull: String,
    subject: Option<String>,
    signatures: Signatures,
    vulns: super::vulns::VulnView,
}

/// What the image's signatures say, and what its feed requires.
pub struct Signatures {
    /// The trusted keys a signature verifies with, and the identities a keyless one verifies as.
    verified_by: Vec<String>,
    /// (form, manifest digest, short digest, result) per signature found.
    found: Vec<(String, String, String, String)>,
    /// Whom the feed's policy requires a signature by, if it has a policy.
    required: Option<String>,
}

impl Signatures {
    /// What the manifest page shows of `v`, under the feed's `policy`.
    fn of(
        v: crate::domain::trust::Verification,
        policy: Option<crate::domain::trust::SignaturePolicy>,
    ) -> Self {
        let identities = v.verified_identities.iter().map(ToString::to_string);
        let stores = v
            .verified_stores
            .iter()
            .map(|s| format!("a certificate of trust store {s}"));
        Self {
            verified_by: v
                .verified_by
                .into_iter()
                .chain(identities)
                .chain(stores)
                .collect(),
            found: v
                .signatures
                .into_iter()
                .map(|f| (f.form, short(&f.manifest), f.manifest, f.reason))
                .collect(),
            required: policy.map(|p| p.signers()),
        }
    }
}

#[derive(Deserialize)]
pub struct ManifestQuery {
    name: String,
    digest: String,
}

fn layer(d: &Value) -> Layer {
    let digest = d["digest"].as_str().unwrap_or_default().to_owned();
    Layer {
        short: short(&digest),
        size: size(d["size"].as_u64().unwrap_or(0)),
        media_type: d["mediaType"].as_str().unwrap_or_default().to_owned(),
        digest,
    }
}

// GET /ui/manifest?name=&digest= — what an image or index is made of, and what refers to it.
pub async fn manifest(
    viewer: Viewer,
    query: web::Query<ManifestQuery>,
    req: HttpRequest,
) -> Result<HttpResponse, UiError> {
    let ManifestQuery { name, digest } = query.into_inner();
    let repo: Repository = name.parse().map_err(crate::domain::Error::from)?;
    let digest: Digest = digest.parse().map_err(crate::domain::Error::from)?;
    let access = viewer.access.clone();
    let (repo_ref, digest_ref) = (repo.clone(), digest.clone());
    let (stored, referrers, verification, policy, report) = run(move || {
        let feed = access.feed::<Pull>(repo_ref.feed())?;
        let stored = feed.manifest(&repo_ref, &Reference::Digest(digest_ref.clone()))?;
        let referrers = feed.referrers(&repo_ref, &digest_ref)?;
        let verification = feed.signatures().verify(&repo_ref, &digest_ref)?;
        let policy = feed.signatures().policy()?;
        let report = feed.vulnerabilities().report(&repo_ref, &digest_ref)?;
        Ok((stored, referrers, verification, policy, report))
    })
    .await?;
    let signatures = Signatures::of(verification, policy);
    let body: Value = serde_json::from_slice(&stored.body).unwrap_or(Value::Null);
    let layers: Vec<Layer> = body["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(layer)
        .collect();
    let config = body.get("config").map(layer);
    let total = image_size(&stored.body);
    let platforms = body["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            let p = &m["platform"];
            let parts: Vec<&str> = [&p["os"], &p["architecture"], &p["variant"]]
                .iter()
                .filter_map(|v| v.as_str())
                .collect();
            let digest = m["digest"].as_str().unwrap_or_default().to_owned();
            Platform {
                short: short(&digest),
                os_arch: if parts.is_empty() {
                    "(none)".into()
                } else {
                    parts.join("/")
                },
                size: size(m["size"].as_u64().unwrap_or(0)),
                digest,
            }
        })
        .collect();
    let annotations = body["annotations"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
        .collect();
    render(&ManifestPage {
        title: format!("{repo}@{}", short(digest.as_str())),
        nav: Nav::of(&viewer),
        pull: format!("docker pull {}/{repo}@{digest}", host(&req)),
        media_type: stored.media_type,
        artifact_type: body["artifactType"].as_str().unwrap_or_default().to_owned(),
        size: size(stored.body.len() as u64),
        config,
        layers,
        total: size(total),
        platforms,
        annotations,
        referrers: referrers
            .into_iter()
            .map(|r| Layer {
                short: short(&r.digest),
                size: size(r.size),
                // semdock's own SBOM is told apart from one the builder pushed.
                media_type: if r
                    .annotations
                    .contains_key(crate::domain::vulns::sbom::GENERATOR_ANNOTATION)
                {
                    format!(
                        "{} (generated by semdock)",
                        r.artifact_type.unwrap_or(r.media_type)
                    )
                } else {
                    r.artifact_type.unwrap_or(r.media_type)
                },
                digest: r.digest,
            })
            .collect(),
        subject: stored.subject,
        signatures,
        vulns: super::vulns::VulnView::of(report),
        repo: repo.to_string(),
        digest: digest.to_string(),
    })
}
