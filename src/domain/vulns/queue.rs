//! The durable queue of images to read: a push enqueues its image in the push's own
//! transaction (so an acknowledged push is never lost to a crash) and returns; a worker on
//! any node claims one item at a time with a lease written in a transaction (so exactly one
//! node reads it; a node killed mid-read lets its lease expire and another, or itself after
//! a restart, reads it again), reads the layers, stores the SBOM record and its CycloneDX
//! referrer, and removes the item. The SBOM is the same bytes for the same image, so a
//! read repeated after a crash stores the same referrer, never a second one.

use std::io::Read;

use serde::{Deserialize, Serialize};

use super::SBOMS;
use super::sbom::{self, Sbom, layers::Tree};
use crate::domain::{Error, Registry};
use crate::model::manifest::{ManifestKind, OCI_MANIFEST};
use crate::model::{Algorithm, Digest, Reference, Repository};
use crate::store::blobs::FrontToBack;
use crate::store::meta::settings::{Family, Json};
use crate::store::meta::{MetaRead, MetaWrite};

/// `repository@digest` → an image waiting to be read.
pub(crate) const QUEUE: Family<Json<Item>> = Family::keyed("sbom-queue:", "queued SBOM scan");

/// One queued image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub repository: String,
    pub digest: String,
    pub enqueued_ms: u64,
    /// Until when a worker holds it (0: nobody).
    #[serde(default)]
    pub lease_until_ms: u64,
    #[serde(default)]
    pub attempts: u32,
    /// Why the last attempt failed; once `MAX_ATTEMPTS` have, the item stays as a record
    /// of the failure and is not tried again until the image is pushed again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
}

/// How long a claim holds: a read of the largest image finishes well inside it.
const LEASE_MS: u64 = 10 * 60 * 1000;
/// How long an image of a connector feed whose layers are not all cached yet waits before
/// it is looked at again (a pull fetches them).
const UNCACHED_WAIT_MS: u64 = 10 * 1000;
const MAX_ATTEMPTS: u32 = 3;

/// The queue's key of an image.
#[must_use]
pub fn key(repository: &str, digest: &str) -> String {
    format!("{repository}@{digest}")
}

/// The config media types of the images semdock reads (not artifacts).
const IMAGE_CONFIGS: [&str; 2] = [
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
];

/// Whether `manifest` is an image semdock reads (not an artifact, a signature, an SBOM).
#[must_use]
pub fn is_image(manifest: &crate::model::Manifest) -> bool {
    manifest.kind == ManifestKind::Image
        && manifest.subject.is_none()
        && manifest
            .artifact_type
            .as_deref()
            .is_some_and(|t| IMAGE_CONFIGS.contains(&t))
        && manifest.blobs.len() > 1
}

/// Enqueues `digest` in `w` when it is an image that has not been read yet (by its digest,
/// in any repository): called in the push's transaction.
pub fn enqueue(
    w: &mut (impl MetaWrite + ?Sized),
    repository: &str,
    digest: &str,
    manifest: &crate::model::Manifest,
    now_ms: u64,
) -> Result<(), Error> {
    if !is_image(manifest) || SBOMS.exists(w, digest)? {
        return Ok(());
    }
    QUEUE.put(
        w,
        &key(repository, digest),
        &Item {
            repository: repository.to_owned(),
            digest: digest.to_owned(),
            enqueued_ms: now_ms,
            lease_until_ms: 0,
            attempts: 0,
            failed: None,
        },
    )?;
    Ok(())
}

/// The items waiting (failed ones included), oldest first.
pub fn waiting(r: &(impl MetaRead + ?Sized)) -> Result<Vec<Item>, Error> {
    let mut items: Vec<Item> = QUEUE.all(r)?.into_iter().map(|(_, i)| i).collect();
    items.sort_by_key(|i| i.enqueued_ms);
    Ok(items)
}

impl Registry {
    /// At a start on storage no other node shares, the leases in the queue are this node's
    /// own, from before a crash: released, so the images are read now rather than when
    /// their leases run out. (Nodes of a cluster wait for a dead node's leases to expire.)
    pub fn release_scan_leases(&self) -> Result<(), Error> {
        if self.blobs.shared() {
            return Ok(());
        }
        let held: Vec<(String, Item)> = QUEUE
            .all(&*self.meta.read()?)?
            .into_iter()
            .filter(|(_, i)| i.lease_until_ms > 0)
            .collect();
        if held.is_empty() {
            return Ok(());
        }
        self.meta.write(|w| -> Result<(), Error> {
            for (key, mut item) in held {
                item.lease_until_ms = 0;
                QUEUE.put(w, &key, &item)?;
            }
            Ok(())
        })
    }

