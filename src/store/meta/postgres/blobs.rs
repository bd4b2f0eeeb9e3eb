//! Blob records, their links into repositories and upload sessions in PostgreSQL.

use super::BATCH;
use super::txn::{Batched, Txn, to_i64, to_u64};
use crate::store::meta::codec::{decode, encode};
use crate::store::meta::{BlobRecord, BlobsRead, BlobsWrite, MetaError, UploadRecord};

impl BlobsRead for Txn {
    fn blob(&self, digest: &str) -> Result<Option<BlobRecord>, MetaError> {
        self.record("SELECT record FROM blobs WHERE digest = $1", &[&digest])
    }

    fn blobs(&self) -> Result<Vec<(String, BlobRecord)>, MetaError> {
        self.named_records("SELECT digest, record FROM blobs ORDER BY digest")
    }

    fn blob_digests(&self, after: Option<&str>, limit: usize) -> Result<Vec<String>, MetaError> {
        let n = to_i64(limit as u64);
        match after {
            Some(after) => self.strings(
                "SELECT digest FROM blobs WHERE digest > $1 ORDER BY digest LIMIT $2",
                &[&after, &n],
            ),
            None => self.strings("SELECT digest FROM blobs ORDER BY digest LIMIT $1", &[&n]),
        }
    }

    fn each_blob(&self, f: &mut dyn FnMut(&str, BlobRecord)) -> Result<(), MetaError> {
        let all = Batched::new(BATCH, |last: Option<&String>, n| {
            let rows = match last {
                Some(after) => self.rows(
                    "SELECT digest, record FROM blobs WHERE digest > $1 ORDER BY digest LIMIT $2",
                    &[after, &n],
                )?,
                None => self.rows(
                    "SELECT digest, record FROM blobs ORDER BY digest LIMIT $1",
                    &[&n],
                )?,
            };
            rows.iter()
                .map(|r| {
                    let digest: String = r.get(0);
                    let record: BlobRecord = decode(r.get::<_, &[u8]>(1))?;
                    Ok((digest.clone(), (digest, record)))
                })
                .collect()
        });
        for item in all {
            let (digest, record) = item?;
            f(&digest, record);
        }
        Ok(())
    }

    fn is_linked(&self, repo: &str, digest: &str) -> Result<bool, MetaError> {
        Ok(self
            .row(
                "SELECT 1 FROM links WHERE repo = $1 AND digest = $2",
                &[&repo, &digest],
            )?
            .is_some())
    }

    fn linked_at(&self, repo: &str, digest: &str) -> Result<Option<u64>, MetaError> {
        Ok(self
            .row(
                "SELECT at FROM links WHERE repo = $1 AND digest = $2",
                &[&repo, &digest],
            )?
            .map(|row| to_u64(row.get(0))))
    }

    fn linked_blobs(&self, repo: &str) -> Result<Vec<String>, MetaError> {
        self.strings(
            "SELECT digest FROM links WHERE repo = $1 ORDER BY digest",
            &[&repo],
        )
    }

    fn each_link(&self, f: &mut dyn FnMut(&str, &str, u64)) -> Result<(), MetaError> {
        let all = Batched::new(BATCH, |last: Option<&(String, String)>, n| {
            let rows = match last {
                Some((repo, digest)) => self.rows(
                    "SELECT repo, digest, at FROM links WHERE (repo, digest) > ($1, $2)
                     ORDER BY repo, digest LIMIT $3",
                    &[repo, digest, &n],
                )?,
                None => self.rows(
                    "SELECT repo, digest, at FROM links ORDER BY repo, digest LIMIT $1",
                    &[&n],
                )?,
            };
            Ok(rows
                .iter()
                .map(|r| {
                    let key = (r.get::<_, String>(0), r.get::<_, String>(1));
                    (key.clone(), (key, to_u64(r.get(2))))
                })
                .collect())
        });
        for item in all {
            let ((repo, digest), at) = item?;
            f(&repo, &digest, at);
        }
        Ok(())
    }

    fn repositories_linking(&self, digest: &str) -> Result<Vec<String>, MetaError> {
        self.strings(
            "SELECT repo FROM links WHERE digest = $1 ORDER BY repo",
            &[&digest],
        )
    }

    fn links(&self) -> Result<Vec<(String, String, u64)>, MetaError> {
        Ok(self
            .rows(
                "SELECT repo, digest, at FROM links ORDER BY repo, digest",
                &[],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1), to_u64(r.get(2))))
            .collect())
    }

    fn upload(&self, id: &str) -> Result<Option<UploadRecord>, MetaError> {
        self.record("SELECT record FROM uploads WHERE id = $1", &[&id])
    }

    fn uploads(&self) -> Result<Vec<(String, UploadRecord)>, MetaError> {
        self.named_records("SELECT id, record FROM uploads ORDER BY id")
    }
}

impl BlobsWrite for Txn {
    fn put_blob(&mut self, digest: &str, record: &BlobRecord) -> Result<(), MetaError> {
        self.put_record("blobs", "digest", digest, &encode(record)?)
    }

    fn remove_blob(&mut self, digest: &str) -> Result<bool, MetaError> {
        Ok(self.exec("DELETE FROM blobs WHERE digest = $1", &[&digest])? > 0)
    }

    fn link(&mut self, repo: &str, digest: &str, at: u64) -> Result<(), MetaError> {
        self.exec(
            "INSERT INTO links (repo, digest, at) VALUES ($1, $2, $3)
             ON CONFLICT (repo, digest) DO UPDATE SET at = EXCLUDED.at",
            &[&repo, &digest, &to_i64(at)],
        )?;
        Ok(())
    }

    fn unlink(&mut self, repo: &str, digest: &str) -> Result<bool, MetaError> {
        Ok(self.exec(
            "DELETE FROM links WHERE repo = $1 AND digest = $2",
            &[&repo, &digest],
        )? > 0)
    }

    fn put_upload(&mut self, id: &str, record: &UploadRecord) -> Result<(), MetaError> {
        self.put_record("uploads", "id", id, &encode(record)?)
    }

    fn remove_upload(&mut self, id: &str) -> Result<(), MetaError> {
        self.exec("DELETE FROM uploads WHERE id = $1", &[&id])?;
        Ok(())
    }
}
