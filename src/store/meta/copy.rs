//! Every record of one metadata engine, copied into another through the seam: what
//! `semdock storage migrate` (embedded → PostgreSQL) and a backup of a PostgreSQL registry
//! (PostgreSQL → the embedded backup format) are made of. Written once against `MetaRead`
//! and `MetaWrite`, so either direction keeps every index the engines derive (ranked tags,
//! tags by digest, history by repository) by writing the records the way the domain does.
//!
//! History keeps its sequence numbers (the order across repositories is the order of
//! those numbers), and the settings, the counters that number the append-only tables among
//! them, are written last, so the target goes on numbering after the source. Left out:
//! upload sessions (their bytes belong to the store they were sent to).

use super::{MetaError, MetaRead, MetaWrite};

/// How many records of each kind a copy wrote.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RecordCounts {
    pub feeds: u64,
    pub repositories: u64,
    pub manifests: u64,
    pub tags: u64,
    pub blobs: u64,
    pub links: u64,
    pub referrers: u64,
    pub tombstones: u64,
    pub history: u64,
    pub pulls: u64,
    pub users: u64,
    pub api_keys: u64,
    pub grants: u64,
    pub settings: u64,
    pub retention: u64,
    pub audit: u64,
    pub promotions: u64,
}

/// Writes every record `from` holds into `to` (one transaction of the target: all or
/// nothing). `to` should hold no registry yet; records it has under the same keys are
/// replaced.
pub fn copy_records(
    from: &dyn MetaRead,
    to: &mut dyn MetaWrite,
) -> Result<RecordCounts, MetaError> {
    let mut n = RecordCounts::default();
    let mut principals = Vec::new();
    for (name, record) in from.users()? {
        to.put_user(&name, &record)?;
        principals.push(format!("user:{name}"));
        n.users += 1;
    }
    for (id, record) in from.api_keys()? {
        to.put_api_key(&id, &record)?;
        principals.push(format!("key:{id}"));
        n.api_keys += 1;
    }
    for principal in &principals {
        for (feed, role) in from.grants_of(principal)? {
            to.set_grant(principal, &feed, &role)?;
            n.grants += 1;
        }
    }
    for (name, record) in from.feeds()? {
        to.put_feed(&name, &record)?;
        n.feeds += 1;
        if let Some(rules) = from.retention(&name)? {
            to.put_retention(&name, &rules)?;
            n.retention += 1;
        }
    }
    // A blob record is written before anything that references it, as the domain does.
    let mut failed = None;
    from.each_blob(&mut |digest, record| {
        if failed.is_none() {
            match to.put_blob(digest, &record) {
                Ok(()) => n.blobs += 1,
                Err(e) => failed = Some(e),
            }
        }
    })?;
    from.each_link(&mut |repo, digest, at| {
        if failed.is_none() {
            match to.link(repo, digest, at) {
                Ok(()) => n.links += 1,
                Err(e) => failed = Some(e),
            }
        }
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    let mut after: Option<String> = None;
    loop {
        let (page, more) = from.repositories("", after.as_deref(), 512, &|_| true)?;
        for repo in &page {
            copy_repository(from, to, repo, &mut n)?;
        }
        after = page.last().cloned();
        if !more || after.is_none() {
            break;
        }
    }
    // The audit log keeps its numbers (webhook cursors name them); the counter is a setting.
    let mut cursor = None;
    loop {
        let (page, more) = from.audit_page(cursor, false, &[], 512, &|_| super::Scan::Keep)?;
        for (seq, record) in &page {
            to.put_audit(*seq, record)?;
            n.audit += 1;
        }
        cursor = page.last().map(|(seq, _)| *seq);
        if !more || cursor.is_none() {
            break;
        }
    }
    for record in from.promotions()? {
        to.append_promotion(&record)?;
        n.promotions += 1;
    }
    for (name, value) in from.settings()? {
        to.put_setting(&name, &value)?;
        n.settings += 1;
    }
    Ok(n)
}

/// One repository: its record, manifests (with their pull times and referrer entries),
/// tags, tombstones and history.
fn copy_repository(
    from: &dyn MetaRead,
    to: &mut dyn MetaWrite,
    repo: &str,
    n: &mut RecordCounts,
) -> Result<(), MetaError> {
    if let Some(record) = from.repository(repo)? {
        to.put_repository(repo, &record)?;
        n.repositories += 1;
    }
    for (digest, record) in from.manifests_of(repo)? {
        to.put_manifest(repo, &digest, &record)?;
        n.manifests += 1;
        if let Some(at) = from.last_pull(repo, &digest)? {
            to.set_pull(repo, &digest, at)?;
            n.pulls += 1;
        }
        // A referrer entry is kept for a manifest of this repository whose subject it names;
        // the time it was linked is not kept by the engines' readers, so the manifest's own
        // time stands for it.
        if let Some(subject) = &record.subject
            && from.referrers(repo, subject)?.contains(&digest)
        {
            to.add_referrer(repo, subject, &digest, record.created)?;
            n.referrers += 1;
        }
    }
    for (tag, digest) in from.tag_targets(repo)? {
        to.set_tag(repo, &tag, &digest)?;
        n.tags += 1;
    }
    for (tag, digest) in from.tombstones(repo)? {
        to.set_tombstone(repo, &tag, &digest)?;
        n.tombstones += 1;
    }
    for (tag, seq, record) in from.history(repo, None)? {
        to.put_history(repo, &tag, seq, &record)?;
        n.history += 1;
    }
    Ok(())
}
