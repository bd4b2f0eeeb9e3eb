//! A feed's settings page and form (policy, connector, retention, grants) and granting a
//! role. Every POST checks the session's CSRF token before anything else.

use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::links::{safe_next, with_done};
use super::session::Viewer;
use super::{Nav, UiError, redirect, render, run};
use crate::domain::access::{FeedAdmin, Pull};
use crate::domain::trust::{AttestationRule, Identity, PullGate, SignaturePolicy};
use crate::domain::{self, FeedChange, FeedPreview};

pub struct GrantRow {
    pub who: String,
    pub user: Option<String>,
    /// A robot's name (`robot$FEED+NAME`): its roles are changed on the robots page.
    pub robot: Option<String>,
    pub role: String,
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    title: String,
    nav: Option<Nav>,
    feed: String,
    description: String,
    versioning: bool,
    anonymous: bool,
    permitted: String,
    promotion_sources: String,
    required_referrer: String,
    signature: SignatureFields,
    connector: ConnectorFields,
    /// What the connector's test or sync button found.
    connector_note: Option<String>,
    grants: Vec<GrantRow>,
    preview: Option<FeedPreview>,
    /// Storage used, against the quota if there is one (empty on a preview).
    quota: Option<QuotaRow>,
}

/// A feed's storage against its quota, as the settings page shows it.
pub(super) struct QuotaRow {
    pub used: String,
    pub quota: Option<String>,
    pub used_bytes: u64,
    pub quota_bytes: u64,
    pub blobs: u64,
}

impl QuotaRow {
    pub(super) fn of(
        (quota, usage): (
            Option<crate::domain::quota::Quota>,
            crate::domain::quota::Usage,
        ),
    ) -> Self {
        Self {
            used: super::size(usage.bytes),
            quota: quota.map(|q| super::size(q.bytes)),
            used_bytes: usage.bytes,
            quota_bytes: quota.map_or(0, |q| q.bytes),
            blobs: usage.blobs,
        }
    }
}

/// A feed's signature policy as the settings form shows it.
struct SignatureFields {
    keys: String,
    /// One `ISSUER SUBJECT` per line.
    identities: String,
    /// Trust store names, space-separated.
    stores: String,
    /// One `TYPE field=glob …` per line.
    attestations: String,
    on_promotion: bool,
    on_push: bool,
    /// `refuse`, `warn`, or empty (not enforced on pull).
    on_pull: &'static str,
}

