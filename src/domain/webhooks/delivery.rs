//! Delivery: what is due to an endpoint, the request that carries an event, and what the
//! endpoint's state and log keep of each attempt.

use super::{
    AuditEntry, Delivery, DeliveryConfig, ENDPOINTS, Endpoint, Error, Format, Kind, LOG_ENTRIES,
    LOGS, Redelivery, STATES, Scan, Sender, State, Webhooks, audit, signature, stored_state,
};

impl Webhooks {
    /// Whether endpoint `e` has something to send now: a redelivery, or (unless waiting
    /// to retry) an event of its kinds after its cursor.
    pub(super) fn webhook_due(&self, e: &Endpoint, now: u64) -> Result<bool, Error> {
        let r = self.meta.read()?;
        let state = stored_state(&*r, &e.id)?;
        if state.redeliveries.iter().any(|d| d.next_attempt_ms <= now) {
            return Ok(true);
        }
        if now < state.next_attempt_ms {
            return Ok(false);
        }
        let (page, _) = r.audit_page(Some(state.cursor), false, &e.kinds(), 1, &|_| Scan::Keep)?;
        Ok(!page.is_empty())
    }

    /// Delivers what is due to one endpoint: its redeliveries whose time has come (each one
    /// more delivery, retried with backoff on failure, then done), then its events after its
    /// cursor, until one fails or none is left. Returns how many requests it sent.
    pub(super) fn deliver_to(
        &self,
        e: &Endpoint,
        sender: &dyn Sender,
        config: &DeliveryConfig,
    ) -> Result<usize, Error> {
        let mut state = self.state(&e.id)?;
        let mut sent =
            self.send_redeliveries(e, std::mem::take(&mut state.redeliveries), sender, config)?;
        loop {
            if self.clock.now_ms() < state.next_attempt_ms {
                return Ok(sent);
            }
            let (page, more) = self.meta.read()?.audit_page(
                Some(state.cursor),
                false,
                &e.kinds(),
                256,
                &|_| Scan::Keep,
            )?;
            let Some(index) = page.iter().position(|(_, r)| e.wants(r)) else {
                // Nothing for this endpoint in the page: move past it.
                if let Some((last, _)) = page.last() {
                    state.cursor = *last;
                    self.save_delivery(e, Progress::Cursor(&state), None)?;
                }
                if more {
                    continue;
                }
                return Ok(sent);
            };
            let (seq, record) = page.into_iter().nth(index).expect("found above");
            let outcome = send(e, &AuditEntry::of(seq, record), sender, config);
            sent += 1;
            let (code, error) = split(outcome);
            let attempts = state.attempts + 1;
            let status = if error.is_none() {
                state.cursor = seq;
                state.attempts = 0;
                state.next_attempt_ms = 0;
                "delivered"
            } else if attempts >= config.max_attempts {
                tracing::warn!(
                    webhook = e.id,
                    event = seq,
                    attempts,
                    "webhook delivery given up"
                );
                state.cursor = seq;
                state.attempts = 0;
                state.next_attempt_ms = 0;
                "failed"
            } else {
                state.attempts = attempts;
                state.next_attempt_ms = self
                    .clock
                    .now_ms()
                    .saturating_add(backoff_ms(config, attempts));
                "retrying"
            };
            self.save_delivery(
                e,
                Progress::Cursor(&state),
                Some((seq, status, attempts, code, error, false)),
            )?;
            if status == "retrying" {
                return Ok(sent);
            }
        }
    }

    /// Sends the redeliveries of `e` whose time has come: each one more delivery, retried
    /// with backoff on failure, then done. Returns how many requests it sent.
    fn send_redeliveries(
        &self,
        e: &Endpoint,
        redeliveries: Vec<Redelivery>,
        sender: &dyn Sender,
        config: &DeliveryConfig,
    ) -> Result<usize, Error> {
        let mut sent = 0;
        for mut redelivery in redeliveries {
            if self.clock.now_ms() < redelivery.next_attempt_ms {
                continue;
            }
            let event_id = redelivery.event_id;
            let entry = self
                .meta
                .read()?
                .audit_page(event_id.checked_sub(1), false, &[], 1, &|_| Scan::Keep)?
                .0
                .into_iter()
                .next()
                .filter(|(seq, _)| *seq == event_id);
            let Some((seq, record)) = entry else {
                // The event is gone from the log (its retention passed): nothing to send.
                self.save_delivery(e, Progress::Redelivery(event_id, None), None)?;
                continue;
            };
            let outcome = send(e, &AuditEntry::of(seq, record), sender, config);
            sent += 1;
            let (code, error) = split(outcome);
            redelivery.attempts += 1;
            let attempts = redelivery.attempts;
            let (status, next) = if error.is_none() {
                ("delivered", None)
            } else if attempts >= config.max_attempts {
                tracing::warn!(
                    webhook = e.id,
                    event = seq,
                    attempts,
                    "webhook redelivery given up"
                );
                ("failed", None)
            } else {
                redelivery.next_attempt_ms = self
                    .clock
                    .now_ms()
                    .saturating_add(backoff_ms(config, attempts));
                ("retrying", Some(&redelivery))
            };
            self.save_delivery(
                e,
                Progress::Redelivery(event_id, next),
                Some((event_id, status, attempts, code, error, true)),
            )?;
        }
        Ok(sent)
    }

