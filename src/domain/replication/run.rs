//! One run of a rule: the tags it selects (all of them, or those an event names), each
//! image pushed bottom up — blobs, index children, the manifest by digest, its referrers and
//! cosign's tag-named signatures — and the tag last. What the target holds is asked first and
//! never sent again.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{
    Conflict, EVENT_KINDS, Filter, Replication, Rule, RunGuard, STATES, State, audit, stored,
};
use crate::clients::registry::{BlobBody, BlobOutcome, Upstream};
use crate::domain::versioning::{is_virtual, version_of};
use crate::domain::{ClientError, Error, Registry};
use crate::model::Digest;
use crate::store::blobs::FrontToBack;
use crate::store::meta::{AuditRecord, Scan};

/// Errors kept in a report.
const MAX_ERRORS: usize = 50;
/// Events handled per tick before the next rule's turn.
const EVENTS_PER_TICK: usize = 256;
/// How deep index children nest before a run stops following them.
const MAX_DEPTH: usize = 4;
/// The first retry's wait; each next one doubles, up to `MAX_BACKOFF_MS`.
const FIRST_BACKOFF_MS: u64 = 1_000;
const MAX_BACKOFF_MS: u64 = 300_000;
/// How long the target may take to answer.
const TARGET_TIMEOUT: Duration = Duration::from_mins(1);
/// The OCI image index, for the referrers tag fallback.
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunReport {
    /// Unix milliseconds.
    pub started_ms: u64,
    pub finished_ms: u64,
    /// `full` (scheduled, new rule or asked for) or `events`.
    pub trigger: String,
    /// Tags the target now holds as here (set now, or found so).
    pub tags: usize,
    /// Manifests pushed (images, index children, referrers).
    pub manifests_pushed: usize,
    pub blobs_uploaded: usize,
    pub blobs_mounted: usize,
    /// Bytes of the blobs uploaded.
    pub bytes_uploaded: u64,
    pub referrers: usize,
    /// Tag history entries carried to a semdock target.
    #[serde(default)]
    pub history_carried: usize,
    /// Tags whose history a semdock target did not take (its credentials do not administer
    /// the feed there).
    #[serde(default)]
    pub history_not_carried: usize,
    /// Tags or images deleted at the target.
    pub deleted: usize,
    pub conflicts: usize,
    /// What failed, one sentence each (the first 50).
    pub errors: Vec<String>,
}

/// A run in progress: the target's client and what it is known to hold.
struct Pusher<'a> {
    registry: &'a Registry,
    rule: &'a Rule,
    client: Upstream,
    /// The target keeps its own virtual tags (a semdock).
    semdock: bool,
    /// The source feed is versioned: its `latest`, `3`, `3.4` are the server's.
    versioned: bool,
    /// (target repository, digest) of manifests the target holds.
    manifests: HashSet<(String, String)>,
    /// blob digest → a target repository that holds it (to mount from).
    blobs_at: HashMap<String, String>,
    /// Whether the target indexes subjects (learnt from its first referrer push).
    referrers_api: Option<bool>,
    report: RunReport,
    conflicts: Vec<Conflict>,
}

#[allow(clippy::needless_pass_by_value)] // the shape map_err hands over
fn target(e: ClientError) -> Error {
    match e {
        ClientError::Unavailable { .. } => Error::Unavailable(e.to_string()),
        ClientError::Refused { .. } => Error::Invalid(e.to_string()),
    }
}

impl<'a> Pusher<'a> {
    fn new(registry: &'a Registry, rule: &'a Rule, trigger: &str) -> Result<Self, Error> {
        let credentials = rule
            .username
            .clone()
            .map(|u| (u, rule.password.clone().unwrap_or_default()));
        let outbound = registry.outbound();
        let client = Upstream::for_replication(&rule.url, credentials, TARGET_TIMEOUT, &outbound);
        let semdock = client.is_semdock().map_err(target)?;
        let versioned = registry
            .meta()
            .read()?
            .feed(&rule.feed)?
            .is_some_and(|f| f.versioning);
        Ok(Self {
            registry,
            rule,
            client,
            semdock,
            versioned,
            manifests: HashSet::new(),
            blobs_at: HashMap::new(),
            referrers_api: None,
            report: RunReport {
                started_ms: registry.clock().now_ms(),
                trigger: trigger.to_owned(),
                ..RunReport::default()
            },
            conflicts: Vec::new(),
        })
    }

