//! The delivery rounds: a worker thread per endpoint with something due, bounded per node,
//! under the cluster-wide delivery lock.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use super::{DELIVERY_LOCK, DeliveryConfig, ENDPOINTS, Endpoint, Sender, Webhooks};
use crate::domain::Error;

/// Endpoints delivered to at once on a node, each on its own thread: a receiver that never
/// answers holds one of them for at most the timeout per attempt, never another's turn.
pub const WORKERS: usize = 32;

/// Runs deliveries: each endpoint on its own worker thread (at most `WORKERS` at once), so
/// one endpoint's slow or dead receiver delays only its own events. Across nodes one node
/// delivers at a time: it holds the delivery lock (`Metadata::try_exclusive`) from the round
/// that starts a worker until a round finds none running.
pub struct Deliverer {
    webhooks: Webhooks,
    sender: Arc<dyn Sender>,
    config: DeliveryConfig,
    shared: Mutex<InFlight>,
    /// Rounds run one at a time.
    round: Mutex<()>,
}

#[derive(Default)]
struct InFlight {
    /// Endpoints with a worker running.
    busy: HashSet<String>,
    /// The delivery lock, while any worker runs.
    lock: Option<Box<dyn Send>>,
    /// Where the next round starts looking, so that no endpoint always comes last.
    start: usize,
}

impl Deliverer {
    #[must_use]
    pub fn new(webhooks: Webhooks, sender: Arc<dyn Sender>, config: DeliveryConfig) -> Arc<Self> {
        Arc::new(Self {
            webhooks,
            sender,
            config,
            shared: Mutex::new(InFlight::default()),
            round: Mutex::new(()),
        })
    }

    fn in_flight(&self) -> std::sync::MutexGuard<'_, InFlight> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One round: starts a worker for every active endpoint that has something due and no
    /// worker yet (blocking; run it off the request executor). Returns how many it started;
    /// 0 on a node that does not hold the delivery lock.
    pub fn round(self: &Arc<Self>) -> Result<usize, Error> {
        let _round = self.round.lock().unwrap_or_else(PoisonError::into_inner);
        let busy = {
            let mut in_flight = self.in_flight();
            if in_flight.lock.is_none() {
                match self.webhooks.meta.try_exclusive(DELIVERY_LOCK)? {
                    Some(lock) => in_flight.lock = Some(lock),
                    None => return Ok(0),
                }
            }
            in_flight.busy.clone()
        };
        let result = self.due(&busy);
        let mut in_flight = self.in_flight();
        let mut started = 0;
        if let Ok(due) = &result {
            let n = due.len().max(1);
            let start = in_flight.start % n;
            in_flight.start = in_flight.start.wrapping_add(1);
            for e in due.iter().cycle().skip(start).take(due.len()) {
                if in_flight.busy.len() >= WORKERS {
                    break;
                }
                if !in_flight.busy.insert(e.id.clone()) {
                    continue;
                }
                let (me, endpoint) = (self.clone(), e.clone());
                let spawned = std::thread::Builder::new()
                    .name(format!("webhook-{}", e.id))
                    .spawn(move || me.work(&endpoint));
                if let Err(err) = spawned {
                    in_flight.busy.remove(&e.id);
                    tracing::warn!(webhook = e.id, error = %err, "no thread for a webhook delivery");
                    continue;
                }
                started += 1;
            }
        }
        if in_flight.busy.is_empty() {
            in_flight.lock = None;
        }
        result.map(|_| started)
    }

    /// The active endpoints, not in `busy`, that have something to send now.
    fn due(&self, busy: &HashSet<String>) -> Result<Vec<Endpoint>, Error> {
        let endpoints: Vec<Endpoint> = ENDPOINTS
            .all(&*self.webhooks.meta.read()?)?
            .into_iter()
            .map(|(_, e)| e)
            .filter(|e| e.active && !busy.contains(&e.id))
            .collect();
        let now = self.webhooks.clock.now_ms();
        let mut due = Vec::new();
        for e in endpoints {
            if self.webhooks.webhook_due(&e, now)? {
                due.push(e);
            }
        }
        Ok(due)
    }

    /// A worker: delivers what is due to `e`, then lets the next round start another.
    fn work(&self, e: &Endpoint) {
        struct Done<'a>(&'a Deliverer, &'a str);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.0.in_flight().busy.remove(self.1);
            }
        }
        let _done = Done(self, &e.id);
        if let Err(err) = self.webhooks.deliver_to(e, &*self.sender, &self.config) {
            tracing::warn!(webhook = e.id, error = %err, "webhook deliveries failed; trying again");
        }
    }
}