    /// Writes an endpoint's state and/or one line of its delivery log, in one commit; the
    /// endpoint may have been deleted meanwhile (then nothing is written).
    #[allow(clippy::type_complexity)]
    fn save_delivery(
        &self,
        e: &Endpoint,
        progress: Progress<'_>,
        line: Option<(u64, &str, u32, Option<u16>, Option<String>, bool)>,
    ) -> Result<(), Error> {
        let now = self.clock.now_ms();
        self.meta.write(|w| {
            if !ENDPOINTS.exists(w, &e.id)? {
                return Ok(());
            }
            // Only this delivery's part of the state: redeliveries queued while it ran stay.
            let mut next = stored_state(w, &e.id)?;
            match progress {
                Progress::Cursor(state) => {
                    next.cursor = state.cursor;
                    next.attempts = state.attempts;
                    next.next_attempt_ms = state.next_attempt_ms;
                }
                Progress::Redelivery(event_id, redelivery) => {
                    next.redeliveries.retain(|r| r.event_id != event_id);
                    if let Some(r) = redelivery {
                        next.redeliveries.push(r.clone());
                    }
                }
            }
            STATES.put(w, &e.id, &next)?;
            if let Some((event_id, status, attempts, code, error, redelivery)) = line {
                let mut log = LOGS.get(w, &e.id)?.unwrap_or_default();
                let event = w
                    .audit_page(event_id.checked_sub(1), false, &[], 1, &|_| Scan::Keep)?
                    .0
                    .into_iter()
                    .next()
                    .and_then(|(_, r)| Kind::parse(&r.kind).ok())
                    .map_or("Unknown", Kind::event_name);
                let delivery = Delivery {
                    event_id,
                    event: event.to_owned(),
                    time: audit::rfc3339(now),
                    status: status.to_owned(),
                    attempts,
                    response_code: code,
                    error,
                    redelivery,
                };
                // A retry replaces the line of its own earlier attempt.
                log.retain(|d| {
                    !(d.event_id == event_id
                        && d.redelivery == redelivery
                        && d.status == "retrying")
                });
                log.insert(0, delivery);
                log.truncate(LOG_ENTRIES);
                LOGS.put(w, &e.id, &log)?;
            }
            Ok(())
        })
    }
}

/// The payload of `entry` for `endpoint`, and its content type.
fn payload(e: &Endpoint, entry: &AuditEntry, host: &str) -> (Vec<u8>, &'static str) {
    let event = Kind::parse(&entry.kind).map_or("Unknown", Kind::event_name);
    let pinned = match (&entry.repository, &entry.digest) {
        (Some(repo), Some(digest)) if entry.kind != Kind::Deleted.as_str() => {
            Some(format!("{host}/{repo}@{digest}"))
        }
        _ => None,
    };
    let data = serde_json::json!({
        "id": entry.id.to_string(),
        "event": event,
        "time": entry.time,
        "actor": entry.actor,
        "feed": entry.feed,
        "repository": entry.repository,
        "tag": entry.tag,
        "digest": entry.digest,
        "previous_digest": entry.previous,
        "source": entry.source,
        "pinned": pinned,
        "change": entry.change,
    });
    match e.format {
        Format::Semdock => (data.to_string().into_bytes(), "application/json"),
        Format::Cloudevents => {
            let subject = match (&entry.repository, &entry.tag) {
                (Some(r), Some(t)) => Some(format!("{r}:{t}")),
                (Some(r), None) => Some(r.clone()),
                _ => None,
            };
            let event = serde_json::json!({
                "specversion": "1.0",
                "id": entry.id.to_string(),
                "source": format!("//{host}/{}", entry.feed),
                "type": format!("dev.semdock.{event}"),
                "subject": subject,
                "time": entry.time,
                "datacontenttype": "application/json",
                "data": data,
            });
            (
                event.to_string().into_bytes(),
                "application/cloudevents+json",
            )
        }
    }
}

/// Sends one event to one endpoint, signed: the receiver's 2xx status, or why not.
fn send(
    e: &Endpoint,
    entry: &AuditEntry,
    sender: &dyn Sender,
    config: &DeliveryConfig,
) -> Result<u16, String> {
    let (body, content_type) = payload(e, entry, &config.host);
    let event = Kind::parse(&entry.kind).map_or("Unknown", Kind::event_name);
    let headers = [
        ("Content-Type", content_type.to_owned()),
        (
            "User-Agent",
            format!("semdock/{}", env!("CARGO_PKG_VERSION")),
        ),
        ("X-Semdock-Event", event.to_owned()),
        ("X-Semdock-Delivery", entry.id.to_string()),
        ("X-Semdock-Signature", signature(e.secret.expose(), &body)),
    ];
    match sender.post(&e.url, &headers, &body) {
        Ok(code) if (200..300).contains(&code) => Ok(code),
        Ok(code) => Err(format!("{code}")),
        Err(why) => Err(why),
    }
}

/// A receiver's status and the error, if any, of one attempt.
fn split(outcome: Result<u16, String>) -> (Option<u16>, Option<String>) {
    match outcome {
        Ok(code) => (Some(code), None),
        Err(e) => match e.parse::<u16>() {
            Ok(code) => (Some(code), Some(format!("the receiver answered {code}"))),
            Err(_) => (None, Some(e)),
        },
    }
}

/// The wait before attempt `attempts + 1`: the first backoff, doubled per failed attempt,
/// up to the longest.
fn backoff_ms(config: &DeliveryConfig, attempts: u32) -> u64 {
    let wait = config
        .first_backoff
        .saturating_mul(1 << attempts.saturating_sub(1).min(20))
        .min(config.max_backoff);
    u64::try_from(wait.as_millis()).unwrap_or(u64::MAX)
}

/// What a delivery moved on: the endpoint's cursor, or one redelivery (`None`: done).
#[derive(Clone, Copy)]
enum Progress<'a> {
    Cursor(&'a State),
    Redelivery(u64, Option<&'a Redelivery>),
}