    /// Whether the rule carries `tag` of `repo` (besides its filters): the server's own
    /// virtual tags stay with a semdock target, which keeps its own.
    fn carries(&self, tag: &str) -> bool {
        !(self.semdock && self.versioned && is_virtual(tag))
    }

    /// Tag `tag` of `repo` at the target on `digest`: the image first, the tag last; a
    /// version the target holds on another digest is a conflict, left alone.
    fn tag(&mut self, repo: &str, tag: &str, digest: &str) -> Result<(), Error> {
        if !self.carries(tag) {
            return Ok(());
        }
        let name = self.rule.target_name(repo);
        let there = self.client.target_manifest(&name, tag).map_err(target)?;
        if there.as_deref() == Some(digest) {
            self.report.tags += 1;
            // The image is there; its referrers may have come since.
            return self.image(repo, digest, 0);
        }
        if let Some(other) = there.clone()
            && version_of(tag).is_some()
        {
            self.report.conflicts += 1;
            self.conflicts.push(Conflict {
                repository: repo.to_owned(),
                tag: tag.to_owned(),
                digest: digest.to_owned(),
                target_digest: other,
                time: audit::rfc3339(self.registry.clock().now_ms()),
            });
            return Ok(());
        }
        self.image(repo, digest, 0)?;
        if self.semdock && there.is_none() {
            self.carry_history(repo, &name, tag);
        }
        let m = self.manifest(repo, digest)?;
        self.client
            .put_manifest(&name, tag, &m.media_type, &m.body)
            .map_err(target)?;
        self.report.tags += 1;
        Ok(())
    }

    /// Sends tag `tag`'s history to a semdock target before the tag is first set there. Its
    /// credentials must administer the feed there; where they do not, the images go on
    /// without it, and the report counts what was not carried.
    fn carry_history(&mut self, repo: &str, name: &str, tag: &str) {
        let origin = Replication {
            registry: self.registry,
        }
        .origin();
        let carried = match self.registry.carried_history(repo, tag, &origin) {
            Ok(c) if !c.entries.is_empty() => c,
            _ => return,
        };
        let body = serde_json::to_value(&carried).unwrap_or_default();
        match self.client.carry_history(
            name,
            tag,
            &origin,
            body["entries"].as_array().map_or(&[], Vec::as_slice),
        ) {
            Ok(()) => self.report.history_carried += carried.entries.len(),
            Err(e) => {
                tracing::debug!(repository = repo, tag, error = %e, "tag history not carried");
                self.report.history_not_carried += 1;
            }
        }
    }

    fn manifest(
        &self,
        repo: &str,
        digest: &str,
    ) -> Result<crate::store::meta::ManifestRecord, Error> {
        self.registry
            .meta()
            .read()?
            .manifest(repo, digest)?
            .ok_or_else(|| Error::ManifestUnknown {
                repository: repo.to_owned(),
                reference: digest.to_owned(),
            })
    }

    /// Manifest `digest` of `repo` at the target, with all it references, then its
    /// referrers and cosign's signatures of it.
    fn image(&mut self, repo: &str, digest: &str, depth: usize) -> Result<(), Error> {
        let name = self.rule.target_name(repo);
        let key = (name.clone(), digest.to_owned());
        if !self.manifests.contains(&key) {
            let m = self.manifest(repo, digest)?;
            if self
                .client
                .target_manifest(&name, digest)
                .map_err(target)?
                .is_none()
            {
                if depth < MAX_DEPTH {
                    for child in &m.children {
                        self.image(repo, child, depth + 1)?;
                    }
                }
                for blob in &m.blobs {
                    self.blob(&name, blob)?;
                }
                let pushed = self
                    .client
                    .put_manifest(&name, digest, &m.media_type, &m.body)
                    .map_err(target)?;
                self.report.manifests_pushed += 1;
                if let Some(subject) = &m.subject {
                    self.referrers_api = Some(pushed.subject_indexed);
                    if !pushed.subject_indexed {
                        self.fallback(&name, subject, digest, &m)?;
                    }
                }
            } else if let Some(subject) = &m.subject
                && self.referrers_api != Some(true)
            {
                self.fallback(&name, subject, digest, &m)?;
            }
            self.manifests.insert(key);
        }
        if depth == 0 {
            self.referrers(repo, digest)?;
        }
        Ok(())
    }

