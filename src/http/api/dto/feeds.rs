//! Feeds, their settings, and the upstream of a connector feed.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain;

/// A feed and its settings.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FeedInfo {
    pub name: String,
    pub description: String,
    pub anonymous_pull: bool,
    /// Container versioning: only version and permitted tags, immutable versions, virtual tags.
    pub versioning: bool,
    /// Tags (exact or `*` globs) a versioned feed accepts besides versions.
    pub permitted: Vec<String>,
    /// When not empty, tags enter the feed only by promotion from these feeds: pushes of
    /// tags are refused (pushes by digest, which a promotion does not need, too).
    pub promotion_sources: Vec<String>,
    /// When set, a promotion into the feed needs a referrer (signature, attestation) of this
    /// artifact type on the image, among the referrers the registry holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required_referrer: Option<String>,
    /// When set, the feed is a connector: a pull-through cache of this upstream registry
    /// (its password is never shown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<UpstreamInfo>,
    /// Unix seconds.
    pub created: u64,
}

impl FeedInfo {
    /// Feed `name` with its settings.
    #[must_use]
    pub fn of(name: String, r: &domain::Feed) -> Self {
        Self {
            name,
            description: r.description.clone(),
            anonymous_pull: r.anonymous_pull,
            versioning: r.versioning,
            permitted: r.permitted.clone(),
            promotion_sources: r.promotion_sources.clone(),
            required_referrer: r.required_referrer.clone(),
            upstream: r.upstream.clone().map(UpstreamInfo::from),
            created: r.created,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewFeed {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub anonymous_pull: bool,
    #[serde(default)]
    pub versioning: bool,
    #[serde(default)]
    pub permitted: Vec<String>,
    #[serde(default)]
    pub promotion_sources: Vec<String>,
    pub required_referrer: Option<String>,
    /// Makes the feed a connector of an upstream registry.
    pub upstream: Option<UpstreamChange>,
}

impl NewFeed {
    /// The settings of the new feed, as a change of a feed just created.
    #[must_use]
    pub fn into_change(self) -> domain::FeedChange {
        domain::FeedChange {
            description: Some(self.description),
            anonymous_pull: Some(self.anonymous_pull),
            versioning: Some(self.versioning),
            permitted: Some(self.permitted),
            promotion_sources: Some(self.promotion_sources),
            required_referrer: self.required_referrer,
            upstream: self.upstream.map(Into::into),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedUpdate {
    pub description: Option<String>,
    pub anonymous_pull: Option<bool>,
    pub versioning: Option<bool>,
    pub permitted: Option<Vec<String>>,
    /// Feeds promotions may come from (the feed then refuses pushes of tags); `[]` lets
    /// pushes in again.
    pub promotion_sources: Option<Vec<String>>,
    /// The artifact type promotions need a referrer of; `""` needs none.
    pub required_referrer: Option<String>,
    /// The connector's upstream (`{"url": ""}` makes the feed a plain one again).
    pub upstream: Option<UpstreamChange>,
}

impl From<FeedUpdate> for domain::FeedChange {
    fn from(u: FeedUpdate) -> Self {
        Self {
            description: u.description,
            anonymous_pull: u.anonymous_pull,
            versioning: u.versioning,
            permitted: u.permitted,
            promotion_sources: u.promotion_sources,
            required_referrer: u.required_referrer,
            upstream: u.upstream.map(Into::into),
        }
    }
}

impl From<domain::FeedChange> for FeedUpdate {
    fn from(c: domain::FeedChange) -> Self {
        Self {
            description: c.description,
            anonymous_pull: c.anonymous_pull,
            versioning: c.versioning,
            permitted: c.permitted,
            promotion_sources: c.promotion_sources,
            required_referrer: c.required_referrer,
            upstream: c.upstream.map(Into::into),
        }
    }
}

/// A connector feed's upstream as the domain hands it out: the password never.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UpstreamInfo {
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Whether a password is stored (it is never shown).
    pub has_password: bool,
    /// Prefixed to every repository name upstream (`library/`).
    pub prefix: String,
    /// Mutable tags are checked upstream again after this many seconds.
    pub ttl_seconds: u64,
    /// Only what is cached is served; the upstream is never asked.
    pub offline: bool,
    /// Repository names (as the upstream names them, `*` globs) fetched; empty: all.
    pub allow: Vec<String>,
    /// Repository names never fetched, even when allowed.
    pub deny: Vec<String>,
    /// In a versioned feed, `latest` follows the upstream's own `latest` rather than the
    /// highest version seen.
    pub upstream_latest: bool,
    /// Fetched ahead of pulls: `REPOSITORY`, `REPOSITORY:GLOB`, `REPOSITORY@SEMVER-REQ`.
    pub sync: Vec<String>,
    /// Seconds between scheduled syncs; 0: on demand only.
    pub sync_interval_seconds: u64,
}

impl From<domain::UpstreamInfo> for UpstreamInfo {
    fn from(u: domain::UpstreamInfo) -> Self {
        Self {
            url: u.url,
            username: u.username,
            has_password: u.has_password,
            prefix: u.prefix,
            ttl_seconds: u.ttl_seconds,
            offline: u.offline,
            allow: u.allow,
            deny: u.deny,
            upstream_latest: u.upstream_latest,
            sync: u.sync,
            sync_interval_seconds: u.sync_interval_seconds,
        }
    }
}

/// A change of a feed's upstream: a `url` makes the feed a connector (an empty one makes it
/// a plain feed again); `None` fields keep what is stored.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpstreamChange {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Stored, never shown back; `""` removes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offline: Option<bool>,
    /// Repository globs fetched (empty list: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow: Option<Vec<String>>,
    /// Repository globs never fetched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deny: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_latest: Option<bool>,
    /// Sync rules (replacing the stored ones; an empty list: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_interval_seconds: Option<u64>,
}

impl From<UpstreamChange> for domain::UpstreamChange {
    fn from(c: UpstreamChange) -> Self {
        Self {
            url: c.url,
            username: c.username,
            password: c.password,
            prefix: c.prefix,
            ttl_seconds: c.ttl_seconds,
            offline: c.offline,
            allow: c.allow,
            deny: c.deny,
            upstream_latest: c.upstream_latest,
            sync: c.sync,
            sync_interval_seconds: c.sync_interval_seconds,
        }
    }
}

impl From<domain::UpstreamChange> for UpstreamChange {
    fn from(c: domain::UpstreamChange) -> Self {
        Self {
            url: c.url,
            username: c.username,
            password: c.password,
            prefix: c.prefix,
            ttl_seconds: c.ttl_seconds,
            offline: c.offline,
            allow: c.allow,
            deny: c.deny,
            upstream_latest: c.upstream_latest,
            sync: c.sync,
            sync_interval_seconds: c.sync_interval_seconds,
        }
    }
}

/// What a check of a connector's upstream found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UpstreamTest {
    pub ok: bool,
    /// What answered and how, or what is wrong.
    pub message: String,
}

impl From<domain::UpstreamTest> for UpstreamTest {
    fn from(t: domain::UpstreamTest) -> Self {
        Self {
            ok: t.ok,
            message: t.message,
        }
    }
}
