//! Registry tokens: issued for the scopes asked and held, verified (signature, expiry,
//! credential and feed epochs), remembered while the metadata is unchanged.

#[allow(clippy::wildcard_imports)]
use super::*;

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Claims {
    pub(super) iss: String,
    pub(super) sub: String,
    pub(super) aud: String,
    pub(super) exp: u64,
    pub(super) nbf: u64,
    pub(super) iat: u64,
    pub(super) jti: String,
    pub(super) access: Vec<AccessClaim>,
    /// The account's credential epoch when the token was issued (see `Auth::epoch`).
    #[serde(default)]
    pub(super) epoch: u64,
    /// The epoch of each feed `access` names when the token was issued (see
    /// `bump_feed_epoch`); a feed absent here is at epoch 0.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub(super) feeds: std::collections::BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct AccessClaim {
    #[serde(rename = "type")]
    pub(super) kind: String,
    pub(super) name: String,
    pub(super) actions: Vec<String>,
}

/// A token that passed verification, as `verify_token` returns it.
#[derive(Debug, Clone)]
pub(super) struct VerifiedToken {
    pub(super) exp: u64,
    pub(super) principal: Option<Principal>,
    pub(super) access: Arc<[AccessClaim]>,
}

impl VerifiedToken {
    pub(super) fn grants(&self, repository: &str, action: Action) -> bool {
        self.access.iter().any(|a| {
            a.kind == "repository"
                && a.name == repository
                && a.actions.iter().any(|x| x == action.as_str())
        })
    }
}

/// Seconds of clock skew a token's `exp` and `nbf` tolerate.
pub(super) const TOKEN_LEEWAY: u64 = 5;
/// Verified tokens remembered (each a few hundred bytes).
pub(super) const TOKEN_CACHE_ENTRIES: usize = 4096;
pub(super) const TOKEN_CACHE_BYTES: usize = 4 << 20;
/// Feeds whose anonymous access is remembered (a feed name and a byte each).
pub(super) const FEED_CACHE_ENTRIES: usize = 1024;
pub(super) const FEED_CACHE_BYTES: usize = 256 << 10;

impl Auth {
    // ---- tokens ----