impl From<Option<SignaturePolicy>> for SignatureFields {
    fn from(p: Option<SignaturePolicy>) -> Self {
        p.map_or(
            Self {
                keys: String::new(),
                identities: String::new(),
                stores: String::new(),
                attestations: String::new(),
                on_promotion: true,
                on_push: false,
                on_pull: "",
            },
            |p| Self {
                keys: p.keys.join(" "),
                identities: p
                    .identities
                    .iter()
                    .map(|i| format!("{} {}", i.issuer, i.subject))
                    .collect::<Vec<_>>()
                    .join("\n"),
                stores: p.stores.join(" "),
                attestations: p
                    .attestations
                    .iter()
                    .map(|r| {
                        std::iter::once(r.predicate_type.clone())
                            .chain(r.matches.iter().map(|(k, v)| format!("{k}={v}")))
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
                on_promotion: p.on_promotion,
                on_push: p.on_push,
                on_pull: p.on_pull.map_or("", PullGate::as_str),
            },
        )
    }
}

/// A connector feed's upstream as the settings form shows it (never its password).
#[derive(Default)]
struct ConnectorFields {
    url: String,
    username: String,
    has_password: bool,
    prefix: String,
    ttl: String,
    offline: bool,
    allow: String,
    deny: String,
    upstream_latest: bool,
    sync: String,
    sync_interval: String,
}

impl From<Option<domain::UpstreamInfo>> for ConnectorFields {
    fn from(u: Option<domain::UpstreamInfo>) -> Self {
        u.map_or_else(Self::default, |u| Self {
            url: u.url,
            username: u.username.unwrap_or_default(),
            has_password: u.has_password,
            prefix: u.prefix.trim_end_matches('/').to_owned(),
            ttl: u.ttl_seconds.to_string(),
            offline: u.offline,
            allow: u.allow.join(" "),
            deny: u.deny.join(" "),
            upstream_latest: u.upstream_latest,
            sync: u.sync.join("\n"),
            sync_interval: u.sync_interval_seconds.to_string(),
        })
    }
}

fn grant_rows(grants: Vec<(String, String)>) -> Vec<GrantRow> {
    grants
        .into_iter()
        .map(|(who, role)| GrantRow {
            user: who.strip_prefix("user:").map(str::to_owned),
            robot: who.strip_prefix("robot:").map(str::to_owned),
            who,
            role,
        })
        .collect()
}

// GET /ui/feeds/{feed}/settings — versioning, permitted tags, anonymous pull, roles (feed admin).
pub async fn settings_page(v: Viewer, path: web::Path<String>) -> Result<HttpResponse, UiError> {
    let feed = path.into_inner();
    let access = v.access.clone();
    let f = feed.clone();
    let (record, grants, last_sync, policy, quota) = run(move || {
        let admin = access.feed::<FeedAdmin>(&f)?;
        let reader = access.feed::<Pull>(&f)?;
        let quota = reader.quota()?;
        let record = reader.settings()?;
        let policy = reader.signatures().policy()?;
        let last_sync = if record.upstream.is_some() {
            admin.upstream().sync_status()?
        } else {
            None
        };
        Ok((record, admin.grants()?, last_sync, policy, quota))
    })
    .await?;
    let note = last_sync.map(|r| {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(r.started_ms);
        format!(
            "Last sync {}: {} tags held, {} blobs fetched, {} errors.",
            humantime::format_rfc3339_seconds(at),
            r.tags,
            r.blobs_fetched,
            r.errors.len()
        )
    });
    render(&SettingsPage {
        title: format!("Settings of {feed}"),
        nav: Nav::of(&v),
        description: record.description,
        versioning: record.versioning,
        anonymous: record.anonymous_pull,
        permitted: record.permitted.join("\n"),
        promotion_sources: record.promotion_sources.join(" "),
        required_referrer: record.required_referrer.unwrap_or_default(),
        signature: policy.into(),
        connector: record.upstream.into(),
        connector_note: note,
        grants: grant_rows(grants),
        preview: None,
        quota: Some(QuotaRow::of(quota)),
        feed,
    })
}

#[derive(Deserialize)]
pub struct SettingsForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    signature_keys: String,
    /// One `ISSUER SUBJECT` per line.
    #[serde(default)]
    signature_identities: String,
    #[serde(default)]
    signature_stores: String,
    /// One `TYPE field=glob …` per line.
    #[serde(default)]
    signature_attestations: String,
    signature_on_promotion: Option<String>,
    signature_on_push: Option<String>,
    #[serde(default)]
    signature_on_pull: String,
    #[serde(default)]
    description: String,
    versioning: Option<String>,
    anonymous_pull: Option<String>,
    #[serde(default)]
    permitted: String,
    #[serde(default)]
    promotion_sources: String,
    #[serde(default)]
    required_referrer: String,
    #[serde(default)]
    upstream_url: String,
    #[serde(default)]
    upstream_user: String,
    /// Empty: the stored password is kept.
    #[serde(default)]
    upstream_password: String,
    forget_password: Option<String>,
    #[serde(default)]
    upstream_prefix: String,
    #[serde(default)]
    upstream_ttl: String,
    upstream_offline: Option<String>,
    #[serde(default)]
    upstream_allow: String,
    #[serde(default)]
    upstream_deny: String,
    upstream_latest: Option<String>,
    /// Sync rules, one per line.
    #[serde(default)]
    upstream_sync: String,
    #[serde(default)]
    sync_interval: String,
    /// `preview` or `save`.
    op: String,
}

impl SettingsForm {
    /// The signature policy the form asks for: `None` (no policy) without keys.
    fn signature_policy(
        &self,
        keys: Vec<String>,
        stores: Vec<String>,
    ) -> Result<Option<SignaturePolicy>, UiError> {
        let mut identities = Vec::new();
        for line in self.signature_identities.lines().map(str::trim) {
            if line.is_empty() {
                continue;
            }
            let (issuer, subject) = line.split_once(char::is_whitespace).ok_or_else(|| {
                domain::Error::Invalid(format!(
                    "{line:?} is not an identity: write the OIDC issuer, a space, then the certificate subject"
                ))
            })?;
            identities.push(Identity {
                issuer: issuer.to_owned(),
                subject: subject.trim().to_owned(),
            });
        }
        if keys.is_empty() && identities.is_empty() && stores.is_empty() {
            return Ok(None);
        }
        let on_pull = match self.signature_on_pull.as_str() {
            "" => None,
            gate => Some(gate.parse::<PullGate>()?),
        };
        let mut attestations = Vec::new();
        for line in self.signature_attestations.lines() {
            let mut words = line.split_whitespace();
            let Some(predicate_type) = words.next() else {
                continue;
            };
            let mut matches = std::collections::BTreeMap::new();
            for w in words {
                let (field, glob) = w.split_once('=').ok_or_else(|| {
                    domain::Error::Invalid(format!(
                        "{w:?} is not field=glob: after the predicate type, give the fields its predicate must match"
                    ))
                })?;
                matches.insert(field.to_owned(), glob.to_owned());
            }
            attestations.push(AttestationRule {
                predicate_type: predicate_type.to_owned(),
                matches,
            });
        }
        Ok(Some(SignaturePolicy {
            keys,
            identities,
            stores,
            attestations,
            on_promotion: self.signature_on_promotion.is_some(),
            on_push: self.signature_on_push.is_some(),
            on_pull,
        }))
    }

