//! Verification: every signature and attestation the registry stores for an image —
//! cosign's tags and referrers, Sigstore bundles, Notation envelopes — checked against the
//! trusted keys, roots and stores, read through a given transaction.

use super::{
    Attestation, Error, Finding, Identity, KEYS, PublicKey, Trust, Verification, bundles, cosign,
    notation, roots, sigstore,
};
use crate::model::{Digest, Repository};
use crate::store::meta::MetaRead;

impl Trust {
    /// What the signatures of `repo@digest` say under every trusted key, read through `r`
    /// (a write transaction sees the signature it is storing).
    pub(crate) fn verify_in(
        &self,
        r: &dyn MetaRead,
        repo: &Repository,
        digest: &str,
    ) -> Result<Verification, Error> {
        let keys = KEYS.all(r)?;
        let parsed: Vec<(&String, PublicKey)> = keys
            .iter()
            .filter_map(|(n, k)| PublicKey::from_pem(&k.pem).ok().map(|p| (n, p)))
            .collect();
        let manifests = signature_manifests(r, repo, digest)?;
        // Read when a bundle or a keyless signature needs them.
        let mut roots_read = manifests.iter().any(|(form, _, _)| *form == "bundle");
        let mut roots = if roots_read {
            roots::trusted_roots(r)?
        } else {
            Vec::new()
        };
        let stores = if manifests.iter().any(|(form, _, _)| *form == "notation") {
            roots::trust_stores(r)?
        } else {
            Vec::new()
        };
        let mut signatures = Vec::new();
        let mut attestations = Vec::new();
        for (form, manifest, body) in manifests {
            if form == "bundle" {
                let c = self.check_bundle(&body, digest, &parsed, &roots);
                attestations.extend(c.attestation);
                signatures.push(Finding {
                    manifest,
                    form: form.to_owned(),
                    key: c.key,
                    identity: c.identity,
                    store: None,
                    reason: c.reason,
                });
                continue;
            }
            if form == "notation" {
                signatures.push(self.notation_finding(manifest, &body, digest, &stores));
                continue;
            }
            if form == "att" {
                if !roots_read {
                    roots = roots::trusted_roots(r)?;
                    roots_read = true;
                }
                for (reason, attestation) in self.check_att(&body, digest, &parsed, &roots) {
                    attestations.extend(attestation);
                    signatures.push(finding(&manifest, form, None, &reason));
                }
                continue;
            }
            let layers = match cosign::layers(&body) {
                Ok(l) if l.is_empty() => {
                    signatures.push(finding(
                        &manifest,
                        form,
                        None,
                        "it holds no signature layer",
                    ));
                    continue;
                }
                Ok(l) => l,
                Err(e) => {
                    signatures.push(finding(&manifest, form, None, &e));
                    continue;
                }
            };
            for layer in layers {
                if layer.keyless() && roots.is_empty() && !roots_read {
                    roots = roots::trusted_roots(r)?;
                    roots_read = true;
                }
                let (key, identity, reason) = self.check_layer(&layer, digest, &parsed, &roots);
                let mut f = finding(&manifest, form, key, &reason);
                f.identity = identity;
                signatures.push(f);
            }
        }
        Ok(summarize(repo, digest, signatures, attestations))
    }

    /// The key a signature layer verifies with, or none and why.
    fn check_layer(
        &self,
        layer: &cosign::SignatureLayer,
        digest: &str,
        keys: &[(&String, PublicKey)],
        roots: &[(String, sigstore::TrustedRoot)],
    ) -> (Option<String>, Option<Identity>, String) {
        let signature = match &layer.signature {
            Ok(s) => s,
            Err(e) => return (None, None, e.clone()),
        };
        let payload = match self.payload(layer) {
            Ok(p) => p,
            Err(e) => return (None, None, e),
        };
        if let Err(e) = cosign::check_payload(&payload, digest) {
            return (None, None, e);
        }
        if layer.keyless() {
            let signed = cosign::Signed::Message {
                payload: &payload,
                signature,
            };
            let artifact = sigstore::Artifact::Bytes(&payload);
            return match keyless_layer(&layer.keyless, &signed, artifact, roots) {
                Ok((v, root)) => {
                    let identity = identity_of(&v);
                    let reason = format!(
                        "a keyless signature that verifies as {identity} under trusted root {root}"
                    );
                    (None, Some(identity), reason)
                }
                Err(e) => (None, None, format!("a keyless signature: {e}")),
            };
        }
        if let Some((name, _)) = keys.iter().find(|(_, k)| k.verifies(&payload, signature)) {
            return (
                Some((*name).clone()),
                None,
                format!("verifies with key {name}"),
            );
        }
        let reason = if keys.is_empty() {
            "no trusted key to verify it with"
        } else {
            "signed by a key that is not trusted, or its payload was changed after signing"
        };
        (None, None, reason.to_owned())
    }

