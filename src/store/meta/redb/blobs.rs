//! Blob records, their links into repositories and upload sessions in redb.

use std::ops::Bound;

use redb::ReadableTable;

use super::tables::{Access, Tables, Writer};
use super::walk::{all, get, page_of_pairs};
use crate::store::meta::codec::{decode, encode};
use crate::store::meta::{BlobRecord, BlobsRead, BlobsWrite, MetaError, UploadRecord};

impl<A: Access> BlobsRead for Tables<A> {
    fn blob(&self, digest: &str) -> Result<Option<BlobRecord>, MetaError> {
        get(&self.blobs, digest)
    }

    fn blobs(&self) -> Result<Vec<(String, BlobRecord)>, MetaError> {
        all(&self.blobs)
    }

    fn blob_digests(&self, after: Option<&str>, limit: usize) -> Result<Vec<String>, MetaError> {
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut out = Vec::new();
        for entry in self.blobs.range::<&str>((start, Bound::Unbounded))? {
            if out.len() == limit {
                break;
            }
            out.push(entry?.0.value().to_owned());
        }
        Ok(out)
    }

    fn each_blob(&self, f: &mut dyn FnMut(&str, BlobRecord)) -> Result<(), MetaError> {
        for entry in self.blobs.iter()? {
            let (k, v) = entry?;
            f(k.value(), decode(v.value())?);
        }
        Ok(())
    }

    fn is_linked(&self, repo: &str, digest: &str) -> Result<bool, MetaError> {
        Ok(self.links.get((repo, digest))?.is_some())
    }

    fn linked_at(&self, repo: &str, digest: &str) -> Result<Option<u64>, MetaError> {
        Ok(self.links.get((repo, digest))?.map(|at| at.value()))
    }

    fn linked_blobs(&self, repo: &str) -> Result<Vec<String>, MetaError> {
        Ok(page_of_pairs(&self.links, repo, None, usize::MAX)?.0)
    }

    fn each_link(&self, f: &mut dyn FnMut(&str, &str, u64)) -> Result<(), MetaError> {
        for entry in self.links.iter()? {
            let (k, v) = entry?;
            let (repo, digest) = k.value();
            f(repo, digest, v.value());
        }
        Ok(())
    }

    fn repositories_linking(&self, digest: &str) -> Result<Vec<String>, MetaError> {
        let mut out = Vec::new();
        for entry in self.links.iter()? {
            let (k, _) = entry?;
            let (repo, linked) = k.value();
            if linked == digest {
                out.push(repo.to_owned());
            }
        }
        Ok(out)
    }

    fn links(&self) -> Result<Vec<(String, String, u64)>, MetaError> {
        let mut out = Vec::new();
        for entry in self.links.iter()? {
            let (k, v) = entry?;
            let (repo, digest) = k.value();
            out.push((repo.to_owned(), digest.to_owned(), v.value()));
        }
        Ok(out)
    }

    fn upload(&self, id: &str) -> Result<Option<UploadRecord>, MetaError> {
        get(&self.uploads, id)
    }

    fn uploads(&self) -> Result<Vec<(String, UploadRecord)>, MetaError> {
        all(&self.uploads)
    }
}

impl BlobsWrite for Writer<'_> {
    fn put_blob(&mut self, digest: &str, record: &BlobRecord) -> Result<(), MetaError> {
        self.blobs.insert(digest, encode(record)?.as_slice())?;
        Ok(())
    }

    fn remove_blob(&mut self, digest: &str) -> Result<bool, MetaError> {
        Ok(self.blobs.remove(digest)?.is_some())
    }

    fn link(&mut self, repo: &str, digest: &str, at: u64) -> Result<(), MetaError> {
        self.links.insert((repo, digest), at)?;
        Ok(())
    }

    fn unlink(&mut self, repo: &str, digest: &str) -> Result<bool, MetaError> {
        Ok(self.links.remove((repo, digest))?.is_some())
    }

    fn put_upload(&mut self, id: &str, record: &UploadRecord) -> Result<(), MetaError> {
        self.uploads.insert(id, encode(record)?.as_slice())?;
        Ok(())
    }

    fn remove_upload(&mut self, id: &str) -> Result<(), MetaError> {
        self.uploads.remove(id)?;
        Ok(())
    }
}
