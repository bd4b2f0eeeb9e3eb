//! `semdock trust …` and `semdock verify`: trusted keys, feeds' signature policies, and what
//! an image's signatures say.

#[allow(clippy::wildcard_imports)]
use super::*;
use crate::domain::access::{FeedAdmin, Pull};
use crate::http::api::dto::{self, NewTrustKey, SignaturePolicy, TrustKey, Verification};

pub(super) fn trust(target: &Target, action: TrustAction) -> anyhow::Result<()> {
    match action {
        TrustAction::Key {
            action: TrustKeyAction::Add { name, file },
        } => {
            let pem = if file.as_os_str() == "-" {
                let mut text = String::new();
                std::io::stdin().read_to_string(&mut text)?;
                text
            } else {
                std::fs::read_to_string(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?
            };
            let key = add_key(target, &NewTrustKey { name, pem })?;
            println!(
                "trusted key {} ({}, fingerprint {})",
                key.name, key.kind, key.fingerprint
            );
        }
        TrustAction::Key {
            action: TrustKeyAction::List,
        } => {
            let rows: Vec<Vec<String>> = list_keys(target)?
                .into_iter()
                .map(|k| vec![k.name, k.kind, k.fingerprint, k.added, k.added_by])
                .collect();
            print_table(&["NAME", "KIND", "FINGERPRINT", "ADDED", "BY"], &rows);
        }
        TrustAction::Key {
            action: TrustKeyAction::Remove { name },
        } => {
            remove_key(target, &name)?;
            println!("key {name} is no longer trusted");
        }
        TrustAction::Policy {
            feed,
            keys,
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
            let shown = if keys.is_empty() {
                policy(target, &feed)?
            } else {
                let wanted = SignaturePolicy {
                    keys,
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
                        "feed {feed} requires a signature by {} on {}",
                        p.keys.join(" or "),
                        p.enforced_where()
                    );
                }
            }
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
