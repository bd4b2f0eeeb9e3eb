//! Every family of the settings table — the store's own (counters, migration markers) and
//! the domain's (sessions, webhooks, epochs, keys, directory roles, sync reports, trusted
//! keys, signature policies) — so the
//! integrity check can decode each stored setting with the family that owns it.

use crate::store::meta::MetaRead;
use crate::store::meta::settings::{self, AnyFamily};

/// Every family, the store's first.
#[must_use]
pub fn families() -> Vec<&'static dyn AnyFamily> {
    let mut all = settings::STORE_FAMILIES.to_vec();
    all.extend([
        &super::auth::sessions::SESSIONS as &dyn AnyFamily,
        &super::webhooks::ENDPOINTS,
        &super::webhooks::STATES,
        &super::webhooks::LOGS,
        &super::auth::EPOCHS,
        &super::auth::FEED_EPOCHS,
        &super::auth::TOKEN_KEY,
        &super::auth::HASH_KEY,
        &super::directory::ROLES,
        &super::directory::REFRESH,
        &super::registry::SYNC_REPORTS,
        &super::maintenance::backup::MIGRATED_FROM,
        &super::trust::KEYS,
        &super::trust::POLICIES,
        &super::trust::ROOTS,
        &super::trust::STORES,
        &super::vulns::SBOMS,
        &super::vulns::queue::QUEUE,
        &super::vulns::db::ADVISORIES,
        &super::vulns::db::BY_PACKAGE,
        &super::vulns::db::EPOCH,
        &super::vulns::db::ALIASES,
        &super::vulns::watch::KNOWN,
        &super::vulns::db::SOURCES,
        &super::vulns::gate::POLICIES,
        &super::maintenance::mode::READ_ONLY,
        &super::auth::robots::ROBOTS,
        &super::auth::federation::RULES,
        &super::search::NAMES,
        &super::search::TAGS,
        &super::search::DIGESTS,
        &super::search::LABELS,
        &super::search::BUILT,
        &super::quota::QUOTAS,
        &super::quota::USAGE,
        &super::quota::HELD,
        &super::quota::COUNTED,
        &super::replication::RULES,
        &super::replication::STATES,
        &super::replication::replica::REPLICAS,
    ]);
    all
}