    /// What each DSSE envelope of a cosign `.att` manifest says: a sentence, and the
    /// attestation when its signature verifies with a trusted key.
    fn check_att(
        &self,
        body: &[u8],
        digest: &str,
        keys: &[(&String, PublicKey)],
        roots: &[(String, sigstore::TrustedRoot)],
    ) -> Vec<(String, Option<Attestation>)> {
        let layers = match cosign::attestation_layers(body) {
            Ok(l) if l.is_empty() => return vec![("it holds no DSSE envelope".to_owned(), None)],
            Ok(l) => l,
            Err(e) => return vec![(e, None)],
        };
        layers
            .into_iter()
            .map(|(d, size, keyless)| {
                let envelope = match self.small_blob(&d, size, cosign::ENVELOPE_LIMIT, "envelope") {
                    Ok(e) => e,
                    Err(e) => return (format!("an attestation that cannot be read: {e}"), None),
                };
                if keyless.certificate.is_some() {
                    return keyless_attestation(&keyless, &envelope, digest, roots);
                }
                match cosign::check_envelope(&envelope, digest, keys) {
                    Ok((key, predicate_type, predicate)) => (
                        format!("an attestation of type {predicate_type} by key {key}"),
                        Some(Attestation {
                            predicate_type,
                            key: Some(key),
                            identity: None,
                            predicate,
                        }),
                    ),
                    Err(e) => (format!("an attestation that does not verify: {e}"), None),
                }
            })
            .collect()
    }

    /// What a Notation signature manifest's envelope says.
    fn notation_finding(
        &self,
        manifest: String,
        body: &[u8],
        digest: &str,
        stores: &[notation::Store],
    ) -> Finding {
        let (store, reason) = match self.check_notation(body, digest, stores) {
            Ok(store) => (
                Some(store.clone()),
                format!("a Notation signature whose certificate chains to trust store {store}"),
            ),
            Err(e) => (
                None,
                format!("a Notation signature that does not verify: {e}"),
            ),
        };
        Finding {
            manifest,
            form: "notation".to_owned(),
            key: None,
            identity: None,
            store,
            reason,
        }
    }

    /// The trust store a Notation signature manifest's envelope verifies under.
    pub(super) fn check_notation(
        &self,
        manifest: &[u8],
        digest: &str,
        stores: &[notation::Store],
    ) -> Result<String, String> {
        let (media_type, d, size) = notation::envelope_layer(manifest)?;
        let envelope = self.small_blob(&d, size, notation::ENVELOPE_LIMIT, "envelope")?;
        let now = i64::try_from(self.clock.now()).unwrap_or(i64::MAX);
        notation::verify_envelope(&media_type, &envelope, digest, stores, now)
    }

    /// The payload blob of a signature layer, checked against its digest.
    fn payload(&self, layer: &cosign::SignatureLayer) -> Result<Vec<u8>, String> {
        self.small_blob(&layer.payload, layer.size, cosign::PAYLOAD_LIMIT, "payload")
    }

    /// A small blob (`what`: a payload, a bundle) of at most `limit` bytes, checked against
    /// its digest.
    pub(super) fn small_blob(
        &self,
        digest: &Digest,
        size: u64,
        limit: u64,
        what: &str,
    ) -> Result<Vec<u8>, String> {
        if size > limit {
            return Err(format!(
                "its {what} is {size} bytes, more than the {limit} a signature's {what} may be"
            ));
        }
        let len = usize::try_from(size).unwrap_or(usize::MAX);
        let bytes = self
            .blobs
            .open(digest)
            .and_then(|b| b.read_at(0, len))
            .map_err(|e| format!("its {what} {digest} cannot be read: {e}"))?;
        if Digest::of_with(digest.algorithm(), &bytes) != *digest {
            return Err(format!("its {what} {digest} is damaged"));
        }
        Ok(bytes)
    }
}

/// The signature manifests of `repo@digest`: cosign's tag, then OCI 1.1 referrers of
/// cosign's signature artifact type, Sigstore bundles and Notation signatures.
fn signature_manifests(
    r: &dyn MetaRead,
    repo: &Repository,
    digest: &str,
) -> Result<Vec<SignatureManifest>, Error> {
    let name = repo.as_str();
    let mut out = Vec::new();
    if let Some(tag) = cosign::signature_tag(digest)
        && let Some(d) = r.tag(name, &tag)?
        && let Some(m) = r.manifest(name, &d)?
    {
        out.push(("tag", d, m.body));
    }
    if let Some(tag) = cosign::signature_tag(digest)
        .and_then(|t| t.strip_suffix(".sig").map(|base| format!("{base}.att")))
        && let Some(d) = r.tag(name, &tag)?
        && let Some(m) = r.manifest(name, &d)?
    {
        out.push(("att", d, m.body));
    }
    for d in r.referrers(name, digest)? {
        let Some(m) = r.manifest(name, &d)? else {
            continue;
        };
        if out.iter().any(|(_, seen, _)| *seen == d) {
            continue;
        }
        match m.artifact_type.as_deref() {
            Some(cosign::SIGNATURE_ARTIFACT) => out.push(("referrer", d, m.body)),
            Some(bundles::BUNDLE_ARTIFACT) => out.push(("bundle", d, m.body)),
            Some(notation::SIGNATURE_ARTIFACT) => out.push(("notation", d, m.body)),
            _ => {}
        }
    }
    Ok(out)
}