    /// The referrers of `digest` and cosign's tag-named signatures, attestations and SBOMs.
    fn referrers(&mut self, repo: &str, digest: &str) -> Result<(), Error> {
        let (referrers, attached) = {
            let r = self.registry.meta().read()?;
            let referrers = r.referrers(repo, digest)?;
            let stem = digest.replacen(':', "-", 1);
            let mut attached = Vec::new();
            for suffix in ["sig", "att", "sbom"] {
                let tag = format!("{stem}.{suffix}");
                if let Some(d) = r.tag(repo, &tag)? {
                    attached.push((tag, d));
                }
            }
            (referrers, attached)
        };
        for referrer in referrers {
            let before = self.report.manifests_pushed;
            self.image(repo, &referrer, 1)?;
            self.report.referrers += usize::from(self.report.manifests_pushed > before);
        }
        for (tag, d) in attached {
            let name = self.rule.target_name(repo);
            if self
                .client
                .target_manifest(&name, &tag)
                .map_err(target)?
                .as_deref()
                != Some(&d)
            {
                self.image(repo, &d, 1)?;
                let m = self.manifest(repo, &d)?;
                self.client
                    .put_manifest(&name, &tag, &m.media_type, &m.body)
                    .map_err(target)?;
                self.report.referrers += 1;
            }
        }
        Ok(())
    }

