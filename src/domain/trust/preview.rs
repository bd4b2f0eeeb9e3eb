//! What a signature policy would do before it is saved: the requirement in words, and in a
//! versioned feed, which versions it would refuse to follow and where `latest` would point
//! — the preview the versioning settings have, for the signature settings.

use super::{Error, POLICIES, SignaturePolicy, Trust};
use crate::domain::tags;
use crate::model::Repository;
use crate::store::meta::MetaRead;
use crate::store::meta::precedence::Scope;

/// Repositories a preview looks at, and versions it verifies in each: a preview answers at
/// once; beyond these it says so.
const REPOSITORIES: usize = 50;
const VERSIONS: usize = 50;

impl Trust {
    /// What setting `policy` (or removing the policy, with `None`) on `feed` would do, in
    /// sentences. Verifies at most 50 versions in each of at most 50 repositories.
    pub fn preview_policy(
        &self,
        feed: &str,
        policy: Option<&SignaturePolicy>,
    ) -> Result<Vec<String>, Error> {
        let r = self.meta.read()?;
        let current = POLICIES.get(&*r, feed)?;
        if current.as_ref() == policy {
            return Ok(Vec::new());
        }
        let mut out = vec![match policy {
            Some(p) => format!(
                "Images will need {} on {} into {feed}.",
                p.requirement(),
                p.enforced_where()
            ),
            None => format!("{feed} will require no signature."),
        }];
        let versioned = r.feed(feed)?.is_some_and(|f| f.versioning);
        if !versioned {
            return Ok(out);
        }
        let (names, more) = r.repositories(&format!("{feed}/"), None, REPOSITORIES, &|_| true)?;
        for name in &names {
            let Ok(repo) = name.parse::<Repository>() else {
                continue;
            };
            out.extend(self.preview_repository(&*r, &repo, policy)?);
        }
        if more {
            out.push(format!(
                "(Only the first {REPOSITORIES} repositories of {feed} were looked at.)"
            ));
        }
        Ok(out)
    }

    /// Where `latest` of `repo` would point under `policy`, if not where it points now.
    fn preview_repository(
        &self,
        r: &dyn MetaRead,
        repo: &Repository,
        policy: Option<&SignaturePolicy>,
    ) -> Result<Option<String>, Error> {
        let name = repo.as_str();
        let checked = std::cell::Cell::new(0usize);
        let highest = |scope: Scope| -> Result<Option<(String, String)>, Error> {
            let Some(p) = policy else {
                return Ok(r.highest_version(name, scope)?);
            };
            let (page, _) = r.versions_page(name, None, VERSIONS, &|t| tags::in_scope(scope, t))?;
            for (tag, digest) in page {
                checked.set(checked.get() + 1);
                let v = self.verify_in(r, repo, &digest)?;
                if p.admits(&v.verified_by, &v.verified_identities, &v.verified_stores)
                    && p.missing_attestations(&v.attestations).is_empty()
                {
                    return Ok(Some((tag, digest)));
                }
            }
            Ok(None)
        };
        let want = tags::followed("latest", highest)?;
        let now = r.tag(name, "latest")?;
        let now_tag = match &now {
            Some(d) => r
                .tags_pointing_at(name, d)?
                .into_iter()
                .find(|t| crate::domain::versioning::version_of(t).is_some())
                .unwrap_or_else(|| d.clone()),
            None => "nothing".to_owned(),
        };
        Ok(match want {
            Some((tag, digest)) if now.as_deref() != Some(digest.as_str()) => Some(format!(
                "{name}:latest would follow {tag} (it follows {now_tag} now)."
            )),
            None if now.is_some() => Some(format!(
                "{name}:latest would be removed: none of its {} newest versions is signed as required (it follows {now_tag} now).",
                checked.get()
            )),
            _ => None,
        })
    }
}
