//! Feeds and their settings: creation, changes with their preview and audit record, and
//! deletion.

use crate::domain::Error;
use crate::domain::tags::{self, Change};
use crate::domain::versioning::{self, TagKind};
use crate::model::FeedName;
use crate::store::meta::{AuditRecord, FeedRecord};

use super::Registry;

/// A feed's settings as the domain hands them out (the store's record stays inside).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feed {
    /// Unix seconds.
    pub created: u64,
    pub description: String,
    /// Whether anyone, without credentials, may pull from the feed.
    pub anonymous_pull: bool,
    /// Container versioning: only version and permitted tags, immutable versions, virtual
    /// tags.
    pub versioning: bool,
    /// Tags (exact or `*` globs) a versioned feed accepts besides versions.
    pub permitted: Vec<String>,
}

impl From<FeedRecord> for Feed {
    fn from(r: FeedRecord) -> Self {
        Self {
            created: r.created,
            description: r.description,
            anonymous_pull: r.anonymous_pull,
            versioning: r.versioning,
            permitted: r.permitted,
        }
    }
}

/// A change of feed settings; `None` leaves a setting as it is.
#[derive(Debug, Clone, Default)]
pub struct FeedChange {
    pub description: Option<String>,
    pub anonymous_pull: Option<bool>,
    pub versioning: Option<bool>,
    pub permitted: Option<Vec<String>>,
}

fn describe_feed_change(before: &FeedRecord, after: &FeedRecord) -> String {
    let mut parts = Vec::new();
    if before.versioning != after.versioning {
        parts.push(format!(
            "versioning {}",
            if after.versioning { "on" } else { "off" }
        ));
    }
    if before.permitted != after.permitted {
        parts.push(format!("permitted tags [{}]", after.permitted.join(", ")));
    }
    if before.anonymous_pull != after.anonymous_pull {
        parts.push(format!(
            "anonymous pull {}",
            if after.anonymous_pull { "on" } else { "off" }
        ));
    }
    if before.description != after.description {
        parts.push("description".to_owned());
    }
    parts.join("; ")
}

/// What a feed settings change would do (see `Registry::preview_feed_change`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct FeedPreview {
    /// `repo:tag` a versioned feed would refuse from now on (kept, shown as legacy).
    pub become_legacy: Vec<String>,
    /// `repo:tag` that were legacy and would become permitted (or the feed unversioned).
    pub stop_being_legacy: Vec<String>,
    /// `repo:tag → version` the server would set on switching versioning on.
    pub virtual_appear: Vec<String>,
    /// `repo:tag` virtual tags that would stop following versions on switching it off.
    pub virtual_frozen: Vec<String>,
}

impl Registry {
    // ---- feeds ----

    /// Creates `feed` unless it exists; says whether it was created.
    pub fn ensure_feed(&self, feed: &FeedName) -> Result<bool, Error> {
        self.meta.write(|w| {
            if w.feed(feed.as_str())?.is_some() {
                return Ok(false);
            }
            w.put_feed(
                feed.as_str(),
                &FeedRecord {
                    created: self.clock.now(),
                    description: String::new(),
                    anonymous_pull: false,
                    versioning: false,
                    permitted: Vec::new(),
                },
            )?;
            Ok(true)
        })
    }

    pub fn create_feed(&self, feed: &FeedName) -> Result<(), Error> {
        if self.ensure_feed(feed)? {
            Ok(())
        } else {
            Err(Error::FeedExists {
                feed: feed.to_string(),
            })
        }
    }

    /// Changes a feed's settings; `None` leaves one as it is. Callers authorize first
    /// (feed admin).
    pub fn update_feed(&self, feed: &str, change: FeedChange, actor: &str) -> Result<Feed, Error> {
        if let Some(patterns) = &change.permitted {
            for p in patterns {
                versioning::check_pattern(p)?;
            }
        }
        self.meta.write(|w| {
            let mut record = w.feed(feed)?.ok_or_else(|| Error::FeedUnknown {
                feed: feed.to_owned(),
            })?;
            let before = record.clone();
            if let Some(d) = change.description {
                record.description = d;
            }
            if let Some(a) = change.anonymous_pull {
                record.anonymous_pull = a;
            }
            if let Some(v) = change.versioning {
                record.versioning = v;
            }
            if let Some(p) = change.permitted {
                record.permitted = p;
            }
            if record == before {
                return Ok(record.into());
            }
            w.put_feed(feed, &record)?;
            w.append_audit(&AuditRecord {
                time_ms: self.clock.now_ms(),
                actor: actor.to_owned(),
                feed: feed.to_owned(),
                change: describe_feed_change(&before, &record),
            })?;
            if record.versioning && !before.versioning {
                // Switching on computes the virtual tags at once; existing tags stay.
                let cause = Change {
                    actor,
                    clock: &self.clock,
                    method: "settings",
                    comment: None,
                };
                let (repos, _) =
                    w.repositories(&format!("{feed}/"), None, usize::MAX, &|_| true)?;
                for repo in repos {
                    tags::recompute_virtual(w, &repo, &cause)?;
                }
            }
            Ok(record.into())
        })
    }

