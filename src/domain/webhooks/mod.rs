//! Webhooks: endpoints that are told of content changes, delivered from the audit log.
//!
//! An event is the audit record of the change, written in the change's own transaction, so
//! it exists exactly when the change committed and survives any crash. Each endpoint keeps a
//! cursor into the log (the last entry it has handled): a delivery moves the cursor only once
//! the receiver answered 2xx, so delivery is at least once, in order, and a `kill -9` between
//! a change and its delivery only delays it; the receiver de-duplicates by the event id (the
//! entry's number). A failure is retried with exponential backoff, and after the last attempt
//! the event is logged as failed and the endpoint moves on (it can be redelivered, once more).
//! Each endpoint is delivered to on a worker of its own (`Deliverer`), so a receiver that
//! never answers delays no other endpoint. One node delivers at a time
//! (`Metadata::try_exclusive`); endpoints, cursors and delivery logs are settings of the
//! metadata store, so every node, a backup and a migration carry them; a feed's endpoints
//! are deleted with it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Error;
use super::audit::{self, AuditEntry, Kind};
use super::clock::Clock;
use crate::store::meta::settings::{Family, Json};
use crate::store::meta::{AuditRecord, MetaRead, MetaWrite, Metadata, Scan};

mod deliverer;
mod delivery;
pub use deliverer::{Deliverer, WORKERS};

/// id → an endpoint, in the settings table.
pub(crate) const ENDPOINTS: Family<Json<Endpoint>> = Family::keyed("webhook:", "webhook endpoint");
/// id → where the endpoint's delivery stands.
pub(crate) const STATES: Family<Json<State>> =
    Family::keyed("webhook-state:", "webhook delivery state");
/// id → the endpoint's newest deliveries, newest first.
pub(crate) const LOGS: Family<Json<Vec<Delivery>>> =
    Family::keyed("webhook-log:", "webhook delivery log");
/// Deliveries kept per endpoint, newest first.
pub const LOG_ENTRIES: usize = 200;
/// Across nodes, one deliverer at a time.
const DELIVERY_LOCK: i64 = 0x5e3d_0c04;
/// Webhooks a feed may have (and global webhooks, together): each costs a delivery worker
/// while its receiver is slow, so a feed administrator's receivers stay a bounded share.
pub const MAX_ENDPOINTS_PER_FEED: usize = 20;

/// How a payload is shaped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// semdock's JSON.
    #[default]
    Semdock,
    /// `CloudEvents` 1.0, structured mode (`application/cloudevents+json`).
    Cloudevents,
}

/// An endpoint as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub id: String,
    pub url: String,
    /// The HMAC-SHA256 key of `X-Semdock-Signature`; shown once, when created.
    pub secret: crate::model::Secret,
    /// Only this feed's events; every feed's when `None` (administrators only).
    pub feed: Option<String>,
    /// The events wanted (webhook names); every event when empty.
    pub events: Vec<Kind>,
    pub format: Format,
    pub active: bool,
    pub created_ms: u64,
    pub created_by: String,
}

impl Serialize for Kind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.event_name())
    }
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Kind::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// An endpoint as the API shows it: the secret never again.
#[derive(Debug, Clone, Serialize)]
pub struct EndpointInfo {
    pub id: String,
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feed: Option<String>,
    /// Event names; empty means every event.
    pub events: Vec<String>,
    pub format: Format,
    pub active: bool,
    /// RFC 3339.
    pub created: String,
    pub created_by: String,
    /// The id of the last event handled (delivered, or given up on).
    pub cursor: u64,
    /// The secret, in the response that created the endpoint only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// Where an endpoint's delivery stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct State {
    cursor: u64,
    /// Failed attempts at the event after `cursor`.
    attempts: u32,
    /// Unix milliseconds before which the next attempt waits.
    next_attempt_ms: u64,
    /// Event ids an operator asked to send again, as earlier versions kept them (and never
    /// let go of): read as one more delivery each, never written.
    #[serde(default, skip_serializing)]
    redeliver: Vec<u64>,
    /// Events an operator asked to send again, each until delivered or given up on.
    #[serde(default)]
    redeliveries: Vec<Redelivery>,
}

/// One event an operator asked to send again: one more delivery, retried like any other.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Redelivery {
    event_id: u64,
    /// Failed attempts so far.
    attempts: u32,
    /// Unix milliseconds before which the next attempt waits.
    next_attempt_ms: u64,
}