    /// The referrers tag fallback of the OCI distribution spec, for a target without the
    /// referrers API: the index tagged `sha256-HEX` of the subject lists referrer `digest`.
    fn fallback(
        &mut self,
        name: &str,
        subject: &str,
        digest: &str,
        m: &crate::store::meta::ManifestRecord,
    ) -> Result<(), Error> {
        let tag = subject.replacen(':', "-", 1);
        let mut index = match self
            .client
            .target_manifest_body(name, &tag)
            .map_err(target)?
        {
            Some((_, body)) => serde_json::from_slice::<serde_json::Value>(&body)
                .unwrap_or_else(|_| serde_json::json!({})),
            None => serde_json::json!({}),
        };
        let listed = index["manifests"]
            .as_array()
            .is_some_and(|a| a.iter().any(|d| d["digest"].as_str() == Some(digest)));
        if listed {
            return Ok(());
        }
        let mut descriptor = serde_json::json!({
            "mediaType": m.media_type,
            "digest": digest,
            "size": m.body.len(),
        });
        if let Some(t) = &m.artifact_type {
            descriptor["artifactType"] = serde_json::json!(t);
        }
        if !m.annotations.is_empty() {
            descriptor["annotations"] = serde_json::json!(m.annotations);
        }
        let mut manifests = index["manifests"].as_array().cloned().unwrap_or_default();
        manifests.push(descriptor);
        index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": manifests,
        });
        let body = serde_json::to_vec(&index).map_err(|e| Error::Internal(e.to_string()))?;
        self.client
            .put_manifest(name, &tag, OCI_INDEX, &body)
            .map_err(target)?;
        Ok(())
    }

    /// Blob `digest` in target repository `name`: there already, mounted from another of
    /// the target's repositories this run put it in, or uploaded from the blob store.
    fn blob(&mut self, name: &str, digest: &str) -> Result<(), Error> {
        if self.blobs_at.get(digest).map(String::as_str) == Some(name)
            || self.client.has_blob(name, digest).map_err(target)?
        {
            self.blobs_at.insert(digest.to_owned(), name.to_owned());
            return Ok(());
        }
        let from = self.blobs_at.get(digest).cloned();
        let parsed: Digest = digest
            .parse()
            .map_err(|e| Error::DigestInvalid(format!("{digest}: {e}")))?;
        let store = self.registry.blob_store();
        let meta = self.registry.meta();
        let mut len = 0;
        let outcome = self
            .client
            .upload_blob(name, digest, from.as_deref(), || {
                let size = meta
                    .read()
                    .ok()
                    .and_then(|r| r.blob(digest).ok().flatten())
                    .map(|b| b.size)
                    .ok_or_else(|| {
                        ClientError::refused(
                            crate::domain::Peer::Replica,
                            format!("blob {digest} is not stored here"),
                        )
                    })?;
                let blob = store.open(&parsed).map_err(|e| {
                    ClientError::unavailable(
                        crate::domain::Peer::Replica,
                        format!("reading blob {digest} here: {e}"),
                    )
                })?;
                len = size;
                Ok(BlobBody {
                    len: size,
                    reader: Box::new(FrontToBack::new(blob)),
                })
            })
            .map_err(target)?;
        match outcome {
            BlobOutcome::Mounted => self.report.blobs_mounted += 1,
            BlobOutcome::Uploaded => {
                self.report.blobs_uploaded += 1;
                self.report.bytes_uploaded += len;
            }
        }
        self.blobs_at.insert(digest.to_owned(), name.to_owned());
        Ok(())
    }

    /// Deletes tag `tag` of `repo` at the target, which pointed at `digest` here: by tag, or
    /// by digest where the target deletes only digests and no tag here points at it still.
    fn delete(&mut self, repo: &str, tag: Option<&str>, digest: Option<&str>) -> Result<(), Error> {
        let name = self.rule.target_name(repo);
        if let Some(tag) = tag {
            if !self.carries(tag) {
                return Ok(());
            }
            if self.client.delete_manifest(&name, tag).map_err(target)? {
                self.report.deleted += 1;
                return Ok(());
            }
        }
        let Some(digest) = digest else {
            return Ok(());
        };
        let still = !self
            .registry
            .meta()
            .read()?
            .tags_pointing_at(repo, digest)?
            .is_empty();
        if !still && self.client.delete_manifest(&name, digest).map_err(target)? {
            self.report.deleted += 1;
        }
        Ok(())
    }

    /// Every selected tag of the feed, each on its own: a failure is reported and the run
    /// goes on.
    fn full(&mut self) -> Result<(), Error> {
        let filters = self.rule.parsed_filters();
        let feed = self.rule.feed.clone();
        let mut after: Option<String> = None;
        loop {
            let (repos, more) = self.registry.meta().read()?.repositories(
                &format!("{feed}/"),
                after.as_deref(),
                1000,
                &|_| true,
            )?;
            for repo in &repos {
                let path = &repo[feed.len() + 1..];
                if !filters.is_empty() && !filters.iter().any(|f| f.selects_repository(path)) {
                    continue;
                }
                let targets = self.registry.meta().read()?.tag_targets(repo)?;
                // Versions first, so that a moving tag lands on an image already there.
                let (mut mine, mut moving): (Vec<_>, Vec<_>) = targets
                    .into_iter()
                    .filter(|(t, _)| !is_attached(t) && selected(&filters, path, t))
                    .partition(|(t, _)| version_of(t).is_some());
                mine.append(&mut moving);
                for (tag, digest) in mine {
                    if let Err(e) = self.tag(repo, &tag, &digest) {
                        if matches!(e, Error::Unavailable(_)) {
                            return Err(e);
                        }
                        self.report.errors.push(format!("{repo}:{tag}: {e}"));
                    }
                }
            }
            if !more {
                return Ok(());
            }
            after = repos.last().cloned();
        }
    }

    /// Event `a` of the feed: its tag as it stands now, or its deletion.
    fn event(&mut self, a: &AuditRecord) -> Result<(), Error> {
        let Some(repo) = a.repository.as_deref() else {
            return Ok(());
        };
        let path = repo
            .strip_prefix(&format!("{}/", self.rule.feed))
            .unwrap_or(repo);
        let filters = self.rule.parsed_filters();
        if let Some(tag) = a.tag.as_deref() {
            if is_attached(tag) || !selected(&filters, path, tag) {
                return Ok(());
            }
            let now = self.registry.meta().read()?.tag(repo, tag)?;
            return match now {
                Some(digest) => self.tag(repo, tag, &digest),
                None if self.rule.deletions => self.delete(repo, Some(tag), a.digest.as_deref()),
                None => Ok(()),
            };
        }
        let gone = match a.digest.as_deref() {
            Some(d) => !self.registry.meta().read()?.has_manifest(repo, d)?,
            None => false,
        };
        let in_scope = filters.is_empty() || filters.iter().any(|f| f.selects_repository(path));
        if gone && self.rule.deletions && in_scope {
            self.delete(repo, None, a.digest.as_deref())
        } else {
            Ok(())
        }
    }
}