/// Decodes every stored setting; answers (what, how many) per family that holds any. The
/// first setting that no family owns or that does not decode is the error, named.
pub fn check(
    r: &dyn MetaRead,
) -> Result<Vec<(&'static str, usize)>, crate::store::meta::MetaError> {
    let families = families();
    let counts = settings::check_all(r, &families)?;
    Ok(families
        .iter()
        .zip(counts)
        .filter(|(_, n)| *n > 0)
        .map(|(f, n)| (f.what(), n))
        .collect())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::meta::redb::RedbMeta;
    use crate::store::meta::{AuditRecord, MetaWrite, Metadata};

    fn open(dir: &std::path::Path) -> Arc<dyn Metadata> {
        Arc::new(RedbMeta::open(&dir.join("meta.redb")).unwrap())
    }

    /// One value of each family of the vulnerability service.
    fn one_of_each_vulns(w: &mut dyn MetaWrite) -> Result<(), crate::store::meta::MetaError> {
        use super::super::vulns::{self, db, gate, osv, queue, sbom};
        vulns::SBOMS.put(
            w,
            "sha256:00",
            &sbom::Sbom {
                image: "sha256:00".into(),
                os: None,
                packages: Vec::new(),
                layer_bytes: 0,
                referrer: None,
            },
        )?;
        queue::QUEUE.put(
            w,
            "prod/web@sha256:01",
            &queue::Item {
                repository: "prod/web".into(),
                digest: "sha256:01".into(),
                enqueued_ms: 1,
                lease_until_ms: 0,
                attempts: 0,
                failed: None,
            },
        )?;
        let advisory = osv::Advisory {
            id: "DSA-1".into(),
            aliases: Vec::new(),
            summary: None,
            severity: osv::Severity::High,
            score: None,
            modified: String::new(),
            withdrawn: false,
            link: None,
        };
        db::ADVISORIES.put(
            w,
            "DSA-1",
            &db::Stored {
                advisory,
                packages: vec!["Debian:12/glibc".into()],
            },
        )?;
        db::BY_PACKAGE.put(w, "Debian:12/glibc", &Vec::new())?;
        db::EPOCH.put(w, "", &1)?;
        db::ALIASES.put(w, "CVE-2023-4911", &vec!["DSA-1".to_owned()])?;
        vulns::watch::KNOWN.put(w, "sha256:00", &vec!["DSA-1".to_owned()])?;
        db::SOURCES.put(
            w,
            "a.zip",
            &db::Source {
                name: "a.zip".into(),
                records: 1,
                withdrawn: 0,
                ecosystems: Vec::new(),
                imported_ms: 1,
                imported_by: "admin".into(),
            },
        )?;
        gate::POLICIES.put(
            w,
            "prod",
            &gate::VulnPolicy {
                refuse_at: osv::Severity::High,
                fixable_only: false,
                on_push: Some(super::super::trust::PullGate::Refuse),
                on_pull: Some(super::super::trust::PullGate::Warn),
                virtual_tags: true,
                exceptions: Vec::new(),
            },
        )
    }

    /// One value of every domain family, written through the family, as the services do.
    #[allow(clippy::too_many_lines)] // one setting of every family, by design
    fn one_of_each(w: &mut dyn MetaWrite) -> Result<(), crate::store::meta::MetaError> {
        let session = super::super::auth::sessions::Stored {
            subject: "alice".into(),
            epoch: 2,
            csrf: "c".into(),
            seen: 9,
        };
        super::super::auth::sessions::SESSIONS.put(w, "h", &session)?;
        let endpoint = super::super::webhooks::Endpoint {
            id: "w1".into(),
            url: "http://127.0.0.1:9/hook".into(),
            secret: crate::model::Secret::new("s"),
            feed: Some("prod".into()),
            events: Vec::new(),
            format: super::super::webhooks::Format::Semdock,
            active: true,
            created_ms: 1,
            created_by: "admin".into(),
        };
        super::super::webhooks::ENDPOINTS.put(w, "w1", &endpoint)?;
        super::super::webhooks::STATES.put(w, "w1", &super::super::webhooks::State::default())?;
        super::super::webhooks::LOGS.put(w, "w1", &Vec::new())?;
        super::super::auth::EPOCHS.put(w, "alice", &3)?;
        super::super::auth::FEED_EPOCHS.put(w, "prod", &1)?;
        super::super::directory::ROLES.put(
            w,
            "bob",
            &super::super::directory::GroupRoles::default(),
        )?;
        super::super::directory::REFRESH.put(w, "bob", &"r".to_owned())?;
        super::super::registry::SYNC_REPORTS.put(w, "hub", &super::super::SyncReport::default())?;
        super::super::trust::KEYS.put(
            w,
            "ci",
            &super::super::trust::StoredKey {
                pem: "-----BEGIN PUBLIC KEY-----".into(),
                added_ms: 1,
                added_by: "admin".into(),
            },
        )?;
        super::super::trust::ROOTS.put(
            w,
            "public-good",
            &super::super::trust::StoredRoot {
                json: "{}".into(),
                added_ms: 1,
                added_by: "admin".into(),
            },
        )?;
        super::super::trust::STORES.put(
            w,
            "acme-ca",
            &super::super::trust::StoredStore {
                pem: "-----BEGIN CERTIFICATE-----".into(),
                added_ms: 1,
                added_by: "admin".into(),
            },
        )?;
        super::super::trust::POLICIES.put(
            w,
            "prod",
            &super::super::trust::SignaturePolicy {
                keys: vec!["ci".into()],
                identities: vec![super::super::trust::Identity {
                    issuer: "https://token.actions.githubusercontent.com".into(),
                    subject: "https://github.com/acme/*".into(),
                }],
                stores: vec!["acme-ca".into()],
                attestations: vec![super::super::trust::AttestationRule {
                    predicate_type: "https://slsa.dev/provenance/v1".into(),
                    matches: [("builder_id".to_owned(), "https://github.com/*".to_owned())].into(),
                }],
                on_promotion: true,
                on_push: false,
                on_pull: Some(super::super::trust::PullGate::Warn),
            },
        )?;
        one_of_each_vulns(w)?;
        super::super::maintenance::backup::MIGRATED_FROM.put(w, "", &"old at 1".to_owned())?;
        super::super::auth::robots::ROBOTS.put(
            w,
            "robot$prod+ci",
            &super::super::auth::robots::RobotRecord {
                feed: Some("prod".into()),
                description: "ci".into(),
                hash: "00".repeat(32),
                created: 1,
                created_by: "admin".into(),
                expires: None,
                disabled: false,
                last_used: Some(2),
                last_address: Some("127.0.0.1".into()),
            },
        )?;
        super::super::auth::federation::RULES.put(
            w,
            "0a0b0c0d0e0f",
            &super::super::auth::FederationRule {
                issuer: "https://token.actions.githubusercontent.com".into(),
                audience: "semdock".into(),
                claims: [("repository".to_owned(), "acme/web".to_owned())].into(),
                robot: "robot$prod+ci".into(),
                jwks: None,
                created: 1,
                created_by: "admin".into(),
            },
        )?;
        super::super::quota::QUOTAS.put(w, "prod", &super::super::quota::Quota { bytes: 10 })?;
        super::super::quota::USAGE.put(
            w,
            "prod",
            &super::super::quota::Usage { bytes: 3, blobs: 1 },
        )?;
        super::super::quota::HELD.put(w, "prod\u{1f}sha256:00", &1)?;
        super::super::quota::COUNTED.put(w, "", &())?;
        super::super::replication::RULES.put(
            w,
            "dr",
            &super::super::replication::Rule {
                name: "dr".into(),
                feed: "prod".into(),
                filters: vec!["web@^5".into()],
                url: "https://site-b.example".into(),
                prefix: "prod/".into(),
                username: Some("robot$prod+replica".into()),
                password: Some(crate::model::Secret::new("p")),
                on_push: true,
                interval_seconds: 3600,
                deletions: false,
                active: true,
                created_ms: 1,
                created_by: "admin".into(),
            },
        )?;
        super::super::replication::STATES.put(
            w,
            "dr",
            &super::super::replication::State::default(),
        )?;
        super::super::replication::replica::REPLICAS.put(
            w,
            "prod",
            &super::super::replication::replica::Replica {
                source: "https://site-a.example".into(),
                writers: vec!["robot$prod+replica".into()],
                since_ms: 1,
                by: "admin".into(),
            },
        )?;
        super::super::search::NAMES.put(w, "web\u{1f}prod/web", &())?;
        super::super::search::TAGS.put(w, "1.0.0\u{1f}prod/web", &())?;
        super::super::search::DIGESTS.put(w, "00\u{1f}prod/web", &())?;
        super::super::search::LABELS.put(w, "a=b\u{1f}prod/web\u{1f}sha256:00", &())?;
        super::super::search::BUILT.put(w, "", &())?;
        super::super::maintenance::mode::READ_ONLY.put(
            w,
            "",
            &super::super::maintenance::mode::ReadOnly {
                since_ms: 1,
                by: "admin".into(),
                reason: "upgrade".into(),
            },
        )?;
        super::super::auth::TOKEN_KEY.put(w, "", &vec![7; 32])?;
        super::super::auth::HASH_KEY.put(w, "", &vec![8; 32])?;
        w.append_history(
            "prod/web",
            "1.0.0",
            &crate::store::meta::HistoryRecord {
                time_ms: 1,
                old: None,
                new: Some("sha256:00".into()),
                actor: "a".into(),
                method: "push".into(),
                comment: None,
            },
        )?;
        w.append_promotion(&crate::store::meta::PromotionRecord {
            time_ms: 1,
            actor: "a".into(),
            from_repository: "staging/web".into(),
            from_reference: "1.0.0".into(),
            to_repository: "prod/web".into(),
            to_tag: "1.0.0".into(),
            digest: "sha256:00".into(),
            comment: None,
        })?;
        w.append_audit(&AuditRecord::default())?;
        Ok(())
    }

    #[test]
    fn every_family_is_versioned_and_the_check_decodes_every_setting() {
        let dir = tempfile::tempdir().unwrap();
        let meta = open(dir.path());
        meta.write(one_of_each).unwrap();
        let held = check(&*meta.read().unwrap()).unwrap();
        assert_eq!(
            held.len(),
            families().len(),
            "every family holds a setting: {held:?}"
        );
        for (_, value) in meta.read().unwrap().settings().unwrap() {
            assert_eq!(value[0], 1, "written at version 1");
        }

        // A value that does not decode, and a name no family owns: errors that name them.
        meta.write(|w| settings::put_raw(w, "webhook:w2", b"{not json"))
            .unwrap();
        let bad = check(&*meta.read().unwrap()).unwrap_err().to_string();
        assert!(
            bad.contains("\"webhook:w2\"") && bad.contains("webhook endpoint"),
            "{bad}"
        );
        meta.write(|w| {
            settings::remove_raw(w, "webhook:w2")?;
            settings::put_raw(w, "mystery", &[1])
        })
        .unwrap();
        let stray = check(&*meta.read().unwrap()).unwrap_err().to_string();
        assert!(stray.contains("\"mystery\""), "{stray}");

        // The services see the undecodable endpoint as an error, not as no endpoint.
        meta.write(|w| {
            settings::remove_raw(w, "mystery")?;
            settings::put_raw(w, "webhook:w1", &[1, b'['])
        })
        .unwrap();
        let read = super::super::webhooks::ENDPOINTS.all(&*meta.read().unwrap());
        assert!(read.unwrap_err().to_string().contains("\"webhook:w1\""));
    }

    #[test]
    fn settings_written_before_versions_are_read_after_the_migration() {
        let dir = tempfile::tempdir().unwrap();
        {
            let meta = open(dir.path());
            meta.write(|w| {
                // What earlier releases wrote: no version byte.
                settings::put_raw(w, "credentials-epoch:alice", &5u64.to_le_bytes())?;
                settings::put_raw(w, "audit-seq", &9u64.to_be_bytes())?;
                settings::put_raw(
                    w,
                    "webhook-state:w1",
                    br#"{"cursor":7,"attempts":0,"next_attempt_ms":0,"redeliver":[3]}"#,
                )?;
                settings::put_raw(
                    w,
                    "directory:bob",
                    br#"{"checked_ms":4,"admin":false,"feeds":{},"dn":"cn=bob","groups":[]}"#,
                )?;
                settings::put_raw(w, "oidc-refresh:bob", b"token")?;
                settings::put_raw(w, "token-signing-key", &[7; 32])?;
                settings::put_raw(
                    w,
                    "ui-session:h",
                    &postcard::to_stdvec(&("alice", 2u64, "c", 9u64)).unwrap(),
                )?;
                settings::remove_raw(w, "migration:settings-versions-1")
            })
            .unwrap();
        }
        let meta = open(dir.path());
        let r = meta.read().unwrap();
        assert_eq!(
            super::super::auth::EPOCHS.get(&*r, "alice").unwrap(),
            Some(5)
        );
        let roles = super::super::directory::ROLES
            .get(&*r, "bob")
            .unwrap()
            .unwrap();
        assert_eq!((roles.checked_ms, roles.dn.as_str()), (4, "cn=bob"));
        assert_eq!(
            super::super::directory::REFRESH
                .get(&*r, "bob")
                .unwrap()
                .as_deref(),
            Some("token")
        );
        let state = super::super::webhooks::STATES
            .get(&*r, "w1")
            .unwrap()
            .unwrap();
        assert_eq!(serde_json::to_value(&state).unwrap()["cursor"], 7);
        let session = super::super::auth::sessions::SESSIONS
            .get(&*r, "h")
            .unwrap()
            .unwrap();
        assert_eq!((session.subject.as_str(), session.seen), ("alice", 9));
        check(&*r).unwrap();
        drop(r);
        // The counter goes on from where it was.
        let seq = meta
            .write(|w| w.append_audit(&AuditRecord::default()))
            .unwrap();
        assert_eq!(seq, 10);
    }
}