impl State {
    /// The stored state (or none yet), with what earlier versions kept read as they meant it.
    fn settle(stored: Option<Self>) -> Self {
        let mut state = stored.unwrap_or_default();
        for event_id in std::mem::take(&mut state.redeliver) {
            if !state.redeliveries.iter().any(|r| r.event_id == event_id) {
                state.redeliveries.push(Redelivery {
                    event_id,
                    ..Redelivery::default()
                });
            }
        }
        state
    }
}

/// One delivery attempt's outcome, as the log keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// The event's id (its audit entry).
    pub event_id: u64,
    pub event: String,
    /// RFC 3339 of the last attempt.
    pub time: String,
    /// `delivered`, `retrying` (another attempt follows) or `failed` (no more).
    pub status: String,
    pub attempts: u32,
    /// The receiver's HTTP status, when it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Sent again by an operator.
    #[serde(default)]
    pub redelivery: bool,
}

/// A new endpoint, as asked for.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewEndpoint {
    pub url: String,
    /// Generated when omitted (and returned once).
    pub secret: Option<String>,
    pub feed: Option<String>,
    /// Event names (`Added`, `TagMoved`, `VirtualTagMoved`, `Promoted`, `Deleted`, `Purged`,
    /// `RetentionDeleted`, `PushRefused`, `FeedSettingsChanged`); every event when empty.
    #[serde(default)]
    pub events: Vec<String>,
    #[serde(default)]
    pub format: Format,
}

/// A change of an endpoint; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointChange {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub format: Option<Format>,
    pub active: Option<bool>,
}

/// How deliveries run (configuration).
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// `host[:port]` of the pinned references in payloads.
    pub host: String,
    pub timeout: Duration,
    pub max_attempts: u32,
    /// The first retry's wait; each next one doubles, up to `max_backoff`.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

/// What sends one request: a receiver's status, or why none came.
pub trait Sender: Send + Sync {
    fn post(&self, url: &str, headers: &[(&str, String)], body: &[u8]) -> Result<u16, String>;
}

fn check_url(url: &str) -> Result<(), Error> {
    check_http_url(url, "webhook URL")
}

/// Checks that `url` is an `http://` or `https://` URL with a host; `what` names it in the
/// refusal.
pub(crate) fn check_http_url(url: &str, what: &str) -> Result<(), Error> {
    let ok = (url.starts_with("http://") || url.starts_with("https://"))
        && url.len() <= 2048
        && !url.chars().any(char::is_whitespace)
        && url
            .split_once("://")
            .is_some_and(|(_, rest)| !rest.is_empty() && !rest.starts_with('/'));
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "{url:?} is not a {what}: give http:// or https:// and a host"
        )))
    }
}

fn parse_events(names: &[String]) -> Result<Vec<Kind>, Error> {
    let mut out = Vec::new();
    for n in names {
        let k = Kind::parse(n)?;
        if !k.is_event() {
            return Err(Error::Invalid(format!(
                "{n:?} is not a webhook event: use one of {}",
                audit::EVENTS.map(Kind::event_name).join(", ")
            )));
        }
        if !out.contains(&k) {
            out.push(k);
        }
    }
    Ok(out)
}

/// Endpoint `id` as stored.
fn stored_endpoint(r: &(impl MetaRead + ?Sized), id: &str) -> Result<Endpoint, Error> {
    ENDPOINTS.get(r, id)?.ok_or_else(|| unknown(id))
}

/// Where endpoint `id`'s delivery stands.
fn stored_state(r: &(impl MetaRead + ?Sized), id: &str) -> Result<State, Error> {
    Ok(State::settle(STATES.get(r, id)?))
}

fn unknown(id: &str) -> Error {
    Error::NotFound(format!("webhook {id:?} does not exist"))
}

impl Endpoint {
    fn wants(&self, r: &AuditRecord) -> bool {
        let Ok(kind) = Kind::parse(&r.kind) else {
            return false;
        };
        kind.is_event()
            && self.active
            && self.feed.as_ref().is_none_or(|f| *f == r.feed)
            && (self.events.is_empty() || self.events.contains(&kind))
    }

    /// The kinds the endpoint is sent: the index walks only those.
    fn kinds(&self) -> Vec<&'static str> {
        let wanted: &[Kind] = if self.events.is_empty() {
            &audit::EVENTS
        } else {
            &self.events
        };
        wanted.iter().map(|k| k.as_str()).collect()
    }

    fn info(&self, cursor: u64, secret: bool) -> EndpointInfo {
        EndpointInfo {
            id: self.id.clone(),
            url: self.url.clone(),
            feed: self.feed.clone(),
            events: self
                .events
                .iter()
                .map(|k| k.event_name().to_owned())
                .collect(),
            format: self.format,
            active: self.active,
            created: audit::rfc3339(self.created_ms),
            created_by: self.created_by.clone(),
            cursor,
            secret: secret.then(|| self.secret.expose().to_owned()),
        }
    }
}