/// Cosign's tag-named signatures, attestations and SBOMs (`sha256-HEX.sig`): carried with
/// the image they sign, whatever the filters.
fn is_attached(tag: &str) -> bool {
    tag.starts_with("sha256-") && [".sig", ".att", ".sbom"].iter().any(|s| tag.ends_with(s))
}

fn selected(filters: &[Filter], path: &str, tag: &str) -> bool {
    filters.is_empty() || filters.iter().any(|f| f.selects(path, tag))
}

fn backoff_ms(attempts: u32) -> u64 {
    FIRST_BACKOFF_MS
        .saturating_mul(1 << attempts.saturating_sub(1).min(16))
        .min(MAX_BACKOFF_MS)
}

impl Replication<'_> {
    /// A full run of rule `name` now (an operator asked): the report, or `Conflict` while
    /// it runs elsewhere.
    pub fn run_now(&self, name: &str) -> Result<RunReport, Error> {
        let rule = stored(&*self.registry.meta().read()?, name)?;
        let Some(guard) = self.take(name)? else {
            return Err(Error::Conflict(format!(
                "replication rule {name:?} is running now: ask again when it is done"
            )));
        };
        self.full_run(&rule, &guard)
    }

    fn full_run(&self, rule: &Rule, _guard: &RunGuard<'_>) -> Result<RunReport, Error> {
        let outcome = Pusher::new(self.registry, rule, "full").map(|mut p| {
            let result = p.full();
            (p, result)
        });
        let now = self.registry.clock().now_ms();
        let (report, conflicts, failure) = match outcome {
            Ok((mut p, result)) => {
                p.report.finished_ms = now;
                p.report.errors.truncate(MAX_ERRORS);
                (Some(p.report), p.conflicts, result.err())
            }
            Err(e) => (None, Vec::new(), Some(e)),
        };
        self.save(&rule.name, |state| {
            state.last_full_ms = now;
            Self::note_conflicts(state, conflicts.clone());
            if let Some(e) = &failure {
                state.attempts += 1;
                state.next_attempt_ms = now + backoff_ms(state.attempts);
                state.last_error = Some(e.to_string());
            } else {
                state.full_pending = false;
                state.attempts = 0;
                state.next_attempt_ms = 0;
                state.last_error = report.as_ref().and_then(|r| r.errors.first().cloned());
            }
            if let Some(r) = &report {
                state.last_run = Some(r.clone());
            }
        })?;
        match (report, failure) {
            (_, Some(e)) => Err(e),
            (Some(r), None) => {
                tracing::info!(
                    rule = rule.name,
                    tags = r.tags,
                    blobs = r.blobs_uploaded,
                    conflicts = r.conflicts,
                    errors = r.errors.len(),
                    "replication run done"
                );
                Ok(r)
            }
            (None, None) => Err(Error::Internal(
                "a replication run ended with no report".into(),
            )),
        }
    }

    /// Asks for a full run of rule `name` at the next tick.
    pub fn request_full_run(&self, name: &str) -> Result<(), Error> {
        stored(&*self.registry.meta().read()?, name)?;
        self.save(name, |state| {
            state.full_pending = true;
            state.next_attempt_ms = 0;
        })
    }

    fn save(&self, name: &str, change: impl Fn(&mut State)) -> Result<(), Error> {
        self.registry.meta().write(|w| {
            // A rule deleted meanwhile keeps no state.
            if stored(w, name).is_err() {
                return Ok(());
            }
            let mut state = STATES.get(w, name)?.unwrap_or_default();
            change(&mut state);
            STATES.put(w, name, &state)?;
            Ok::<_, Error>(())
        })
    }

    /// What is due of every active rule, on the node that takes it: the feed's events after
    /// its cursor (when it follows pushes), then a full run when asked for or scheduled.
    /// Answers how many rules did something.
    pub fn tick(&self) -> Result<usize, Error> {
        let rules = super::RULES.all(&*self.registry.meta().read()?)?;
        let mut worked = 0;
        for (name, rule) in rules {
            if !rule.active {
                continue;
            }
            let Some(guard) = self.take(&name)? else {
                continue;
            };
            match self.tick_rule(&rule, &guard) {
                Ok(true) => worked += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(rule = name, error = %e, "replication failed; retried later");
                }
            }
        }
        Ok(worked)
    }

    fn tick_rule(&self, rule: &Rule, guard: &RunGuard<'_>) -> Result<bool, Error> {
        let state = STATES
            .get(&*self.registry.meta().read()?, &rule.name)?
            .unwrap_or_default();
        let now = self.registry.clock().now_ms();
        if now < state.next_attempt_ms {
            return Ok(false);
        }
        let scheduled = rule.interval_seconds > 0
            && now.saturating_sub(state.last_full_ms) >= rule.interval_seconds * 1000;
        if state.full_pending || scheduled {
            self.full_run(rule, guard)?;
            return Ok(true);
        }
        if !rule.on_push {
            return Ok(false);
        }
        self.follow_events(rule, state)
    }

    /// Handles the feed's events after the rule's cursor, in order, moving the cursor past
    /// each once done; stops at the first failure, to retry it after a backoff.
    fn follow_events(&self, rule: &Rule, mut state: State) -> Result<bool, Error> {
        // Every feed's tag events: the cursor moves past the other feeds' too, so a quiet
        // feed beside busy ones never walks the same entries again.
        let (page, _) = self.registry.meta().read()?.audit_page(
            Some(state.cursor),
            false,
            &EVENT_KINDS,
            EVENTS_PER_TICK,
            &|_| Scan::Keep,
        )?;
        let Some((last, _)) = page.last() else {
            return Ok(false);
        };
        if !page.iter().any(|(_, a)| a.feed == rule.feed) {
            let last = *last;
            self.save(&rule.name, |s| s.cursor = s.cursor.max(last))?;
            return Ok(false);
        }
        let mut pusher = match Pusher::new(self.registry, rule, "events") {
            Ok(p) => p,
            Err(e) => {
                self.failed(&rule.name, &e)?;
                return Err(e);
            }
        };
        let mut failure = None;
        for (seq, a) in &page {
            if a.feed == rule.feed
                && let Err(e) = pusher.event(a)
            {
                failure = Some(e);
                break;
            }
            state.cursor = *seq;
        }
        let now = self.registry.clock().now_ms();
        pusher.report.finished_ms = now;
        let report = pusher.report;
        let conflicts = pusher.conflicts;
        let cursor = state.cursor;
        self.save(&rule.name, |s| {
            s.cursor = s.cursor.max(cursor);
            Self::note_conflicts(s, conflicts.clone());
            if let Some(e) = &failure {
                s.attempts += 1;
                s.next_attempt_ms = now + backoff_ms(s.attempts);
                s.last_error = Some(e.to_string());
            } else {
                s.attempts = 0;
                s.next_attempt_ms = 0;
                s.last_error = None;
            }
            s.last_run = Some(report.clone());
        })?;
        match failure {
            Some(e) => Err(e),
            None => Ok(true),
        }
    }

    fn failed(&self, name: &str, e: &Error) -> Result<(), Error> {
        let now = self.registry.clock().now_ms();
        self.save(name, |s| {
            s.attempts += 1;
            s.next_attempt_ms = now + backoff_ms(s.attempts);
            s.last_error = Some(e.to_string());
        })
    }
}

impl Registry {
    /// Where replication may connect (the outbound policy connectors use).
    pub(crate) fn outbound(&self) -> Arc<crate::clients::outbound::Outbound> {
        self.connector().outbound()
    }
}