    /// The upstream the form asks for (an empty URL: none).
    fn upstream(
        &self,
        words: impl Fn(&str) -> Vec<String>,
    ) -> Result<domain::UpstreamChange, UiError> {
        let ttl = self.upstream_ttl.trim();
        let ttl_seconds = if ttl.is_empty() {
            None
        } else {
            Some(ttl.parse::<u64>().map_err(|_| {
                domain::Error::Invalid(format!(
                    "the upstream check interval {ttl:?} is not a number of seconds"
                ))
            })?)
        };
        let password = if self.forget_password.is_some() {
            Some(String::new())
        } else {
            Some(self.upstream_password.clone()).filter(|p| !p.is_empty())
        };
        Ok(domain::UpstreamChange {
            url: self.upstream_url.trim().to_owned(),
            username: Some(self.upstream_user.trim().to_owned()),
            password,
            prefix: Some(self.upstream_prefix.trim().to_owned()),
            ttl_seconds,
            offline: Some(self.upstream_offline.is_some()),
            allow: Some(words(&self.upstream_allow)),
            deny: Some(words(&self.upstream_deny)),
            upstream_latest: Some(self.upstream_latest.is_some()),
            sync: Some(
                self.upstream_sync
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned)
                    .collect(),
            ),
            sync_interval_seconds: Some(match self.sync_interval.trim() {
                "" => 0,
                s => s.parse::<u64>().map_err(|_| {
                    domain::Error::Invalid(format!(
                        "the sync interval {s:?} is not a number of seconds"
                    ))
                })?,
            }),
        })
    }
}

