//! Tags in redb: the tags table and the two indexes kept with it (by SemVer rank, by
//! digest), and the tombstones of deleted versions.

use std::ops::Bound;

use redb::ReadableTable;

use super::tables::{Access, Tables, Writer};
use super::walk::{page_of_pairs, pairs_page, pairs_under};
use crate::store::meta::precedence;
use crate::store::meta::{MetaError, Scan, TagsRead, TagsWrite, page};

impl<A: Access> TagsRead for Tables<A> {
    fn tag(&self, repo: &str, tag: &str) -> Result<Option<String>, MetaError> {
        Ok(self.tags.get((repo, tag))?.map(|g| g.value().to_owned()))
    }

    fn tags(
        &self,
        repo: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<String>, bool), MetaError> {
        page_of_pairs(&self.tags, repo, after, limit)
    }

    fn tag_targets(&self, repo: &str) -> Result<Vec<(String, String)>, MetaError> {
        pairs_under(&self.tags, repo)
    }

    fn highest_version(
        &self,
        repo: &str,
        scope: precedence::Scope,
    ) -> Result<Option<(String, String)>, MetaError> {
        let (low, high) = precedence::bounds(scope);
        let last = self
            .ranked
            .range::<(&str, &[u8])>((repo, low.as_slice())..=(repo, high.as_slice()))?
            .next_back()
            .transpose()?;
        Ok(last.map(|(_, v)| {
            let (tag, digest) = v.value();
            (tag.to_owned(), digest.to_owned())
        }))
    }

    fn versions_page(
        &self,
        repo: &str,
        before: Option<&semver::Version>,
        limit: usize,
        keep: &dyn Fn(&str) -> bool,
    ) -> Result<(Vec<(String, String)>, bool), MetaError> {
        let [stable, pre] = precedence::version_ranges(before).map(|(low, high)| {
            let high = match &high {
                Bound::Included(k) => Bound::Included((repo, k.as_slice())),
                Bound::Excluded(k) => Bound::Excluded((repo, k.as_slice())),
                Bound::Unbounded => Bound::Unbounded,
            };
            self.ranked
                .range::<(&str, &[u8])>((Bound::Included((repo, low.as_slice())), high))
                .map(|range| {
                    range.rev().map(|e| {
                        e.map(|(_, v)| {
                            let (tag, digest) = v.value();
                            (tag.to_owned(), digest.to_owned())
                        })
                        .map_err(MetaError::from)
                    })
                })
        });
        precedence::merge_versions(stable?, pre?, limit, keep)
    }

    fn named_tags_page(
        &self,
        repo: &str,
        after: Option<&str>,
        limit: usize,
        keep: &dyn Fn(&str) -> bool,
    ) -> Result<(Vec<(String, String)>, bool), MetaError> {
        let (low, high) = precedence::bounds(precedence::Scope::Named);
        let start = after.map(|a| {
            let mut k = vec![precedence::NAMED];
            k.extend_from_slice(a.as_bytes());
            k
        });
        let low = match &start {
            Some(k) => Bound::Excluded((repo, k.as_slice())),
            None => Bound::Included((repo, low.as_slice())),
        };
        page(
            self.ranked
                .range::<(&str, &[u8])>((low, Bound::Included((repo, high.as_slice()))))?,
            limit,
            |(_, v)| Scan::keep_if(keep(v.value().0)),
            |(_, v)| {
                let (tag, digest) = v.value();
                Ok((tag.to_owned(), digest.to_owned()))
            },
        )
    }

    fn tombstones_page(
        &self,
        repo: &str,
        after: Option<&str>,
        limit: usize,
        keep: &dyn Fn(&str) -> bool,
    ) -> Result<(Vec<(String, String)>, bool), MetaError> {
        pairs_page(&self.tombstones, repo, after, limit, keep)
    }

    fn tags_pointing_at(&self, repo: &str, digest: &str) -> Result<Vec<String>, MetaError> {
        let mut out = Vec::new();
        for entry in self
            .digest_tags
            .range::<(&str, &str, &str)>((Bound::Included((repo, digest, "")), Bound::Unbounded))?
        {
            let (k, ()) = (entry?.0, ());
            let (r, d, tag) = k.value();
            if r != repo || d != digest {
                break;
            }
            out.push(tag.to_owned());
        }
        Ok(out)
    }

    fn tombstone(&self, repo: &str, tag: &str) -> Result<Option<String>, MetaError> {
        Ok(self
            .tombstones
            .get((repo, tag))?
            .map(|g| g.value().to_owned()))
    }

    fn tombstones(&self, repo: &str) -> Result<Vec<(String, String)>, MetaError> {
        pairs_under(&self.tombstones, repo)
    }
}

impl TagsWrite for Writer<'_> {
    fn set_tag(&mut self, repo: &str, tag: &str, digest: &str) -> Result<(), MetaError> {
        let old = self
            .tags
            .insert((repo, tag), digest)?
            .map(|g| g.value().to_owned());
        if let Some(old) = old {
            self.digest_tags.remove((repo, old.as_str(), tag))?;
        }
        self.index_tag(repo, tag, digest)
    }

    fn remove_tag(&mut self, repo: &str, tag: &str) -> Result<bool, MetaError> {
        let Some(old) = self.tags.remove((repo, tag))?.map(|g| g.value().to_owned()) else {
            return Ok(false);
        };
        self.digest_tags.remove((repo, old.as_str(), tag))?;
        self.ranked
            .remove((repo, precedence::rank(tag).as_slice()))?;
        Ok(true)
    }

    fn set_tombstone(&mut self, repo: &str, tag: &str, digest: &str) -> Result<(), MetaError> {
        self.tombstones.insert((repo, tag), digest)?;
        Ok(())
    }

    fn remove_tombstone(&mut self, repo: &str, tag: &str) -> Result<bool, MetaError> {
        Ok(self.tombstones.remove((repo, tag))?.is_some())
    }
}

impl Writer<'_> {
    pub(super) fn index_tag(
        &mut self,
        repo: &str,
        tag: &str,
        digest: &str,
    ) -> Result<(), MetaError> {
        self.digest_tags.insert((repo, digest, tag), ())?;
        self.ranked
            .insert((repo, precedence::rank(tag).as_slice()), (tag, digest))?;
        Ok(())
    }
}
