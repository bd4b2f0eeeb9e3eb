//! Feeds and their settings: creation, changes with their preview and audit record, and
//! deletion.

use crate::domain::Error;
use crate::domain::audit::{self, AuditEntry, AuditQuery, Kind};
use crate::domain::tags::{self, Change};
use crate::domain::versioning::{self, TagKind};
use crate::model::FeedName;
use crate::store::meta::FeedRecord;

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
    /// When not empty, tags enter this feed only by promotion from these feeds.
    pub promotion_sources: Vec<String>,
    /// When set, a promotion into this feed needs a referrer of this artifact type.
    pub required_referrer: Option<String>,
    /// When set, the feed is a connector: a pull-through cache of this upstream.
    pub upstream: Option<super::UpstreamInfo>,
}

impl From<FeedRecord> for Feed {
    fn from(r: FeedRecord) -> Self {
        Self {
            created: r.created,
            description: r.description,
            anonymous_pull: r.anonymous_pull,
            versioning: r.versioning,
            permitted: r.permitted,
            promotion_sources: r.promotion_sources,
            required_referrer: r.required_referrer,
            upstream: r.upstream.as_ref().map(super::UpstreamInfo::from),
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
    /// Feeds promotions may come from; an empty list lets pushes in again.
    pub promotion_sources: Option<Vec<String>>,
    /// The artifact type a promotion's image must have a referrer of; empty: none needed.
    pub required_referrer: Option<String>,
    /// Makes the feed a connector of an upstream registry (an empty URL: a plain feed).
    pub upstream: Option<super::UpstreamChange>,
}

impl FeedChange {
    /// Refuses settings no feed can have.
    fn check(&self, feed: &str) -> Result<(), Error> {
        for p in self.permitted.iter().flatten() {
            versioning::check_pattern(p)?;
        }
        for source in self.promotion_sources.iter().flatten() {
            source.parse::<FeedName>()?;
            if source == feed {
                return Err(Error::Invalid(format!(
                    "feed {feed:?} cannot accept promotions only from itself"
                )));
            }
        }
        if let Some(t) = self.required_referrer.as_deref().filter(|t| !t.is_empty())
            && (!t.contains('/') || t.len() > 255 || t.chars().any(char::is_whitespace))
        {
            return Err(Error::Invalid(format!(
                "required referrer {t:?} is not an artifact type (a media type such as application/vnd.dev.cosign.artifact.sig.v1+json)"
            )));
        }
        Ok(())
    }
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
    if before.promotion_sources != after.promotion_sources {
        parts.push(if after.promotion_sources.is_empty() {
            "pushes allowed".to_owned()
        } else {
            format!(
                "promotion only, from [{}]",
                after.promotion_sources.join(", ")
            )
        });
    }
    if before.required_referrer != after.required_referrer {
        parts.push(match &after.required_referrer {
            Some(t) => format!("promotions need a referrer of type {t}"),
            None => "no referrer required".to_owned(),
        });
    }
    if before.upstream != after.upstream {
        // Never the password: only whether one is set.
        parts.push(match &after.upstream {
            Some(u) => format!(
                "upstream {} (prefix {:?}, credentials {}, ttl {} s{}{}{}{}{})",
                u.url,
                u.prefix,
                if u.username.is_some() { "set" } else { "none" },
                u.ttl_seconds,
                if u.offline { ", offline" } else { "" },
                if u.allow.is_empty() {
                    String::new()
                } else {
                    format!(", allow {:?}", u.allow)
                },
                if u.deny.is_empty() {
                    String::new()
                } else {
                    format!(", deny {:?}", u.deny)
                },
                if u.upstream_latest {
                    ", the upstream's latest"
                } else {
                    ""
                },
                if u.sync.is_empty() {
                    String::new()
                } else {
                    format!(
                        ", sync [{}] every {} s",
                        u.sync
                            .iter()
                            .map(super::format_rule)
                            .collect::<Vec<_>>()
                            .join(", "),
                        u.sync_interval_seconds
                    )
                }
            ),
            None => "no upstream".to_owned(),
        });
    }
    if before.description != after.description {
        parts.push("description".to_owned());
    }
    parts.join("; ")
}

/// What a feed settings change would do (see `Feeds::preview_change`).
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
    /// What would change in how images enter the feed, in sentences.
    pub rules: Vec<String>,
}

impl Registry {
    // ---- feeds ----

