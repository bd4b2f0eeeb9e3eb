//! Workload identity federation: a job presents the ID token its CI system or cluster gave
//! it (GitHub Actions, GitLab CI, a Kubernetes service account) as the password of user
//! `oidc`, and gets a robot's rights — no long-lived secret stored in CI. Administrators
//! trust an issuer with rules: `{issuer, audience, claims} → robot`. A token must be signed
//! by the issuer's keys, be for the audience, unexpired, and carry every claim a rule names
//! (`*` globs; `a/b` reaches into an object, as Kubernetes' `kubernetes.io/namespace`). A
//! rule must name at least one claim: an issuer such as GitHub's signs tokens for every one
//! of its customers' repositories.

#[allow(clippy::wildcard_imports)]
use super::*;
use crate::clients::workload;
use crate::store::meta::settings::Json;

/// The user name a federated token is presented with.
pub const FEDERATED_USER: &str = "oidc";

/// Rules by id.
pub(crate) const RULES: Family<Json<FederationRule>> =
    Family::keyed("federation:", "workload identity rule");

/// Which tokens of an issuer act as which robot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FederationRule {
    pub issuer: String,
    pub audience: String,
    /// claim (`a/b` for nested) → glob every token must match.
    pub claims: std::collections::BTreeMap<String, String>,
    /// The robot's full name.
    pub robot: String,
    /// A JWKS document for an issuer semdock cannot reach (its keys are not fetched then).
    pub jwks: Option<String>,
    pub created: u64,
    pub created_by: String,
}

/// How long a verified token is remembered (until it expires, at most this).
const REMEMBERED: Duration = Duration::from_mins(10);

fn claim_at<'c>(
    claims: &'c serde_json::Map<String, serde_json::Value>,
    path: &str,
) -> Option<&'c serde_json::Value> {
    let mut parts = path.split('/');
    let mut at = claims.get(parts.next()?)?;
    for part in parts {
        at = at.get(part)?;
    }
    Some(at)
}

fn claim_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Workload identity rules (`auth.federation()`), for administrators.
pub struct Federation<'a> {
    pub(super) auth: &'a Auth,
}

impl Federation<'_> {
    /// Trusts `rule.issuer`'s tokens that match it as `rule.robot`; answers the rule's id.
    pub fn add(&self, actor: &Caller, mut rule: FederationRule) -> Result<String, Error> {
        Auth::require_admin(actor)?;
        require_account_rights(actor)?;
        rule.issuer = rule.issuer.trim().trim_end_matches('/').to_owned();
        let loopback_http = rule.issuer.strip_prefix("http://").is_some_and(|r| {
            let host = r.split(['/', ':']).next().unwrap_or_default();
            host == "localhost" || host.parse::<IpAddr>().is_ok_and(|a| a.is_loopback())
        });
        if !(rule.issuer.starts_with("https://") || loopback_http) {
            return Err(Error::Invalid(format!(
                "the issuer {:?} is not an https URL (plain http only on a loopback address)",
                rule.issuer
            )));
        }
        if rule.audience.trim().is_empty() {
            return Err(Error::Invalid(
                "a rule needs the audience tokens are issued for".into(),
            ));
        }
        if rule.claims.is_empty() {
            return Err(Error::Invalid(
                "a rule needs at least one claim to match (repository, sub, …): an issuer signs tokens for everyone it serves".into(),
            ));
        }
        if let Some(jwks) = &rule.jwks
            && serde_json::from_str::<jsonwebtoken::jwk::JwkSet>(jwks).is_err()
        {
            return Err(Error::Invalid("the JWKS given is not a JWK set".into()));
        }
        rule.created = self.auth.clock.now();
        actor.user().clone_into(&mut rule.created_by);
        let id = hex::encode(random_bytes::<6>());
        self.auth.meta.write(|w| {
            if robots::ROBOTS.get(w, &rule.robot)?.is_none() {
                return Err(Error::NotFound(format!(
                    "robot {:?} does not exist: create it first",
                    rule.robot
                )));
            }
            RULES.put(w, &id, &rule)?;
            let claims: Vec<String> = rule
                .claims
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            audit::append(
                w,
                &self.auth.clock,
                audit::entry(
                    Kind::FederationChanged,
                    actor.user(),
                    "",
                    format!(
                        "tokens of {} for {} with [{}] act as {} (rule {id})",
                        rule.issuer,
                        rule.audience,
                        claims.join(", "),
                        rule.robot
                    ),
                ),
            )?;
            Ok(())
        })?;
        Ok(id)
    }

    /// Every rule, by id.
    pub fn list(&self, actor: &Caller) -> Result<Vec<(String, FederationRule)>, Error> {
        Auth::require_admin(actor)?;
        Ok(RULES.all(&*self.auth.meta.read()?)?)
    }

    /// Removes rule `id`.
    pub fn remove(&self, actor: &Caller, id: &str) -> Result<(), Error> {
        Auth::require_admin(actor)?;
        require_account_rights(actor)?;
        self.auth.meta.write(|w| {
            let rule = RULES
                .get(w, id)?
                .ok_or_else(|| Error::NotFound(format!("no workload identity rule {id:?}")))?;
            RULES.remove(w, id)?;
            audit::append(
                w,
                &self.auth.clock,
                audit::entry(
                    Kind::FederationChanged,
                    actor.user(),
                    "",
                    format!(
                        "rule {id} removed: tokens of {} no longer act as {}",
                        rule.issuer, rule.robot
                    ),
                ),
            )?;
            Ok(())
        })
    }
}