/// The signature header's value: `sha256=` and the hex HMAC-SHA256 of `body` under `secret`.
#[must_use]
pub fn signature(secret: &str, body: &[u8]) -> String {
    use hmac::{KeyInit, Mac};

    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The webhooks service: endpoints, their delivery state and logs, over the metadata store.
/// The registry holds one (`registry.webhooks()`); a [`Deliverer`] works on a copy.
#[derive(Clone)]
pub struct Webhooks {
    meta: Arc<dyn Metadata>,
    clock: Clock,
}

impl Webhooks {
    #[must_use]
    pub(crate) fn new(meta: Arc<dyn Metadata>, clock: Clock) -> Self {
        Self { meta, clock }
    }

    fn endpoint(&self, id: &str) -> Result<Endpoint, Error> {
        stored_endpoint(&*self.meta.read()?, id)
    }

    fn state(&self, id: &str) -> Result<State, Error> {
        stored_state(&*self.meta.read()?, id)
    }

    /// Every endpoint, by id.
    pub fn list(&self) -> Result<Vec<EndpointInfo>, Error> {
        let r = self.meta.read()?;
        let mut out = Vec::new();
        for (_, e) in ENDPOINTS.all(&*r)? {
            let state = stored_state(&*r, &e.id)?;
            out.push(e.info(state.cursor, false));
        }
        Ok(out)
    }

    /// The feed an endpoint belongs to (`None`: global), for the caller's rights check.
    pub fn feed_of(&self, id: &str) -> Result<Option<String>, Error> {
        Ok(self.endpoint(id)?.feed)
    }

    /// Adds an endpoint that is told of events from now on; returns it with its secret.
    pub fn create(&self, new: &NewEndpoint, actor: &str) -> Result<EndpointInfo, Error> {
        check_url(&new.url)?;
        let events = parse_events(&new.events)?;
        let secret = match new.secret.as_deref().map(str::trim) {
            Some(s) if s.len() >= 16 => s.to_owned(),
            Some(_) => {
                return Err(Error::Invalid(
                    "a webhook secret needs at least 16 characters".into(),
                ));
            }
            None => hex::encode(super::auth::random_bytes::<32>()),
        };
        let endpoint = Endpoint {
            id: hex::encode(super::auth::random_bytes::<6>()),
            url: new.url.clone(),
            secret: secret.into(),
            feed: new.feed.clone().filter(|f| !f.is_empty()),
            events,
            format: new.format,
            active: true,
            created_ms: self.clock.now_ms(),
            created_by: actor.to_owned(),
        };
        let cursor = self.meta.write(|w| {
            if let Some(feed) = &endpoint.feed
                && w.feed(feed)?.is_none()
            {
                return Err(Error::FeedUnknown { feed: feed.clone() });
            }
            let siblings = ENDPOINTS
                .all(w)?
                .into_iter()
                .filter(|(_, e)| e.feed == endpoint.feed)
                .count();
            if siblings >= MAX_ENDPOINTS_PER_FEED {
                let whose = endpoint
                    .feed
                    .as_ref()
                    .map_or_else(|| "every feed".to_owned(), |f| format!("feed {f:?}"));
                return Err(Error::Invalid(format!(
                    "{whose} already has {siblings} webhooks, the most it may have: delete one \
                     it no longer needs, or send one receiver the events and fan them out there"
                )));
            }
            // Told of what happens from now on: the cursor starts at the newest entry.
            let (newest, _) = w.audit_page(None, true, &[], 1, &|_| Scan::Keep)?;
            let cursor = newest.first().map_or(0, |(seq, _)| *seq);
            ENDPOINTS.put(w, &endpoint.id, &endpoint)?;
            STATES.put(
                w,
                &endpoint.id,
                &State {
                    cursor,
                    ..State::default()
                },
            )?;
            let mut entry = audit::entry(
                Kind::WebhookChanged,
                actor,
                endpoint.feed.as_deref().unwrap_or_default(),
                format!("webhook {} to {} created", endpoint.id, endpoint.url),
            );
            entry.source = Some(endpoint.url.clone());
            audit::append(w, &self.clock, entry)?;
            Ok(cursor)
        })?;
        Ok(endpoint.info(cursor, true))
    }

    pub fn update(
        &self,
        id: &str,
        change: &EndpointChange,
        actor: &str,
    ) -> Result<EndpointInfo, Error> {
        if let Some(url) = &change.url {
            check_url(url)?;
        }
        let events = change.events.as_deref().map(parse_events).transpose()?;
        let (endpoint, cursor) = self.meta.write(|w| {
            let mut e = stored_endpoint(w, id)?;
            if let Some(url) = &change.url {
                e.url.clone_from(url);
            }
            if let Some(events) = &events {
                e.events.clone_from(events);
            }
            if let Some(format) = change.format {
                e.format = format;
            }
            if let Some(active) = change.active {
                e.active = active;
            }
            ENDPOINTS.put(w, id, &e)?;
            let state = stored_state(w, id)?;
            audit::append(
                w,
                &self.clock,
                audit::entry(
                    Kind::WebhookChanged,
                    actor,
                    e.feed.as_deref().unwrap_or_default(),
                    format!("webhook {id} changed"),
                ),
            )?;
            Ok::<_, Error>((e, state.cursor))
        })?;
        Ok(endpoint.info(cursor, false))
    }

    pub fn delete(&self, id: &str, actor: &str) -> Result<(), Error> {
        self.meta.write(|w| {
            let e = stored_endpoint(w, id)?;
            ENDPOINTS.remove(w, id)?;
            STATES.remove(w, id)?;
            LOGS.remove(w, id)?;
            audit::append(
                w,
                &self.clock,
                audit::entry(
                    Kind::WebhookChanged,
                    actor,
                    e.feed.as_deref().unwrap_or_default(),
                    format!("webhook {id} to {} deleted", e.url),
                ),
            )?;
            Ok(())
        })
    }

    /// The newest deliveries of an endpoint, newest first.
    pub fn deliveries(&self, id: &str) -> Result<Vec<Delivery>, Error> {
        self.endpoint(id)?;
        Ok(LOGS.get(&*self.meta.read()?, id)?.unwrap_or_default())
    }

    /// Queues event `event_id` to be sent to the endpoint again.
    pub fn redeliver(&self, id: &str, event_id: u64) -> Result<(), Error> {
        self.meta.write(|w| {
            let e = stored_endpoint(w, id)?;
            let found = w
                .audit_page(event_id.checked_sub(1), false, &[], 1, &|_| Scan::Keep)?
                .0
                .into_iter()
                .next()
                .filter(|(seq, r)| *seq == event_id && e.wants(r));
            if found.is_none() {
                return Err(Error::NotFound(format!(
                    "event {event_id} is not one webhook {id} is sent"
                )));
            }
            let mut state = stored_state(w, id)?;
            // Already queued: that one delivery is still to come.
            if !state.redeliveries.iter().any(|r| r.event_id == event_id) {
                state.redeliveries.push(Redelivery {
                    event_id,
                    ..Redelivery::default()
                });
            }
            STATES.put(w, id, &state)?;
            Ok(())
        })
    }
}

/// Removes the webhooks of `feed`, with their cursors, pending redeliveries and logs: called
/// in the transaction that deletes the feed, so a new feed of the same name starts with none.
pub(crate) fn remove_feed_endpoints(w: &mut dyn MetaWrite, feed: &str) -> Result<(), Error> {
    for (id, e) in ENDPOINTS.all(w)? {
        if e.feed.as_deref() == Some(feed) {
            ENDPOINTS.remove(w, &id)?;
            STATES.remove(w, &id)?;
            LOGS.remove(w, &id)?;
        }
    }
    Ok(())
}

/// Counts per status, for `/metrics`-style summaries and tests.
#[must_use]
pub fn tally(log: &[Delivery]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for d in log {
        *out.entry(d.status.clone()).or_default() += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_of_the_body() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn urls_and_events_are_checked() {
        assert!(check_url("http://127.0.0.1:9/hook").is_ok());
        assert!(check_url("ftp://x").is_err());
        assert!(check_url("http:///nohost").is_err());
        assert_eq!(
            parse_events(&["added".into(), "Promoted".into(), "Added".into()]).unwrap(),
            vec![Kind::Added, Kind::Promoted]
        );
        assert!(parse_events(&["Login".into()]).is_err());
    }

    #[test]
    fn redeliveries_queued_by_earlier_versions_are_one_delivery_each() {
        let old = br#"{"cursor":7,"attempts":0,"next_attempt_ms":0,"redeliver":[3,5,3]}"#;
        let state = State::settle(Some(serde_json::from_slice(old).unwrap()));
        assert_eq!(state.cursor, 7);
        assert_eq!(
            state
                .redeliveries
                .iter()
                .map(|r| (r.event_id, r.attempts))
                .collect::<Vec<_>>(),
            vec![(3, 0), (5, 0)]
        );
        let written = serde_json::to_string(&state).unwrap();
        assert!(!written.contains("\"redeliver\""), "{written}");
    }
}