    fn ensure_feed_by(&self, feed: &FeedName, actor: &str) -> Result<bool, Error> {
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
                    promotion_sources: Vec::new(),
                    required_referrer: None,
                    upstream: None,
                },
            )?;
            crate::domain::auth::bump_feed_epoch(w, feed.as_str())?;
            let entry = audit::entry(
                Kind::FeedCreated,
                actor,
                feed.as_str(),
                format!("feed {feed} created"),
            );
            audit::append(w, &self.clock, entry)?;
            Ok(true)
        })
    }
}

/// The feeds of a registry (`registry.feeds()`): create, change, preview, list and delete them, and their audit log.
#[derive(Clone, Copy)]
pub struct Feeds<'a> {
    pub(super) registry: &'a Registry,
}

impl Feeds<'_> {
    /// Creates `feed` unless it exists; says whether it was created.
    pub fn ensure(&self, feed: &FeedName) -> Result<bool, Error> {
        self.registry.ensure_feed_by(feed, "semdock")
    }

    pub fn create(&self, feed: &FeedName, actor: &str) -> Result<(), Error> {
        if self.registry.ensure_feed_by(feed, actor)? {
            Ok(())
        } else {
            Err(Error::FeedExists {
                feed: feed.to_string(),
            })
        }
    }

    /// Changes a feed's settings; `None` leaves one as it is. Callers authorize first
    /// (feed admin).
    pub fn update(&self, feed: &str, change: FeedChange, actor: &str) -> Result<Feed, Error> {
        change.check(feed)?;
        self.registry.meta.write(|w| {
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
            if let Some(sources) = change.promotion_sources {
                record.promotion_sources = sources;
            }
            if let Some(t) = change.required_referrer {
                record.required_referrer = Some(t).filter(|t| !t.is_empty());
            }
            if let Some(up) = &change.upstream {
                record.upstream = up.apply(record.upstream.as_ref())?;
            }
            if record == before {
                return Ok(record.into());
            }
            w.put_feed(feed, &record)?;
            let change = describe_feed_change(&before, &record);
            audit::append(
                w,
                &self.registry.clock,
                audit::entry(Kind::FeedSettingsChanged, actor, feed, change),
            )?;
            if record.versioning && !before.versioning {
                // Switching on computes the virtual tags at once; existing tags stay.
                let cause = Change {
                    actor,
                    clock: &self.registry.clock,
                    method: "settings",
                    comment: None,
                    source: None,
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
    pub fn preview_change(&self, feed: &str, change: &FeedChange) -> Result<FeedPreview, Error> {
        let r = self.registry.meta.read()?;
        let current = r.feed(feed)?.ok_or_else(|| Error::FeedUnknown {
            feed: feed.to_owned(),
        })?;
        let mut next = current.clone();
        if let Some(v) = change.versioning {
            next.versioning = v;
        }
        change.check(feed)?;
        if let Some(p) = &change.permitted {
            next.permitted.clone_from(p);
        }
        let (before, after) = (tags::policy_of(&current), tags::policy_of(&next));
        let mut preview = FeedPreview::default();
        if let Some(sources) = &change.promotion_sources
            && *sources != current.promotion_sources
        {
            preview.rules.push(if sources.is_empty() {
                format!("Pushes to {feed} will be accepted again.")
            } else {
                format!(
                    "Pushes of tags to {feed} will be refused: images enter only by promotion from {}.",
                    sources.join(", ")
                )
            });
        }
        let referrer = change
            .required_referrer
            .as_deref()
            .map(|t| Some(t.to_owned()).filter(|t| !t.is_empty()));
        if let Some(t) = referrer
            && t != current.required_referrer
        {
            preview.rules.push(match t {
                Some(t) => format!(
                    "Promotions into {feed} will need a referrer of artifact type {t} on the image."
                ),
                None => format!("Promotions into {feed} will need no referrer."),
            });
        }
        if let Some(up) = &change.upstream {
            let next = up.apply(current.upstream.as_ref())?;
            if next != current.upstream {
                preview.rules.push(match (&current.upstream, &next) {
                    (None, Some(n)) => format!(
                        "{feed} will become a connector: a pull-through cache of {}; pushes to it will be refused.",
                        n.url
                    ),
                    (Some(_), None) => format!(
                        "{feed} will stop being a connector: what it cached stays, and pushes will be accepted."
                    ),
                    (_, Some(n)) => format!(
                        "The connector's upstream settings will change ({}).",
                        n.url
                    ),
                    (None, None) => unreachable!("they differ"),
                });
            }
        }
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

    /// Feed setting changes, oldest first: the audit log read for this feed.
    pub fn changes(&self, feed: &str) -> Result<Vec<AuditEntry>, Error> {
        let q = AuditQuery {
            feed: Some(feed.to_owned()),
            kinds: vec![Kind::FeedSettingsChanged, Kind::RetentionRules],
            oldest_first: true,
            ..AuditQuery::default()
        };
        Ok(audit::page(&*self.registry.meta, &q, usize::MAX)?.0)
    }

    /// One page of the audit log (callers check who may read what) and the id the next page
    /// continues after.
    pub fn audit_page(&self, q: &AuditQuery) -> Result<(Vec<AuditEntry>, Option<u64>), Error> {
        let n = q.n.unwrap_or(audit::DEFAULT_PAGE).clamp(1, audit::MAX_PAGE);
        audit::page(&*self.registry.meta, q, n)
    }

    /// Records what commits nothing else (a run, a refusal) in the audit log.
    pub fn audit_alone(&self, record: crate::store::meta::AuditRecord) -> Result<u64, Error> {
        audit::append_alone(&*self.registry.meta, &self.registry.clock, record)
    }

    /// Removes audit entries older than `days`.
    pub fn expire_audit(&self, days: u32) -> Result<u64, Error> {
        audit::expire(&*self.registry.meta, &self.registry.clock, days)
    }

    pub fn get(&self, feed: &str) -> Result<Feed, Error> {
        self.registry
            .meta
            .read()?
            .feed(feed)?
            .map(Feed::from)
            .ok_or_else(|| Error::FeedUnknown {
                feed: feed.to_owned(),
            })
    }

    pub fn list(&self) -> Result<Vec<(String, Feed)>, Error> {
        Ok(self
            .registry
            .meta
            .read()?
            .feeds()?
            .into_iter()
            .map(|(name, record)| (name, record.into()))
            .collect())
    }

    /// Deletes a feed with every repository, manifest, tag and link in it. Blob files stay
    /// until garbage collection finds them unreferenced.
    pub fn delete(&self, feed: &FeedName, actor: &str) -> Result<(), Error> {
        self.registry.meta.write(|w| {
            audit::append(
                w,
                &self.registry.clock,
                audit::entry(
                    Kind::FeedDeleted,
                    actor,
                    feed.as_str(),
                    format!("feed {feed} deleted"),
                ),
            )?;
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
            crate::domain::quota::forget(w, feed.as_str())?;
            crate::domain::auth::bump_feed_epoch(w, feed.as_str())?;
            crate::domain::webhooks::remove_feed_endpoints(w, feed.as_str())?;
            crate::domain::replication::Replication::forget_feed(w, feed.as_str())?;
            crate::domain::trust::remove_feed_policy(w, feed.as_str())?;
            Ok(())
        })
    }
}