    /// Claims and reads queued images until none is left to claim; answers how many it read.
    pub fn scan_queued(&self) -> Result<usize, Error> {
        let mut done = 0;
        while let Some(item) = self.claim()? {
            let key = key(&item.repository, &item.digest);
            match self.scan(&item) {
                Ok(read) => done += usize::from(read),
                Err(e) => {
                    tracing::warn!(image = key, error = %e, "reading an image's packages failed");
                    self.meta.write(|w| -> Result<(), Error> {
                        if let Some(mut now) = QUEUE.get(w, &key)? {
                            now.lease_until_ms = 0;
                            if now.attempts >= MAX_ATTEMPTS {
                                now.failed = Some(e.to_string());
                            }
                            QUEUE.put(w, &key, &now)?;
                        }
                        Ok(())
                    })?;
                }
            }
        }
        Ok(done)
    }

    /// The oldest item nobody holds, leased to this node.
    fn claim(&self) -> Result<Option<Item>, Error> {
        let now = self.clock.now_ms();
        let r = self.meta.read()?;
        let candidates: Vec<Item> = waiting(&*r)?
            .into_iter()
            .filter(|i| i.failed.is_none() && i.lease_until_ms <= now)
            .collect();
        drop(r);
        for candidate in candidates {
            let k = key(&candidate.repository, &candidate.digest);
            let claimed = self.meta.write(|w| -> Result<Option<Item>, Error> {
                // Decisive under the write lock: another node may have claimed it since.
                let Some(mut item) = QUEUE.get(w, &k)? else {
                    return Ok(None);
                };
                if item.failed.is_some() || item.lease_until_ms > now {
                    return Ok(None);
                }
                item.lease_until_ms = now + LEASE_MS;
                item.attempts += 1;
                QUEUE.put(w, &k, &item)?;
                Ok(Some(item))
            })?;
            if claimed.is_some() {
                return Ok(claimed);
            }
        }
        Ok(None)
    }

    /// Reads one image's layers and stores what it found; `false` when it must wait for
    /// its layers (or was deleted).
    fn scan(&self, item: &Item) -> Result<bool, Error> {
        let repo: Repository = item
            .repository
            .parse()
            .map_err(|e| Error::Invalid(format!("{e}")))?;
        let key = key(&item.repository, &item.digest);
        let record = self.meta.read()?.manifest(&item.repository, &item.digest)?;
        let Some(record) = record else {
            // Deleted before it was read: nothing to describe.
            self.meta
                .write(|w| QUEUE.remove(w, &key).map_err(Error::from))?;
            return Ok(false);
        };
        let mut missing = 0;
        for layer in record.blobs.iter().skip(1) {
            let digest: Digest = layer.parse().map_err(|e| Error::Invalid(format!("{e}")))?;
            if self.blobs.stat(&digest)?.is_none() {
                missing += 1;
            }
        }
        if missing > 0 {
            // A connector feed's image whose layers nobody has pulled yet: not a failure.
            self.meta.write(|w| -> Result<(), Error> {
                if let Some(mut waiting) = QUEUE.get(w, &key)? {
                    waiting.lease_until_ms = self.clock.now_ms() + UNCACHED_WAIT_MS;
                    waiting.attempts = waiting.attempts.saturating_sub(1);
                    QUEUE.put(w, &key, &waiting)?;
                }
                Ok(())
            })?;
            tracing::debug!(
                image = key,
                missing,
                "an image waits for its layers to be cached"
            );
            return Ok(false);
        }
        let mut sbom = self.read_layers(&item.digest, &record.blobs[1..], &key)?;
        let labels = self.config_labels(&record.blobs[0]);
        // A connector feed holds what its upstream has, and nothing pushed beside it.
        let connector = self
            .meta
            .read()?
            .feed(repo.feed())?
            .is_some_and(|f| f.upstream.is_some());
        if !connector {
            match self.store_referrer(&repo, &sbom) {
                Ok(d) => sbom.referrer = Some(d),
                // The packages are known either way; the referrer is for other tools.
                Err(e) => {
                    tracing::warn!(image = key, error = %e, "the SBOM referrer was not stored");
                }
            }
        }
        self.meta.write(|w| -> Result<(), Error> {
            let known = super::watch::baseline(w, &sbom)?;
            super::watch::KNOWN.put(w, &item.digest, &known)?;
            SBOMS.put(w, &item.digest, &sbom)?;
            crate::domain::search::index_labels(w, &item.repository, &item.digest, &labels)?;
            // Virtual tags that follow only vetted versions may follow this one now.
            if super::gate::skipping(&*w, repo.feed())?.is_some() {
                let cause = crate::domain::tags::Change {
                    actor: "semdock",
                    method: "settings",
                    comment: Some("its packages were read"),
                    source: None,
                    clock: &self.clock,
                };
                crate::domain::tags::recompute_virtual(w, &item.repository, &cause)?;
            }
            QUEUE.remove(w, &key)?;
            Ok(())
        })?;
        tracing::info!(
            image = key,
            packages = sbom.packages.len(),
            "SBOM generated"
        );
        Ok(true)
    }