// POST /ui/feeds/{feed}/settings — previews what a change does, or saves it.
pub async fn save_settings(
    v: Viewer,
    path: web::Path<String>,
    form: web::Form<SettingsForm>,
) -> Result<HttpResponse, UiError> {
    v.check_csrf(&form.csrf)?;
    let feed = path.into_inner();
    let form = form.into_inner();
    let words = |text: &str| -> Vec<String> {
        text.split(['\n', ',', ' '])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let permitted = words(&form.permitted);
    let sources = words(&form.promotion_sources);
    let policy =
        form.signature_policy(words(&form.signature_keys), words(&form.signature_stores))?;
    let signature = SignatureFields::from(policy.clone());
    let upstream = form.upstream(words)?;
    let change = FeedChange {
        description: Some(form.description.clone()),
        anonymous_pull: Some(form.anonymous_pull.is_some()),
        versioning: Some(form.versioning.is_some()),
        permitted: Some(permitted.clone()),
        promotion_sources: Some(sources.clone()),
        required_referrer: Some(form.required_referrer.trim().to_owned()),
        upstream: Some(upstream.clone()),
    };
    let access = v.access.clone();
    let f = feed.clone();
    if form.op == "save" {
        run(move || {
            let admin = access.feed::<FeedAdmin>(&f)?;
            admin.update(change)?;
            admin.signatures().set_policy(policy.as_ref())?;
            Ok(())
        })
        .await?;
        return Ok(redirect(&format!("/ui/feeds/{feed}/settings?done=saved")));
    }
    let op = form.op.clone();
    let wanted = policy;
    let (preview, grants, stored, note) = run(move || {
        let admin = access.feed::<FeedAdmin>(&f)?;
        let stored = access.feed::<Pull>(&f)?.settings()?.upstream;
        // The connector's buttons act on what is saved, and leave the form as it was typed.
        let note = connector_note(&admin, &op)?;
        let preview = if note.is_none() {
            let mut p = admin.preview(&change)?;
            p.rules
                .extend(admin.signatures().preview_policy(wanted.as_ref())?);
            Some(p)
        } else {
            None
        };
        Ok((preview, admin.grants()?, stored, note))
    })
    .await?;
    let connector = ConnectorFields {
        url: upstream.url,
        username: form.upstream_user.trim().to_owned(),
        has_password: stored.is_some_and(|s| s.has_password) && form.forget_password.is_none()
            || !form.upstream_password.is_empty(),
        prefix: form.upstream_prefix.trim().to_owned(),
        ttl: form.upstream_ttl.trim().to_owned(),
        offline: form.upstream_offline.is_some(),
        allow: form.upstream_allow.trim().to_owned(),
        deny: form.upstream_deny.trim().to_owned(),
        upstream_latest: form.upstream_latest.is_some(),
        sync: form.upstream_sync.trim().to_owned(),
        sync_interval: form.sync_interval.trim().to_owned(),
    };
    render(&SettingsPage {
        title: format!("Settings of {feed}"),
        nav: Nav::of(&v),
        description: form.description,
        versioning: form.versioning.is_some(),
        anonymous: form.anonymous_pull.is_some(),
        permitted: permitted.join("\n"),
        promotion_sources: sources.join(" "),
        required_referrer: form.required_referrer.trim().to_owned(),
        signature,
        connector,
        connector_note: note,
        grants: grant_rows(grants),
        preview,
        quota: None,
        feed,
    })
}

#[derive(Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    csrf: String,
    user: String,
    feed: String,
    /// A role, or `none` to remove it.
    role: String,
    back: Option<String>,
}

// POST /ui/roles — grants (or removes) a user's role on a feed (feed admin).
pub async fn grant_role(v: Viewer, form: web::Form<RoleForm>) -> Result<HttpResponse, UiError> {
    v.check_csrf(&form.csrf)?;
    let form = form.into_inner();
    let back = safe_next(form.back.as_deref());
    let access = v.access;
    run(move || {
        let role = (form.role != "none").then_some(form.role.as_str());
        access
            .feed::<FeedAdmin>(&form.feed)?
            .grant(form.user.trim(), role)?;
        Ok(())
    })
    .await?;
    Ok(redirect(&with_done(&back, "role")))
}

/// What the connector's test or sync button (`op`) found; `None` for other operations.
fn connector_note(
    admin: &crate::domain::access::Feed<'_, FeedAdmin>,
    op: &str,
) -> Result<Option<String>, domain::Error> {
    Ok(match op {
        "test-upstream" => Some(admin.upstream().test_upstream()?.message),
        "sync" => {
            let r = admin.upstream().sync()?;
            let mut note = format!(
                "Synced: {} tags held, {} blobs fetched, {} errors.",
                r.tags,
                r.blobs_fetched,
                r.errors.len()
            );
            for e in r.errors.iter().take(5) {
                note.push(' ');
                note.push_str(e);
            }
            Some(note)
        }
        _ => None,
    })
}
