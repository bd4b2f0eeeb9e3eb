//! Search across feeds: repository names, tags, digests (whole or a prefix) and manifest
//! annotations, among the feeds the caller may pull. The index is four settings families of
//! markers kept in the transaction of each change — `search-name:TERM␟REPO` for every
//! segment of a repository's name (and its parts split at `-`, `_` and `.`) and the whole
//! name, `search-tag:TAG␟REPO`, `search-digest:HEX␟REPO`, `search-label:KEY=VALUE␟REPO␟DIGEST`
//! (annotations, and the labels of an image's configuration once the SBOM queue has read
//! it) — so a query is one range read per family on either engine, costing what it returns.
//! Entries are only ever added where content appears; each hit is checked against the live
//! records before it is returned, so a deleted tag or manifest is never answered (its stale
//! entry costs one extra point read until it is written again).

use serde::Serialize;

use super::Error;
use crate::store::meta::settings::{Family, Marker};
use crate::store::meta::{MetaRead, MetaWrite};

pub(crate) const NAMES: Family<Marker> =
    Family::keyed("search-name:", "search index: repository names");
pub(crate) const TAGS: Family<Marker> = Family::keyed("search-tag:", "search index: tags");
pub(crate) const DIGESTS: Family<Marker> = Family::keyed("search-digest:", "search index: digests");
pub(crate) const LABELS: Family<Marker> =
    Family::keyed("search-label:", "search index: annotations");
/// Set once the index holds what was stored before it existed.
pub(crate) const BUILT: Family<Marker> = Family::single("search-index-1", "migration marker");

const SEP: char = '\u{1f}';
/// The most hits one query answers.
pub const MAX_HITS: usize = 200;

/// What a hit matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HitKind {
    Repository,
    Tag,
    Digest,
    Annotation,
}

/// One answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hit {
    pub kind: HitKind,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
    /// The indexed text that matched (the name segment, the tag, `KEY=VALUE`).
    pub matched: String,
}

fn terms_of(repo: &str) -> Vec<String> {
    let mut terms = vec![repo.to_owned()];
    for segment in repo.split('/') {
        terms.push(segment.to_owned());
        terms.extend(
            segment
                .split(['-', '_', '.'])
                .filter(|p| !p.is_empty() && *p != segment)
                .map(str::to_owned),
        );
    }
    terms.sort();
    terms.dedup();
    terms
}

fn hex_of(digest: &str) -> &str {
    digest.split_once(':').map_or(digest, |(_, hex)| hex)
}

/// Indexes `repo`'s name.
pub(crate) fn index_repository(w: &mut dyn MetaWrite, repo: &str) -> Result<(), Error> {
    for term in terms_of(repo) {
        NAMES.put(w, &format!("{term}{SEP}{repo}"), &())?;
    }
    Ok(())
}

/// Indexes `tag` of `repo` pointing at `digest`.
pub(crate) fn index_tag(
    w: &mut dyn MetaWrite,
    repo: &str,
    tag: &str,
    digest: &str,
) -> Result<(), Error> {
    // A promotion or a connector may be the first to put anything in `repo`.
    index_repository(w, repo)?;
    TAGS.put(w, &format!("{tag}{SEP}{repo}"), &())?;
    DIGESTS.put(w, &format!("{}{SEP}{repo}", hex_of(digest)), &())?;
    Ok(())
}

/// Indexes a manifest stored in `repo`: its digest, its annotations, and the repository.
pub(crate) fn index_manifest(
    w: &mut dyn MetaWrite,
    repo: &str,
    digest: &str,
    annotations: &std::collections::BTreeMap<String, String>,
) -> Result<(), Error> {
    index_repository(w, repo)?;
    DIGESTS.put(w, &format!("{}{SEP}{repo}", hex_of(digest)), &())?;
    index_labels(w, repo, digest, annotations)
}

/// Indexes `KEY=VALUE` pairs of a manifest in `repo`: its annotations, or its image
/// configuration's labels (what the SBOM queue reads).
pub(crate) fn index_labels(
    w: &mut dyn MetaWrite,
    repo: &str,
    digest: &str,
    labels: &std::collections::BTreeMap<String, String>,
) -> Result<(), Error> {
    for (k, v) in labels {
        let text: String = format!("{k}={v}").chars().take(300).collect();
        if text.contains(SEP) {
            continue;
        }
        LABELS.put(w, &format!("{text}{SEP}{repo}{SEP}{digest}"), &())?;
    }
    Ok(())
}