    /// The labels of an image's configuration (`config.Labels`), for search; none when the
    /// configuration cannot be read (it is not needed for the SBOM).
    fn config_labels(&self, config: &str) -> std::collections::BTreeMap<String, String> {
        #[derive(Deserialize, Default)]
        struct Config {
            #[serde(default)]
            config: Inner,
        }
        #[derive(Deserialize, Default)]
        struct Inner {
            #[serde(rename = "Labels", default)]
            labels: Option<std::collections::BTreeMap<String, String>>,
        }
        let read = || -> Option<std::collections::BTreeMap<String, String>> {
            let digest: Digest = config.parse().ok()?;
            let blob = self.blobs.open(&digest).ok()?;
            let mut bytes = Vec::new();
            FrontToBack::new(&*blob)
                .take(1 << 20)
                .read_to_end(&mut bytes)
                .ok()?;
            serde_json::from_slice::<Config>(&bytes).ok()?.config.labels
        };
        read().unwrap_or_default()
    }

    /// The SBOM of image `digest` whose layers are `layers` (blob digests, bottom first).
    pub(crate) fn read_layers(
        &self,
        digest: &str,
        layers: &[String],
        what: &str,
    ) -> Result<Sbom, Error> {
        let mut tree = Tree::default();
        let mut layer_bytes = 0;
        for layer in layers {
            let layer: Digest = layer.parse().map_err(|e| Error::Invalid(format!("{e}")))?;
            let blob = self.blobs.open(&layer)?;
            layer_bytes += blob.stored_len()?;
            tree.apply(FrontToBack::new(&*blob)).map_err(|e| {
                Error::Invalid(format!("layer {layer} of {what} could not be read: {e}"))
            })?;
        }
        let (os, packages) = tree.finish();
        Ok(Sbom {
            image: digest.to_owned(),
            os,
            packages,
            layer_bytes,
            referrer: None,
        })
    }

    /// Stores `sbom` as a CycloneDX referrer of its image in `repo`; answers its digest.
    fn store_referrer(&self, repo: &Repository, sbom: &Sbom) -> Result<String, Error> {
        let document = serde_json::to_vec(&sbom.cyclonedx(repo.as_str()))
            .map_err(|e| Error::Invalid(e.to_string()))?;
        let empty = b"{}";
        let layer = self.put_small_blob(repo, &document)?;
        let config = self.put_small_blob(repo, empty)?;
        let image_size = self
            .meta
            .read()?
            .manifest(repo.as_str(), &sbom.image)?
            .map_or(0, |m| m.body.len());
        let image_type = self
            .meta
            .read()?
            .manifest(repo.as_str(), &sbom.image)?
            .map_or_else(|| OCI_MANIFEST.to_owned(), |m| m.media_type);
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": sbom::CYCLONEDX,
            "config": {
                "mediaType": "application/vnd.oci.empty.v1+json",
                "digest": config.to_string(),
                "size": empty.len(),
            },
            "layers": [{
                "mediaType": sbom::CYCLONEDX,
                "digest": layer.to_string(),
                "size": document.len(),
            }],
            "subject": {
                "mediaType": image_type,
                "digest": sbom.image,
                "size": image_size,
            },
            "annotations": {
                sbom::GENERATOR_ANNOTATION: "semdock",
                "org.opencontainers.image.description": "packages semdock found in the image's layers",
            },
        });
        let body = serde_json::to_vec(&manifest).map_err(|e| Error::Invalid(e.to_string()))?;
        let digest = Digest::of(&body);
        self.put_manifest(
            repo,
            &Reference::Digest(digest.clone()),
            &[],
            Some(OCI_MANIFEST),
            &body,
            "semdock",
        )?;
        Ok(digest.to_string())
    }

    /// Uploads `bytes` as a blob of `repo`.
    fn put_small_blob(&self, repo: &Repository, bytes: &[u8]) -> Result<Digest, Error> {
        let digest = Digest::of(bytes);
        let uploads = self.uploads();
        let id = uploads.start(repo, "semdock", Algorithm::Sha256)?;
        let mut append = uploads.append(repo, &id, None)?;
        append.write(bytes)?;
        uploads.complete(append, &digest)?;
        Ok(digest)
    }
}
