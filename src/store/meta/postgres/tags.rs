//! Tags (with their SemVer rank) and tombstones in PostgreSQL.

use super::txn::{Batched, Txn, batch_for, bound_sql, page_of};
use crate::store::meta::precedence::{self, Scope};
use crate::store::meta::{MetaError, TagsRead, TagsWrite};

impl TagsRead for Txn {
    fn tag(&self, repo: &str, tag: &str) -> Result<Option<String>, MetaError> {
        Ok(self
            .row(
                "SELECT digest FROM tags WHERE repo = $1 AND tag = $2",
                &[&repo, &tag],
            )?
            .map(|r| r.get(0)))
    }

    fn tags(
        &self,
        repo: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<String>, bool), MetaError> {
        let first = after.unwrap_or("").to_owned();
        let tags = Batched::new(batch_for(limit), |last: Option<&String>, n| {
            let rows = match last {
                Some(a) => self.rows(
                    "SELECT tag FROM tags WHERE repo = $1 AND tag > $2 ORDER BY tag LIMIT $3",
                    &[&repo, a, &n],
                )?,
                None if after.is_some() => self.rows(
                    "SELECT tag FROM tags WHERE repo = $1 AND tag > $2 ORDER BY tag LIMIT $3",
                    &[&repo, &first, &n],
                )?,
                None => self.rows(
                    "SELECT tag FROM tags WHERE repo = $1 ORDER BY tag LIMIT $2",
                    &[&repo, &n],
                )?,
            };
            Ok(rows
                .iter()
                .map(|r| (r.get::<_, String>(0), r.get::<_, String>(0)))
                .collect())
        });
        page_of(tags, limit, |_| true)
    }

    fn tag_targets(&self, repo: &str) -> Result<Vec<(String, String)>, MetaError> {
        self.string_pairs(
            "SELECT tag, digest FROM tags WHERE repo = $1 ORDER BY tag",
            &[&repo],
        )
    }

    fn highest_version(
        &self,
        repo: &str,
        scope: Scope,
    ) -> Result<Option<(String, String)>, MetaError> {
        let (low, high) = precedence::bounds(scope);
        Ok(self
            .row(
                "SELECT tag, digest FROM tags WHERE repo = $1 AND rank >= $2 AND rank <= $3
                 ORDER BY rank DESC LIMIT 1",
                &[&repo, &low, &high],
            )?
            .map(|r| (r.get(0), r.get(1))))
    }

    fn versions_page(
        &self,
        repo: &str,
        before: Option<&semver::Version>,
        limit: usize,
        keep: &dyn Fn(&str) -> bool,
    ) -> Result<(Vec<(String, String)>, bool), MetaError> {
        let [stable, pre] = precedence::version_ranges(before).map(|(low, high)| {
            let (op, high) = bound_sql(&high);
            let below = format!(
                "SELECT rank, tag, digest FROM tags WHERE repo = $1 AND rank >= $2 AND rank {op} $3
                 ORDER BY rank DESC LIMIT $4"
            );
            Batched::new(batch_for(limit), move |last: Option<&Vec<u8>>, n| {
                let rows = match last {
                    Some(last) => self.rows(
                        "SELECT rank, tag, digest FROM tags WHERE repo = $1 AND rank >= $2 AND rank < $3
                         ORDER BY rank DESC LIMIT $4",
                        &[&repo, &low, last, &n],
                    )?,
                    None => self.rows(&below, &[&repo, &low, &high, &n])?,
                };
                Ok(rows
                    .iter()
                    .map(|r| (r.get::<_, Vec<u8>>(0), (r.get(1), r.get(2))))
                    .collect())
            })
        });
        precedence::merge_versions(stable, pre, limit, keep)
    }