/// Hits for `query` among the repositories whose feed `visible` accepts, at most `limit`.
pub fn search(
    r: &dyn MetaRead,
    query: &str,
    visible: &dyn Fn(&str) -> bool,
    limit: usize,
) -> Result<Vec<Hit>, Error> {
    let query = query.trim();
    if query.is_empty() || query.len() > 300 || query.contains(SEP) {
        return Err(Error::Invalid(
            "a search needs 1 to 300 characters: a repository name or part of it, a tag, a digest or its first characters, or KEY=VALUE of an annotation".into(),
        ));
    }
    let limit = limit.clamp(1, MAX_HITS);
    // Hidden or stale entries are skipped: read a few more than asked.
    let scan = limit * 4;
    let feed_of = |repo: &str| repo.split('/').next().unwrap_or_default().to_owned();
    let mut hits: Vec<Hit> = Vec::new();
    let mut push = |hit: Hit| {
        if hits.len() < limit && !hits.contains(&hit) {
            hits.push(hit);
        }
    };
    let lower = query.to_lowercase();
    for (key, ()) in NAMES.first_under(r, &lower, "", scan)? {
        let Some((term, repo)) = key.split_once(SEP) else {
            continue;
        };
        if visible(&feed_of(repo)) && r.repository(repo)?.is_some() {
            push(Hit {
                kind: HitKind::Repository,
                repository: repo.to_owned(),
                tag: None,
                digest: None,
                matched: term.to_owned(),
            });
        }
    }
    for (key, ()) in TAGS.first_under(r, query, "", scan)? {
        let Some((tag, repo)) = key.split_once(SEP) else {
            continue;
        };
        if !visible(&feed_of(repo)) {
            continue;
        }
        if let Some(digest) = r.tag(repo, tag)? {
            push(Hit {
                kind: HitKind::Tag,
                repository: repo.to_owned(),
                tag: Some(tag.to_owned()),
                digest: Some(digest),
                matched: tag.to_owned(),
            });
        }
    }
    let hex = hex_of(&lower);
    if hex.len() >= 4 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        for (key, ()) in DIGESTS.first_under(r, hex, "", scan)? {
            let Some((found, repo)) = key.split_once(SEP) else {
                continue;
            };
            if !visible(&feed_of(repo)) {
                continue;
            }
            for algorithm in ["sha256", "sha512"] {
                let digest = format!("{algorithm}:{found}");
                if r.manifest(repo, &digest)?.is_some() {
                    push(Hit {
                        kind: HitKind::Digest,
                        repository: repo.to_owned(),
                        tag: None,
                        digest: Some(digest),
                        matched: found.to_owned(),
                    });
                }
            }
        }
    }
    for (key, ()) in LABELS.first_under(r, query, "", scan)? {
        let mut parts = key.split(SEP);
        let (Some(text), Some(repo), Some(digest)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if visible(&feed_of(repo)) && r.manifest(repo, digest)?.is_some() {
            push(Hit {
                kind: HitKind::Annotation,
                repository: repo.to_owned(),
                tag: None,
                digest: Some(digest.to_owned()),
                matched: text.to_owned(),
            });
        }
    }
    Ok(hits)
}

/// Indexes what the registry held before the index existed: every repository, tag and
/// manifest, a few hundred repositories per transaction; once (a marker says it is done).
pub(crate) fn build(meta: &dyn crate::store::meta::Metadata) -> Result<usize, Error> {
    if BUILT.exists(&*meta.read()?, "")? {
        return Ok(0);
    }
    let mut after: Option<String> = None;
    let mut indexed = 0;
    loop {
        let (repos, more) = meta
            .read()?
            .repositories("", after.as_deref(), 200, &|_| true)?;
        let Some(last) = repos.last().cloned() else {
            break;
        };
        meta.write(|w| -> Result<(), Error> {
            for repo in &repos {
                index_repository(w, repo)?;
                for (tag, digest) in w.tag_targets(repo)? {
                    index_tag(w, repo, &tag, &digest)?;
                }
                for (digest, record) in w.manifests_of(repo)? {
                    index_manifest(w, repo, &digest, &record.annotations)?;
                }
            }
            Ok(())
        })?;
        indexed += repos.len();
        after = Some(last);
        if !more {
            break;
        }
    }
    meta.write(|w| Ok::<_, Error>(BUILT.put(w, "", &())?))?;
    Ok(indexed)
}

impl super::Registry {
    /// Hits for `query` among the repositories of the feeds `visible` accepts.
    pub fn search(
        &self,
        query: &str,
        visible: &dyn Fn(&str) -> bool,
        limit: usize,
    ) -> Result<Vec<Hit>, Error> {
        search(&*self.meta.read()?, query, visible, limit)
    }

    /// Builds the search index over what was stored before it existed (once).
    pub fn build_search_index(&self) -> Result<(), Error> {
        let indexed = build(&*self.meta)?;
        if indexed > 0 {
            tracing::info!(repositories = indexed, "search index built");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::terms_of;

    #[test]
    fn a_name_is_found_by_each_segment_and_its_parts() {
        assert_eq!(
            terms_of("prod/team/web-api"),
            ["api", "prod", "prod/team/web-api", "team", "web", "web-api"]
        );
    }
}