    /// What a settings change would do to the feed's tags, without changing anything: the tags
    /// that would become legacy and the virtual tags that would appear or go.
    pub fn preview_feed_change(
        &self,
        feed: &str,
        change: &FeedChange,
    ) -> Result<FeedPreview, Error> {
        let r = self.meta.read()?;
        let current = r.feed(feed)?.ok_or_else(|| Error::FeedUnknown {
            feed: feed.to_owned(),
        })?;
        let mut next = current.clone();
        if let Some(v) = change.versioning {
            next.versioning = v;
        }
        if let Some(p) = &change.permitted {
            for pattern in p {
                versioning::check_pattern(pattern)?;
            }
            next.permitted.clone_from(p);
        }
        let (before, after) = (tags::policy_of(&current), tags::policy_of(&next));
        let mut preview = FeedPreview::default();
        let (repos, _) = r.repositories(&format!("{feed}/"), None, usize::MAX, &|_| true)?;
        for repo in repos {
            let all = r.tag_targets(&repo)?;
            let legacy =
                |p: &versioning::Policy, tag: &str| p.enabled && p.classify(tag) == TagKind::Other;
            for (tag, _) in &all {
                if legacy(&after, tag) && !legacy(&before, tag) {
                    preview.become_legacy.push(format!("{repo}:{tag}"));
                }
                if legacy(&before, tag) && !legacy(&after, tag) {
                    preview.stop_being_legacy.push(format!("{repo}:{tag}"));
                }
            }
            let versions: Vec<(semver::Version, &str)> = all
                .iter()
                .filter_map(|(t, d)| versioning::version_of(t).map(|v| (v, d.as_str())))
                .collect();
            let desired = versioning::virtual_tags(versions.iter().map(|(v, d)| (v, *d)));
            if next.versioning && !current.versioning {
                for (tag, digest) in &desired {
                    let version = versions
                        .iter()
                        .filter(|(_, d)| d == digest)
                        .map(|(v, _)| v)
                        .max()
                        .map(ToString::to_string)
                        .unwrap_or_default();
                    preview
                        .virtual_appear
                        .push(format!("{repo}:{tag} → {version}"));
                }
            }
            if !next.versioning && current.versioning {
                for tag in desired.keys() {
                    preview.virtual_frozen.push(format!("{repo}:{tag}"));
                }
            }
        }
        Ok(preview)
    }

    /// Feed setting changes, oldest first.
    pub fn audit(&self, feed: &str) -> Result<Vec<AuditRecord>, Error> {
        Ok(self
            .meta
            .read()?
            .audit()?
            .into_iter()
            .filter(|a| a.feed == feed)
            .collect())
    }

    pub fn feed(&self, feed: &str) -> Result<Feed, Error> {
        self.meta
            .read()?
            .feed(feed)?
            .map(Feed::from)
            .ok_or_else(|| Error::FeedUnknown {
                feed: feed.to_owned(),
            })
    }

    pub fn feeds(&self) -> Result<Vec<(String, Feed)>, Error> {
        Ok(self
            .meta
            .read()?
            .feeds()?
            .into_iter()
            .map(|(name, record)| (name, record.into()))
            .collect())
    }

    /// Deletes a feed with every repository, manifest, tag and link in it. Blob files stay
    /// until garbage collection finds them unreferenced.
    pub fn delete_feed(&self, feed: &FeedName) -> Result<(), Error> {
        self.meta.write(|w| {
            if !w.remove_feed(feed.as_str())? {
                return Err(Error::FeedUnknown {
                    feed: feed.to_string(),
                });
            }
            let prefix = format!("{feed}/");
            let (repos, _) = w.repositories(&prefix, None, usize::MAX, &|_| true)?;
            for repo in repos {
                for (tag, _) in w.tag_targets(&repo)? {
                    w.remove_tag(&repo, &tag)?;
                }
                for digest in w.manifest_digests(&repo)? {
                    if let Some(subject) = w.manifest(&repo, &digest)?.and_then(|m| m.subject) {
                        w.remove_referrer(&repo, &subject, &digest)?;
                    }
                    w.remove_manifest(&repo, &digest)?;
                }
                for digest in w.linked_blobs(&repo)? {
                    w.unlink(&repo, &digest)?;
                }
                w.remove_repository(&repo)?;
            }
            w.remove_grants_on(feed.as_str())?;
            Ok(())
        })
    }
}