    fn named_tags_page(
        &self,
        repo: &str,
        after: Option<&str>,
        limit: usize,
        keep: &dyn Fn(&str) -> bool,
    ) -> Result<(Vec<(String, String)>, bool), MetaError> {
        let (low, high) = precedence::bounds(Scope::Named);
        let start = after.map(|a| {
            let mut k = vec![precedence::NAMED];
            k.extend_from_slice(a.as_bytes());
            k
        });
        let tags = Batched::new(batch_for(limit), |last: Option<&Vec<u8>>, n| {
            let rows = match last.or(start.as_ref()) {
                Some(k) => self.rows(
                    "SELECT rank, tag, digest FROM tags WHERE repo = $1 AND rank > $2 AND rank <= $3
                     ORDER BY rank LIMIT $4",
                    &[&repo, k, &high, &n],
                )?,
                None => self.rows(
                    "SELECT rank, tag, digest FROM tags WHERE repo = $1 AND rank >= $2 AND rank <= $3
                     ORDER BY rank LIMIT $4",
                    &[&repo, &low, &high, &n],
                )?,
            };
            Ok(rows
                .iter()
                .map(|r| (r.get::<_, Vec<u8>>(0), (r.get(1), r.get(2))))
                .collect())
        });
        page_of(tags, limit, |(tag, _): &(String, String)| keep(tag))
    }

    fn tombstones_page(
        &self,
        repo: &str,
        after: Option<&str>,
        limit: usize,
        keep: &dyn Fn(&str) -> bool,
    ) -> Result<(Vec<(String, String)>, bool), MetaError> {
        let start = after.map(str::to_owned);
        let tombs = Batched::new(batch_for(limit), |last: Option<&String>, n| {
            let rows = match last.or(start.as_ref()) {
                Some(a) => self.rows(
                    "SELECT tag, digest FROM tombstones WHERE repo = $1 AND tag > $2
                     ORDER BY tag LIMIT $3",
                    &[&repo, a, &n],
                )?,
                None => self.rows(
                    "SELECT tag, digest FROM tombstones WHERE repo = $1 ORDER BY tag LIMIT $2",
                    &[&repo, &n],
                )?,
            };
            Ok(rows
                .iter()
                .map(|r| (r.get::<_, String>(0), (r.get(0), r.get(1))))
                .collect())
        });
        page_of(tombs, limit, |(tag, _): &(String, String)| keep(tag))
    }

    fn tags_pointing_at(&self, repo: &str, digest: &str) -> Result<Vec<String>, MetaError> {
        self.strings(
            "SELECT tag FROM tags WHERE repo = $1 AND digest = $2 ORDER BY tag",
            &[&repo, &digest],
        )
    }

    fn tombstone(&self, repo: &str, tag: &str) -> Result<Option<String>, MetaError> {
        Ok(self
            .row(
                "SELECT digest FROM tombstones WHERE repo = $1 AND tag = $2",
                &[&repo, &tag],
            )?
            .map(|r| r.get(0)))
    }

    fn tombstones(&self, repo: &str) -> Result<Vec<(String, String)>, MetaError> {
        self.string_pairs(
            "SELECT tag, digest FROM tombstones WHERE repo = $1 ORDER BY tag",
            &[&repo],
        )
    }
}

impl TagsWrite for Txn {
    fn set_tag(&mut self, repo: &str, tag: &str, digest: &str) -> Result<(), MetaError> {
        let rank = precedence::rank(tag);
        self.exec(
            "INSERT INTO tags (repo, tag, digest, rank) VALUES ($1, $2, $3, $4)
             ON CONFLICT (repo, tag) DO UPDATE SET digest = EXCLUDED.digest",
            &[&repo, &tag, &digest, &rank],
        )?;
        Ok(())
    }

    fn remove_tag(&mut self, repo: &str, tag: &str) -> Result<bool, MetaError> {
        Ok(self.exec(
            "DELETE FROM tags WHERE repo = $1 AND tag = $2",
            &[&repo, &tag],
        )? > 0)
    }

    fn set_tombstone(&mut self, repo: &str, tag: &str, digest: &str) -> Result<(), MetaError> {
        self.exec(
            "INSERT INTO tombstones (repo, tag, digest) VALUES ($1, $2, $3)
             ON CONFLICT (repo, tag) DO UPDATE SET digest = EXCLUDED.digest",
            &[&repo, &tag, &digest],
        )?;
        Ok(())
    }

    fn remove_tombstone(&mut self, repo: &str, tag: &str) -> Result<bool, MetaError> {
        Ok(self.exec(
            "DELETE FROM tombstones WHERE repo = $1 AND tag = $2",
            &[&repo, &tag],
        )? > 0)
    }
}