/// The verification the findings of `repo@digest` amount to: who verified, in order.
fn summarize(
    repo: &Repository,
    digest: &str,
    signatures: Vec<Finding>,
    attestations: Vec<Attestation>,
) -> Verification {
    let mut verified_by: Vec<String> = signatures.iter().filter_map(|s| s.key.clone()).collect();
    verified_by.sort();
    verified_by.dedup();
    let mut verified_identities: Vec<Identity> = Vec::new();
    for i in signatures.iter().filter_map(|s| s.identity.clone()) {
        if !verified_identities.contains(&i) {
            verified_identities.push(i);
        }
    }
    let mut verified_stores: Vec<String> =
        signatures.iter().filter_map(|s| s.store.clone()).collect();
    verified_stores.sort();
    verified_stores.dedup();
    Verification {
        repository: repo.to_string(),
        digest: digest.to_owned(),
        verified: !verified_by.is_empty()
            || !verified_identities.is_empty()
            || !verified_stores.is_empty(),
        verified_by,
        verified_identities,
        verified_stores,
        attestations,
        signatures,
    }
}

/// A signature manifest found for an image: its form (`tag`, `referrer`), digest and body.
type SignatureManifest = (&'static str, String, Vec<u8>);

fn finding(manifest: &str, form: &str, key: Option<String>, reason: &str) -> Finding {
    Finding {
        manifest: manifest.to_owned(),
        form: form.to_owned(),
        key,
        identity: None,
        store: None,
        reason: reason.to_owned(),
    }
}

/// Verifies what a keyless cosign layer (certificate and Rekor bundle in its annotations)
/// signed, as the v0.1 bundle it amounts to, under the trusted roots; answers what it
/// proves and the root's name, or why not.
fn keyless_layer(
    keyless: &cosign::Keyless,
    signed: &cosign::Signed<'_>,
    artifact: sigstore::Artifact<'_>,
    roots: &[(String, sigstore::TrustedRoot)],
) -> Result<(sigstore::Verified, String), String> {
    if roots.is_empty() {
        return Err(
            "a keyless (certificate) signature: no trusted root to verify it under (semdock trust root add)".to_owned(),
        );
    }
    let bundle = cosign::legacy_bundle(keyless, signed)?;
    let mut reasons = Vec::new();
    for (name, root) in roots {
        match sigstore::verify_bundle(&bundle, artifact, &sigstore::Expect::AnyIdentity, root) {
            Ok(v) => return Ok((v, name.clone())),
            Err(e) => reasons.push(format!("under trusted root {name}: {e}")),
        }
    }
    Err(format!("it does not verify: {}", reasons.join("; ")))
}

/// What a keyless `.att` envelope attests of image `digest`, under the trusted roots.
fn keyless_attestation(
    keyless: &cosign::Keyless,
    envelope: &[u8],
    digest: &str,
    roots: &[(String, sigstore::TrustedRoot)],
) -> (String, Option<Attestation>) {
    let image: Option<[u8; 32]> = digest
        .strip_prefix("sha256:")
        .and_then(|h| hex::decode(h).ok())
        .and_then(|h| h.try_into().ok());
    let Some(image) = image else {
        return (
            "a keyless attestation of an image not addressed by SHA-256".to_owned(),
            None,
        );
    };
    let signed = cosign::Signed::Envelope(envelope);
    match keyless_layer(keyless, &signed, sigstore::Artifact::Sha256(image), roots) {
        Ok((v, root)) => {
            let identity = identity_of(&v);
            let statement: serde_json::Value = v
                .statement
                .as_ref()
                .and_then(|(_, s)| serde_json::from_slice(s).ok())
                .unwrap_or_default();
            let predicate_type = statement
                .get("predicateType")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_owned();
            (
                format!(
                    "an attestation of type {predicate_type} by {identity}, under trusted root {root}"
                ),
                Some(Attestation {
                    predicate_type,
                    key: None,
                    identity: Some(identity),
                    predicate: statement
                        .get("predicate")
                        .cloned()
                        .unwrap_or(serde_json::Value::Null),
                }),
            )
        }
        Err(e) => (format!("a keyless attestation: {e}"), None),
    }
}

fn identity_of(v: &sigstore::Verified) -> Identity {
    Identity {
        issuer: v.issuer.clone().unwrap_or_default(),
        subject: v.subject.clone().unwrap_or_default(),
    }
}
