//! Manifests, their referrers and pull times in redb.

use std::ops::Bound;

use redb::ReadableTable;

use super::tables::{Access, Tables, Writer};
use super::walk::{get, page_of_pairs};
use crate::store::meta::codec::{decode, encode};
use crate::store::meta::{ManifestRecord, ManifestsRead, ManifestsWrite, MetaError};

impl<A: Access> ManifestsRead for Tables<A> {
    fn manifest(&self, repo: &str, digest: &str) -> Result<Option<ManifestRecord>, MetaError> {
        get(&self.manifests, (repo, digest))
    }

    fn has_manifest(&self, repo: &str, digest: &str) -> Result<bool, MetaError> {
        Ok(self.manifests.get((repo, digest))?.is_some())
    }

    fn manifests_of(&self, repo: &str) -> Result<Vec<(String, ManifestRecord)>, MetaError> {
        let mut out = Vec::new();
        let start = Bound::Included((repo, ""));
        for entry in self
            .manifests
            .range::<(&str, &str)>((start, Bound::Unbounded))?
        {
            let (k, v) = entry?;
            let (r, digest) = k.value();
            if r != repo {
                break;
            }
            out.push((digest.to_owned(), decode(v.value())?));
        }
        Ok(out)
    }

    fn manifest_digests(&self, repo: &str) -> Result<Vec<String>, MetaError> {
        Ok(page_of_pairs(&self.manifests, repo, None, usize::MAX)?.0)
    }

    fn each_manifest(
        &self,
        f: &mut dyn FnMut(&str, &str, ManifestRecord),
    ) -> Result<(), MetaError> {
        for entry in self.manifests.iter()? {
            let (k, v) = entry?;
            let (repo, digest) = k.value();
            f(repo, digest, decode(v.value())?);
        }
        Ok(())
    }

    fn referrers(&self, repo: &str, subject: &str) -> Result<Vec<String>, MetaError> {
        let mut out = Vec::new();
        let start = Bound::Included((repo, subject, ""));
        for entry in self
            .referrers
            .range::<(&str, &str, &str)>((start, Bound::Unbounded))?
        {
            let (k, _) = entry?;
            let (r, s, referrer) = k.value();
            if r != repo || s != subject {
                break;
            }
            out.push(referrer.to_owned());
        }
        Ok(out)
    }

    fn last_pull(&self, repo: &str, digest: &str) -> Result<Option<u64>, MetaError> {
        Ok(self.pulls.get((repo, digest))?.map(|g| g.value()))
    }
}

impl ManifestsWrite for Writer<'_> {
    fn put_manifest(
        &mut self,
        repo: &str,
        digest: &str,
        record: &ManifestRecord,
    ) -> Result<(), MetaError> {
        self.manifests
            .insert((repo, digest), encode(record)?.as_slice())?;
        Ok(())
    }

    fn remove_manifest(&mut self, repo: &str, digest: &str) -> Result<(), MetaError> {
        self.manifests.remove((repo, digest))?;
        Ok(())
    }

    fn add_referrer(
        &mut self,
        repo: &str,
        subject: &str,
        referrer: &str,
        at: u64,
    ) -> Result<(), MetaError> {
        self.referrers.insert((repo, subject, referrer), at)?;
        Ok(())
    }

    fn remove_referrer(
        &mut self,
        repo: &str,
        subject: &str,
        referrer: &str,
    ) -> Result<(), MetaError> {
        self.referrers.remove((repo, subject, referrer))?;
        Ok(())
    }

    fn set_pull(&mut self, repo: &str, digest: &str, at: u64) -> Result<(), MetaError> {
        let newer = self
            .pulls
            .get((repo, digest))?
            .is_none_or(|g| g.value() < at);
        if newer {
            self.pulls.insert((repo, digest), at)?;
        }
        Ok(())
    }

    fn remove_pull(&mut self, repo: &str, digest: &str) -> Result<(), MetaError> {
        self.pulls.remove((repo, digest))?;
        Ok(())
    }
}
