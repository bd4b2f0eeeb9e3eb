//! `semdock trust …` and `semdock verify`: trusted keys, feeds' signature policies, and what
//! an image's signatures say.

#[allow(clippy::wildcard_imports)]
use super::*;
use crate::domain::access::{FeedAdmin, Pull};
use crate::http::api::dto::{
    self, NewTrustKey, NewTrustRoot, NewTrustStore, SignaturePolicy, TrustKey, TrustRoot,
    TrustStore, Verification,
};

pub(super) fn trust(target: &Target, action: TrustAction) -> anyhow::Result<()> {
    match action {
        TrustAction::Key { action } => keys(target, action),
        TrustAction::Root { action } => roots(target, action),
        TrustAction::Store { action } => stores(target, action),
        TrustAction::Policy {
            feed,
            keys,
            identities,
            stores,
            attestations,
            on_push,
            on_pull,
            no_promotion,
            remove,
        } => {
            if remove {
                remove_policy(target, &feed)?;
                println!("feed {feed} has no signature policy now");
                return Ok(());
            }
            let shown = if keys.is_empty() && identities.is_empty() && stores.is_empty() {
                policy(target, &feed)?
            } else {
                let identities = identities
                    .iter()
                    .map(|i| {
                        let (issuer, subject) = i.split_once('=').ok_or_else(|| {
                            anyhow::anyhow!("--identity {i:?} is not ISSUER=SUBJECT")
                        })?;
                        Ok(dto::Identity {
                            issuer: issuer.to_owned(),
                            subject: subject.to_owned(),
                        })
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?;
                let attestations = attestations
                    .iter()
                    .map(|a| attestation_rule(a))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                let wanted = SignaturePolicy {
                    keys,
                    identities,
                    stores,
                    attestations,
                    on_promotion: !no_promotion,
                    on_push,
                    on_pull: match on_pull.as_deref() {
                        Some("refuse") => Some(dto::PullGate::Refuse),
                        Some("warn") => Some(dto::PullGate::Warn),
                        _ => None,
                    },
                };
                Some(set_policy(target, &feed, &wanted)?)
            };
            match shown {
                None => println!("feed {feed} has no signature policy"),
                Some(p) => {
                    let p = crate::domain::trust::SignaturePolicy::from(p);
                    println!(
                        "feed {feed} requires {} on {}",
                        p.requirement(),
                        p.enforced_where()
                    );
                }
            }
            Ok(())
        }
    }
}

fn keys(target: &Target, action: TrustKeyAction) -> anyhow::Result<()> {
    match action {
        TrustKeyAction::Add { name, file } => {
            let pem = read_file(&file)?;
            let key = add_key(target, &NewTrustKey { name, pem })?;
            println!(
                "trusted key {} ({}, fingerprint {})",
                key.name, key.kind, key.fingerprint
            );
        }
        TrustKeyAction::List => {
            let rows: Vec<Vec<String>> = list_keys(target)?
                .into_iter()
                .map(|k| vec![k.name, k.kind, k.fingerprint, k.added, k.added_by])
                .collect();
            print_table(&["NAME", "KIND", "FINGERPRINT", "ADDED", "BY"], &rows);
        }
        TrustKeyAction::Remove { name } => {
            remove_key(target, &name)?;
            println!("key {name} is no longer trusted");
        }
    }
    Ok(())
}

fn roots(target: &Target, action: TrustRootAction) -> anyhow::Result<()> {
    match action {
        TrustRootAction::Add { name, file } => {
            let text = read_file(&file)?;
            let root = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", file.display()))?;
            let r = add_root(target, &NewTrustRoot { name, root })?;
            println!(
                "trusted root {} ({} transparency logs, {} CT logs, {} certificate authorities, {} timestamp authorities)",
                r.name, r.tlogs, r.ctlogs, r.certificate_authorities, r.timestamp_authorities
            );
        }
        TrustRootAction::List => {
            let rows: Vec<Vec<String>> = list_roots(target)?
                .into_iter()
                .map(|r| {
                    vec![
                        r.name,
                        r.tlogs.to_string(),
                        r.ctlogs.to_string(),
                        r.certificate_authorities.to_string(),
                        r.timestamp_authorities.to_string(),
                        r.added,
                        r.added_by,
                    ]
                })
                .collect();
            print_table(
                &["NAME", "TLOGS", "CTLOGS", "CAS", "TSAS", "ADDED", "BY"],
                &rows,
            );
        }
        TrustRootAction::Remove { name } => {
            remove_root(target, &name)?;
            println!("root {name} is no longer trusted");
        }
    }
    Ok(())
}

fn stores(target: &Target, action: TrustStoreAction) -> anyhow::Result<()> {
    match action {
        TrustStoreAction::Add { name, file } => {
            let pem = read_file(&file)?;
            let st = add_store(target, &NewTrustStore { name, pem })?;
            println!(
                "trust store {} ({} CA certificates)",
                st.name, st.certificates
            );
        }
        TrustStoreAction::List => {
            let rows: Vec<Vec<String>> = list_stores(target)?
                .into_iter()
                .map(|s| vec![s.name, s.certificates.to_string(), s.added, s.added_by])
                .collect();
            print_table(&["NAME", "CAS", "ADDED", "BY"], &rows);
        }
        TrustStoreAction::Remove { name } => {
            remove_store(target, &name)?;
            println!("trust store {name} is no longer trusted");
        }
    }
    Ok(())
}

/// Prints what the signatures of `image` say; an error (exit 1) when none verifies.
pub(super) fn verify(target: &Target, image: &str, hosts: &[String]) -> anyhow::Result<()> {
    let query = serde_urlencoded::to_string([("ref", image)])?;
    let report: Verification = target.run(Request::get(format!("/verify?{query}")), |a| {
        Ok(crate::http::api::verify_ref(a, image, hosts)?.into())
    })?;
    println!("{}@{}", report.repository, report.digest);
    for s in &report.signatures {
        println!("  {} {}: {}", s.form, s.manifest, s.reason);
    }
    if report.signatures.is_empty() {
        println!("  no signature");
    }
    if report.verified {
        println!("verified by {}", report.verified_by.join(", "));
        Ok(())
    } else {
        bail!("no signature of {image} verifies with a trusted key")
    }
}

/// An attestation rule from `TYPE [FIELD=GLOB]…`.
fn attestation_rule(text: &str) -> anyhow::Result<dto::AttestationRule> {
    let mut words = text.split_whitespace();
    let predicate_type = words
        .next()
        .ok_or_else(|| anyhow::anyhow!("--attestation needs a predicate type"))?
        .to_owned();
    let matches = words
        .map(|w| {
            w.split_once('=')
                .map(|(f, g)| (f.to_owned(), g.to_owned()))
                .ok_or_else(|| anyhow::anyhow!("--attestation: {w:?} is not FIELD=GLOB"))
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(dto::AttestationRule {
        predicate_type,
        matches,
    })
}

/// The text of `file`, or of standard input for `-`.
fn read_file(file: &std::path::Path) -> anyhow::Result<String> {
    if file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        Ok(text)
    } else {
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))
    }
}

// The operations, each written once: the API's request, and the same through `Access`.

fn add_key(target: &Target, new: &NewTrustKey) -> anyhow::Result<TrustKey> {
    let request = Request::send("POST", "/trust/keys", new);
    target.run(request, |a| {
        Ok(a.admin()?.trust().add(&new.name, &new.pem)?.into())
    })
}

fn list_keys(target: &Target) -> anyhow::Result<Vec<TrustKey>> {
    target.run(Request::get("/trust/keys"), |a| {
        Ok(dto::all(a.admin()?.trust().list()?))
    })
}

fn remove_key(target: &Target, name: &str) -> anyhow::Result<()> {
    target.run(Request::delete(format!("/trust/keys/{name}")), |a| {
        Ok(a.admin()?.trust().remove(name)?)
    })
}

fn add_root(target: &Target, new: &NewTrustRoot) -> anyhow::Result<TrustRoot> {
    let request = Request::send("POST", "/trust/roots", new);
    target.run(request, |a| {
        Ok(a.admin()?
            .trust()
            .add_root(&new.name, &new.root.to_string())?
            .into())
    })
}

fn list_roots(target: &Target) -> anyhow::Result<Vec<TrustRoot>> {
    target.run(Request::get("/trust/roots"), |a| {
        Ok(dto::all(a.admin()?.trust().roots()?))
    })
}

fn remove_root(target: &Target, name: &str) -> anyhow::Result<()> {
    target.run(Request::delete(format!("/trust/roots/{name}")), |a| {
        Ok(a.admin()?.trust().remove_root(name)?)
    })
}

fn add_store(target: &Target, new: &NewTrustStore) -> anyhow::Result<TrustStore> {
    let request = Request::send("POST", "/trust/stores", new);
    target.run(request, |a| {
        Ok(a.admin()?.trust().add_store(&new.name, &new.pem)?.into())
    })
}

fn list_stores(target: &Target) -> anyhow::Result<Vec<TrustStore>> {
    target.run(Request::get("/trust/stores"), |a| {
        Ok(dto::all(a.admin()?.trust().stores()?))
    })
}

fn remove_store(target: &Target, name: &str) -> anyhow::Result<()> {
    target.run(Request::delete(format!("/trust/stores/{name}")), |a| {
        Ok(a.admin()?.trust().remove_store(name)?)
    })
}

fn policy(target: &Target, feed: &str) -> anyhow::Result<Option<SignaturePolicy>> {
    let request = Request::get(format!("/feeds/{feed}/signature-policy"));
    target.run(request, |a| {
        Ok(a.feed::<Pull>(feed)?.signatures().policy()?.map(Into::into))
    })
}

fn set_policy(
    target: &Target,
    feed: &str,
    wanted: &SignaturePolicy,
) -> anyhow::Result<SignaturePolicy> {
    let request = Request::send("PUT", format!("/feeds/{feed}/signature-policy"), wanted);
    target.run(request, |a| {
        let p = wanted.clone().into();
        a.feed::<FeedAdmin>(feed)?
            .signatures()
            .set_policy(Some(&p))?;
        Ok(wanted.clone())
    })
}

fn remove_policy(target: &Target, feed: &str) -> anyhow::Result<()> {
    let request = Request::delete(format!("/feeds/{feed}/signature-policy"));
    target.run(request, |a| {
        Ok(a.feed::<FeedAdmin>(feed)?.signatures().set_policy(None)?)
    })
}