impl Auth {
    /// Workload identity rules.
    #[must_use]
    pub fn federation(&self) -> Federation<'_> {
        Federation { auth: self }
    }

    /// The robot a workload identity token acts as: the first rule of its issuer that it
    /// satisfies. A refusal says why (unknown issuer, expired, wrong audience, no rule's
    /// claims match) and is audited.
    pub(super) fn federated_login(&self, token: &str, client: IpAddr) -> Result<Principal, Error> {
        let fingerprint = *blake3::keyed_hash(&self.hash_key, token.as_bytes()).as_bytes();
        let now = self.clock.now();
        let remembered = self
            .federated
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&fingerprint)
            .filter(|(_, until)| *until > now)
            .map(|(robot, _)| robot.clone());
        let robot = match remembered {
            Some(robot) => robot,
            None => match self.verify_workload_token(token) {
                Ok((robot, exp, summary)) => {
                    let until = exp.min(now + REMEMBERED.as_secs());
                    self.federated
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(fingerprint, (robot.clone(), until));
                    let mut entry = audit::entry(Kind::Login, &robot, "", summary);
                    entry.source = Some(client.to_string());
                    audit::append_alone(&*self.meta, &self.clock, entry)?;
                    robot
                }
                Err(e) => {
                    let mut entry = audit::entry(
                        Kind::LoginFailed,
                        FEDERATED_USER,
                        "",
                        format!("workload identity token refused: {e}"),
                    );
                    entry.source = Some(client.to_string());
                    audit::append_alone(&*self.meta, &self.clock, entry)?;
                    crate::metrics::get().auth_failure("workload_identity");
                    tracing::warn!(%client, error = %e, "workload identity token refused");
                    return Err(e);
                }
            },
        };
        let record = robots::ROBOTS
            .get(&*self.meta.read()?, &robot)?
            .ok_or(Error::InvalidCredentials)?;
        self.robot_principal(&robot, &record)
    }

    /// (robot, expiry, what the audit says) for a token that satisfies a rule.
    fn verify_workload_token(&self, token: &str) -> Result<(String, u64, String), Error> {
        let refuse = |why: String| Error::TokenInvalid(why);
        let issuer = workload::unverified_issuer(token).ok_or_else(|| {
            refuse(
                "the password of user oidc must be an ID token (a JWT) from a trusted issuer"
                    .into(),
            )
        })?;
        let rules: Vec<(String, FederationRule)> = RULES
            .all(&*self.meta.read()?)?
            .into_iter()
            .filter(|(_, r)| r.issuer == issuer.trim_end_matches('/'))
            .collect();
        if rules.is_empty() {
            return Err(refuse(format!("tokens of {issuer} are not trusted here")));
        }
        let mut why = Vec::new();
        for (id, rule) in &rules {
            let claims = match self.workload.verify(
                token,
                &rule.issuer,
                &rule.audience,
                rule.jwks.as_deref(),
            ) {
                Ok(claims) => claims,
                Err(crate::clients::ClientError::Unavailable { why, .. }) => {
                    return Err(Error::Unavailable(format!(
                        "the workload identity issuer cannot be asked for its keys: {why}"
                    )));
                }
                Err(e) => {
                    why.push(format!("rule {id}: {e}"));
                    continue;
                }
            };
            let mismatch = rule.claims.iter().find(|(path, glob)| {
                !claim_at(&claims, path)
                    .is_some_and(|v| crate::domain::versioning::glob_matches(glob, &claim_text(v)))
            });
            if let Some((path, glob)) = mismatch {
                let got = claim_at(&claims, path).map_or_else(|| "nothing".to_owned(), claim_text);
                why.push(format!(
                    "rule {id} wants {path} = {glob:?}; the token has {got:?}"
                ));
                continue;
            }
            let exp = claims
                .get("exp")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0);
            let sub = claims.get("sub").map(claim_text).unwrap_or_default();
            return Ok((
                rule.robot.clone(),
                exp,
                format!(
                    "workload identity {sub} of {issuer} logged in as {} (rule {id})",
                    rule.robot
                ),
            ));
        }
        why.dedup();
        Err(refuse(format!(
            "no rule for tokens of {issuer} accepts this one: {}",
            why.join("; ")
        )))
    }
}
