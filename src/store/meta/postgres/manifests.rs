//! Manifests, their referrers and pull times in PostgreSQL.

use super::BATCH;
use super::txn::{Batched, Txn, to_i64, to_u64};
use crate::store::meta::codec::{decode, encode};
use crate::store::meta::{ManifestRecord, ManifestsRead, ManifestsWrite, MetaError};

impl ManifestsRead for Txn {
    fn manifest(&self, repo: &str, digest: &str) -> Result<Option<ManifestRecord>, MetaError> {
        self.record(
            "SELECT record FROM manifests WHERE repo = $1 AND digest = $2",
            &[&repo, &digest],
        )
    }

    fn has_manifest(&self, repo: &str, digest: &str) -> Result<bool, MetaError> {
        Ok(self
            .row(
                "SELECT 1 FROM manifests WHERE repo = $1 AND digest = $2",
                &[&repo, &digest],
            )?
            .is_some())
    }

    fn manifests_of(&self, repo: &str) -> Result<Vec<(String, ManifestRecord)>, MetaError> {
        self.rows(
            "SELECT digest, record FROM manifests WHERE repo = $1 ORDER BY digest",
            &[&repo],
        )?
        .iter()
        .map(|r| Ok((r.get(0), decode(r.get::<_, &[u8]>(1))?)))
        .collect()
    }

    fn manifest_digests(&self, repo: &str) -> Result<Vec<String>, MetaError> {
        self.strings(
            "SELECT digest FROM manifests WHERE repo = $1 ORDER BY digest",
            &[&repo],
        )
    }

    fn each_manifest(
        &self,
        f: &mut dyn FnMut(&str, &str, ManifestRecord),
    ) -> Result<(), MetaError> {
        let all = Batched::new(BATCH, |last: Option<&(String, String)>, n| {
            let rows = match last {
                Some((repo, digest)) => self.rows(
                    "SELECT repo, digest, record FROM manifests WHERE (repo, digest) > ($1, $2)
                     ORDER BY repo, digest LIMIT $3",
                    &[repo, digest, &n],
                )?,
                None => self.rows(
                    "SELECT repo, digest, record FROM manifests ORDER BY repo, digest LIMIT $1",
                    &[&n],
                )?,
            };
            rows.iter()
                .map(|r| {
                    let key = (r.get::<_, String>(0), r.get::<_, String>(1));
                    let record: ManifestRecord = decode(r.get::<_, &[u8]>(2))?;
                    Ok((key.clone(), (key, record)))
                })
                .collect()
        });
        for item in all {
            let ((repo, digest), record) = item?;
            f(&repo, &digest, record);
        }
        Ok(())
    }

    fn referrers(&self, repo: &str, subject: &str) -> Result<Vec<String>, MetaError> {
        self.strings(
            "SELECT referrer FROM referrers WHERE repo = $1 AND subject = $2 ORDER BY referrer",
            &[&repo, &subject],
        )
    }

    fn last_pull(&self, repo: &str, digest: &str) -> Result<Option<u64>, MetaError> {
        Ok(self
            .row(
                "SELECT at FROM pulls WHERE repo = $1 AND digest = $2",
                &[&repo, &digest],
            )?
            .map(|r| to_u64(r.get(0))))
    }
}

impl ManifestsWrite for Txn {
    fn put_manifest(
        &mut self,
        repo: &str,
        digest: &str,
        record: &ManifestRecord,
    ) -> Result<(), MetaError> {
        let record = encode(record)?;
        self.exec(
            "INSERT INTO manifests (repo, digest, record) VALUES ($1, $2, $3)
             ON CONFLICT (repo, digest) DO UPDATE SET record = EXCLUDED.record",
            &[&repo, &digest, &record],
        )?;
        Ok(())
    }

    fn remove_manifest(&mut self, repo: &str, digest: &str) -> Result<(), MetaError> {
        self.exec(
            "DELETE FROM manifests WHERE repo = $1 AND digest = $2",
            &[&repo, &digest],
        )?;
        Ok(())
    }

    fn add_referrer(
        &mut self,
        repo: &str,
        subject: &str,
        referrer: &str,
        at: u64,
    ) -> Result<(), MetaError> {
        self.exec(
            "INSERT INTO referrers (repo, subject, referrer, at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (repo, subject, referrer) DO UPDATE SET at = EXCLUDED.at",
            &[&repo, &subject, &referrer, &to_i64(at)],
        )?;
        Ok(())
    }

    fn remove_referrer(
        &mut self,
        repo: &str,
        subject: &str,
        referrer: &str,
    ) -> Result<(), MetaError> {
        self.exec(
            "DELETE FROM referrers WHERE repo = $1 AND subject = $2 AND referrer = $3",
            &[&repo, &subject, &referrer],
        )?;
        Ok(())
    }

    fn set_pull(&mut self, repo: &str, digest: &str, at: u64) -> Result<(), MetaError> {
        self.exec(
            "INSERT INTO pulls (repo, digest, at) VALUES ($1, $2, $3)
             ON CONFLICT (repo, digest) DO UPDATE SET at = greatest(pulls.at, EXCLUDED.at)",
            &[&repo, &digest, &to_i64(at)],
        )?;
        Ok(())
    }

    fn remove_pull(&mut self, repo: &str, digest: &str) -> Result<(), MetaError> {
        self.exec(
            "DELETE FROM pulls WHERE repo = $1 AND digest = $2",
            &[&repo, &digest],
        )?;
        Ok(())
    }
}