    /// Issues a token for `scopes`, granting of each what the caller may do.
    pub fn issue_token(
        &self,
        principal: Option<&Principal>,
        scopes: &[Scope],
    ) -> Result<IssuedToken, Error> {
        let mut access = Vec::new();
        let mut feeds = std::collections::BTreeMap::new();
        for scope in scopes {
            let asked: Vec<Action> = scope
                .actions
                .iter()
                .flat_map(|a| Action::parse_scope(a))
                .collect();
            let granted = match scope.kind.as_str() {
                "repository" => {
                    let feed = feed_of(&scope.name);
                    // Read before the rights: a delete in between voids this token's claim.
                    let epoch = FEED_EPOCHS.get(&*self.meta.read()?, feed)?.unwrap_or(0);
                    let granted = self.caps(principal, feed)?.filter(&asked);
                    if !granted.is_empty() && epoch != 0 {
                        feeds.insert(feed.to_owned(), epoch);
                    }
                    granted
                }
                _ => Vec::new(),
            };
            if !granted.is_empty() {
                access.push(AccessClaim {
                    kind: scope.kind.clone(),
                    name: scope.name.clone(),
                    actions: granted.iter().map(|a| a.as_str().to_owned()).collect(),
                });
            }
        }
        let issued_at = self.clock.now();
        let epoch = principal.map(|p| self.epoch(p)).transpose()?.unwrap_or(0);
        let claims = Claims {
            iss: ISSUER.to_owned(),
            sub: principal.map_or_else(|| "anonymous".to_owned(), Principal::subject),
            aud: self.settings.service.clone(),
            exp: issued_at + self.settings.ttl_seconds,
            nbf: issued_at.saturating_sub(5),
            iat: issued_at,
            jti: uuid::Uuid::new_v4().simple().to_string(),
            access,
            epoch,
            feeds,
        };
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(&self.token_key),
        )
        .map_err(|e| Error::Internal(format!("signing a token failed: {e}")))?;
        Ok(IssuedToken {
            token,
            expires_in: self.settings.ttl_seconds,
            issued_at,
        })
    }

    /// Verifies a token; returns its (still active) principal and what it grants.
    pub(super) fn verify_token(&self, token: &str) -> Result<VerifiedToken, Error> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[&self.settings.service]);
        validation.set_issuer(&[ISSUER]);
        // Expiry is checked against the registry's clock, below, not the library's.
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["exp", "aud", "iss"]);
        let refused = |why: String| {
            crate::metrics::get().auth_failure("token");
            Error::TokenInvalid(why)
        };
        let data = jsonwebtoken::decode::<Claims>(
            token,
            &DecodingKey::from_secret(&self.token_key),
            &validation,
        )
        .map_err(|e| refused(e.to_string()))?;
        if self.clock.now() > data.claims.exp + TOKEN_LEEWAY {
            return Err(refused("it has expired: log in again".into()));
        }
        // Read before the subject's record, so a cached answer is never newer than its read.
        let generation = self.meta.generation();
        let principal = match self.active_subject_at(&data.claims.sub)? {
            Some((_, epoch)) if epoch != data.claims.epoch => {
                return Err(Error::TokenInvalid(
                    "it was issued before the account's password or roles changed: log in again"
                        .into(),
                ));
            }
            found => found.map(|(p, _)| p),
        };
        // A feed deleted (or created) since the token was issued: its rights there are void,
        // as a re-created feed of the same name is another feed.
        let mut access = data.claims.access;
        if access.iter().any(|a| a.kind == "repository") {
            let r = self.meta.read()?;
            let mut current = std::collections::BTreeMap::new();
            for a in &access {
                let feed = feed_of(&a.name);
                if !current.contains_key(feed) {
                    let epoch = FEED_EPOCHS.get(&*r, feed)?.unwrap_or(0);
                    current.insert(feed.to_owned(), epoch);
                }
            }
            access.retain(|a| {
                let feed = feed_of(&a.name);
                a.kind != "repository"
                    || current.get(feed) == Some(&data.claims.feeds.get(feed).copied().unwrap_or(0))
            });
        }
        let verified = VerifiedToken {
            exp: data.claims.exp,
            principal,
            access: access.into(),
        };
        let weight = token.len() + 64 * verified.access.len() + 128;
        self.tokens
            .put(token.to_owned(), generation, verified.clone(), weight);
        Ok(verified)
    }

    /// Authorizes `action` on `repository` for a request's credentials. A Bearer token must
    /// carry the scope; Basic credentials and anonymous callers are checked against roles.
    pub fn authorize(
        &self,
        credentials: &Credentials,
        client: IpAddr,
        repository: &str,
        feed: &str,
        action: Action,
    ) -> Result<Option<Principal>, Error> {
        match credentials {
            Credentials::Bearer(token) => {
                let verified = self.verify_token(token)?;
                if verified.grants(repository, action) {
                    return Ok(verified.principal);
                }
                // Not in this token: ask for another when the caller may, else refuse.
                self.require(verified.principal.as_ref(), feed, action)?;
                Err(Error::InsufficientScope)
            }
            other => {
                let principal = self
                    .caller(other, client, Surface::Registry)?
                    .map(|c| c.principal);
                self.require(principal.as_ref(), feed, action)?;
                Ok(principal)
            }
        }
    }

    /// The metadata store (for the session records, `domain::sessions`).
    pub(in crate::domain) fn meta(&self) -> &dyn Metadata {
        &*self.meta
    }

    /// The clock of the services.
    pub(in crate::domain) fn clock(&self) -> &crate::domain::clock::Clock {
        &self.clock
    }

    /// Whether `authorize_cached` answers from memory alone (see
    /// `Metadata::generation_is_local`): then the executor may call it.
    #[must_use]
    pub fn caches_locally(&self) -> bool {
        self.meta.generation_is_local()
    }

    /// `authorize`'s answer from memory: for a Bearer token verified since the last metadata
    /// write (so its subject is still active), unexpired, whose scope covers the action; or
    /// for an anonymous caller in a feed whose settings were read since that write and allow
    /// the action. `Some(principal)` is the answer; `None` means "call `authorize`". Touches
    /// no database when `caches_locally`, so it may then run on an async executor.
    #[must_use]
    pub fn authorize_cached(
        &self,
        credentials: &Credentials,
        repository: &str,
        feed: &str,
        action: Action,
    ) -> Option<Option<Principal>> {
        let generation = self.meta.generation();
        match credentials {
            Credentials::Bearer(token) => {
                let verified = self.tokens.get(token, generation)?;
                (self.clock.now() <= verified.exp + TOKEN_LEEWAY
                    && verified.grants(repository, action))
                .then_some(verified.principal)
            }
            Credentials::None => {
                let caps = self.anonymous.get(feed, generation)?;
                caps.allows(action).then_some(None)
            }
            Credentials::Basic { .. } => None,
        }
    }
}
