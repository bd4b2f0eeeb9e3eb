//! "Which released versions carry CVE-X, and which version fixes it?" — the answer only a
//! registry that knows versions can give: every repository the caller may see whose tags
//! point at an image (or an index over one) the advisory affects, its affected versions,
//! and the lowest higher version of the same name — in any visible feed — whose image was
//! read and is not affected.
//!
//! Cost: one pass over the visible repositories' tags, and per distinct image one SBOM read
//! plus an index read per package the advisory names; nothing is read for images that hold
//! none of its packages.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::osv::Advisory;
use super::{SBOMS, Vulns, db};
use crate::domain::Error;
use crate::domain::versioning::version_of;
use crate::store::meta::MetaRead;

/// One repository's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AffectedRepository {
    pub repository: String,
    /// Its version tags whose images the advisory affects, lowest first.
    pub versions: Vec<String>,
    /// Other tags pointing at affected images (`latest`, `main`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// The lowest version above the highest affected one, of the same name in any visible
    /// feed, whose image was read and is not affected: (repository, version).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_in: Option<(String, String)>,
}

/// The answer for one advisory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Affected {
    pub advisory: Advisory,
    pub repositories: Vec<AffectedRepository>,
}

/// What an image is, for one advisory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Affected,
    Clean,
    Unread,
}

impl Vulns {
    /// Where advisory `id` (or the advisory one of whose aliases `id` is) is, among the
    /// repositories of the feeds `visible` accepts.
    pub fn affected(&self, id: &str, visible: &dyn Fn(&str) -> bool) -> Result<Affected, Error> {
        let r = self.meta.read()?;
        // The advisory itself and every advisory that names it (a CVE's record rates it;
        // the distributions' advisories name the packages).
        let mut set: Vec<db::Stored> = db::ADVISORIES.get(&*r, id)?.into_iter().collect();
        for other in db::ALIASES
            .get(&*r, &id.to_ascii_uppercase())?
            .unwrap_or_default()
        {
            if !set.iter().any(|s| s.id == other)
                && let Some(s) = db::ADVISORIES.get(&*r, &other)?
            {
                set.push(s);
            }
        }
        let Some(first) = set.first() else {
            return Err(Error::NotFound(format!(
                "no advisory {id} in the vulnerability database (`semdock vulndb status` lists what is imported)"
            )));
        };
        let mut advisory = first.advisory.clone();
        for other in &set[1..] {
            advisory.severity = advisory.severity.max(other.severity);
            advisory.aliases.push(other.id.clone());
        }
        advisory.aliases.sort();
        advisory.aliases.dedup();
        let mut states: HashMap<String, State> = HashMap::new();
        // repository → (tag, state of what it points at)
        let mut tagged: BTreeMap<String, Vec<(String, State)>> = BTreeMap::new();
        let mut after: Option<String> = None;
        loop {
            let (page, more) = r.repositories("", after.as_deref(), 1_000, &|name| {
                visible(name.split('/').next().unwrap_or(name))
            })?;
            for repo in &page {
                for (tag, digest) in r.tag_targets(repo)? {
                    let state = image_state(&*r, repo, &digest, &set, &mut states)?;
                    tagged.entry(repo.clone()).or_default().push((tag, state));
                }
            }
            after = page.last().cloned();
            if !more || after.is_none() {
                break;
            }
        }
        let mut repositories = Vec::new();
        for (repo, tags) in &tagged {
            let mut versions: Vec<&str> = tags
                .iter()
                .filter(|(t, s)| *s == State::Affected && version_of(t).is_some())
                .map(|(t, _)| t.as_str())
                .collect();
            if versions.is_empty() {
                continue;
            }
            versions.sort_by_key(|t| version_of(t));
            let highest = versions.last().and_then(|t| version_of(t));
            let name = repo.split_once('/').map_or(repo.as_str(), |(_, n)| n);
            let fixed_in = tagged
                .iter()
                .filter(|(other, _)| other.split_once('/').is_some_and(|(_, n)| n == name))
                .flat_map(|(other, tags)| {
                    tags.iter()
                        .filter(|(_, s)| *s == State::Clean)
                        .filter_map(move |(t, _)| Some((version_of(t)?, other.clone(), t.clone())))
                })
                .filter(|(v, _, _)| highest.as_ref().is_some_and(|h| v > h))
                .min_by(|a, b| a.0.cmp(&b.0))
                .map(|(_, other, t)| (other, t));
            repositories.push(AffectedRepository {
                repository: repo.clone(),
                versions: versions.into_iter().map(str::to_owned).collect(),
                tags: tags
                    .iter()
                    .filter(|(t, s)| *s == State::Affected && version_of(t).is_none())
                    .map(|(t, _)| t.clone())
                    .collect(),
                fixed_in,
            });
        }
        Ok(Affected {
            advisory,
            repositories,
        })
    }
}

/// Whether `digest` in `repo` (an image, or an index over images) carries the advisory.
fn image_state(
    r: &dyn MetaRead,
    repo: &str,
    digest: &str,
    advisory: &[db::Stored],
    states: &mut HashMap<String, State>,
) -> Result<State, Error> {
    if let Some(s) = states.get(digest) {
        return Ok(*s);
    }
    let children = r
        .manifest(repo, digest)?
        .map(|m| m.children)
        .unwrap_or_default();
    let state = if children.is_empty() {
        one_image(r, digest, advisory)?
    } else {
        let mut all = State::Clean;
        for child in &children {
            match one_image(r, child, advisory)? {
                State::Affected => {
                    all = State::Affected;
                    break;
                }
                State::Unread => all = State::Unread,
                State::Clean => {}
            }
        }
        all
    };
    states.insert(digest.to_owned(), state);
    Ok(state)
}

/// Whether image `digest` carries any of the (not withdrawn) advisories `set`.
fn one_image(r: &dyn MetaRead, digest: &str, set: &[db::Stored]) -> Result<State, Error> {
    let Some(sbom) = SBOMS.get(r, digest)? else {
        return Ok(State::Unread);
    };
    for package in &sbom.packages {
        for (key, version) in package.lookups(sbom.os.as_ref()) {
            let named: Vec<&str> = set
                .iter()
                .filter(|a| !a.withdrawn && a.packages.contains(&key))
                .map(|a| a.id.as_str())
                .collect();
            if named.is_empty() {
                continue;
            }
            let entries = db::BY_PACKAGE.get(r, &key)?.unwrap_or_default();
            if entries
                .iter()
                .any(|e| named.contains(&e.advisory.as_str()) && e.affects(&version))
            {
                return Ok(State::Affected);
            }
        }
    }
    Ok(State::Clean)
}
