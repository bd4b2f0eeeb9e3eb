//! Writes announced across nodes: every write transaction sends `NOTIFY semdock_writes`
//! (delivered by PostgreSQL at commit, to every listening connection), and each node keeps
//! one connection that listens. The metadata generation is the count of announcements this
//! node has received, so the manifest and token caches hit until any node writes — without
//! a database round trip on a hit.
//!
//! While the listening connection is down a node cannot know what others wrote: the
//! generation is then a new value at every call (no cache hits, every read from the
//! database), and it moves on once the connection is back (what was missed meanwhile is
//! unknown). A writer waits, before its write returns, until its own announcement has come
//! back to its own listener: by then PostgreSQL has handed it to every listening node, so
//! a client that got the answer and reads through another node meets a node whose cache
//! has been told — up to the time the announcement takes to cross the network to that
//! node, which is less than the client's own round trip through the load balancer.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use futures_util::StreamExt as _;
use tokio_postgres::Socket;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};

/// The channel every node listens on.
pub const CHANNEL: &str = "semdock_writes";

/// How long a writer waits for its own announcement before giving up on it (the listener
/// is then treated as lagging: see `Announcements::generation`).
const OWN_ECHO: Duration = Duration::from_secs(2);

/// Generations while not listening carry this bit, so they never equal a listening one.
const DEAF: u64 = 1 << 63;

/// What this node has heard.
pub struct Announcements {
    /// This node, in every payload it sends.
    node: String,
    /// This node's writes announced so far.
    sent: AtomicU64,
    listening: AtomicBool,
    /// A writer's own announcement did not come back in time: the listener is renewed.
    renew: AtomicBool,
    /// Announcements received while listening (and one more at every reconnection).
    heard: AtomicU64,
    /// Calls while not listening: each gets a new generation.
    deaf_calls: AtomicU64,
    /// The last of this node's own writes heard back, and its waiters.
    own: Mutex<u64>,
    echoed: Condvar,
}

impl Announcements {
    fn new() -> Self {
        Self {
            node: uuid::Uuid::new_v4().simple().to_string(),
            sent: AtomicU64::new(0),
            listening: AtomicBool::new(false),
            renew: AtomicBool::new(false),
            heard: AtomicU64::new(0),
            deaf_calls: AtomicU64::new(0),
            own: Mutex::new(0),
            echoed: Condvar::new(),
        }
    }

    /// The metadata generation (see the module's comment).
    pub fn generation(&self) -> u64 {
        if self.listening.load(Ordering::Acquire) {
            self.heard.load(Ordering::Acquire)
        } else {
            DEAF | self.deaf_calls.fetch_add(1, Ordering::AcqRel)
        }
    }

    /// The payload of the next write's announcement, and its number.
    pub fn next(&self) -> (String, u64) {
        let seq = self.sent.fetch_add(1, Ordering::AcqRel) + 1;
        (format!("{}:{seq}", self.node), seq)
    }

    /// Waits until this node's write `seq`, committed, has come back to the listener (at
    /// most `OWN_ECHO`; not at all while not listening).
    pub fn wait_for_echo(&self, seq: u64) {
        if !self.listening.load(Ordering::Acquire) {
            return;
        }
        let own = self
            .own
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (own, timeout) = self
            .echoed
            .wait_timeout_while(own, OWN_ECHO, |heard| *heard < seq)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if timeout.timed_out() {
            drop(own);
            tracing::warn!(
                seq,
                "a write's announcement did not come back within 2 s: caches stay off until the listening connection is renewed"
            );
            self.listening.store(false, Ordering::Release);
            self.renew.store(true, Ordering::Release);
        }
    }

    fn heard(&self, payload: &str) {
        self.heard.fetch_add(1, Ordering::AcqRel);
        if let Some(seq) = payload
            .strip_prefix(self.node.as_str())
            .and_then(|rest| rest.strip_prefix(':'))
            .and_then(|seq| seq.parse::<u64>().ok())
        {
            let mut own = self
                .own
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            *own = (*own).max(seq);
            self.echoed.notify_all();
        }
    }
}

/// Starts listening on `handle`'s runtime, reconnecting for as long as the returned
/// announcements are alive.
pub fn listen<T>(
    handle: &tokio::runtime::Handle,
    config: tokio_postgres::Config,
    tls: T,
) -> Arc<Announcements>
where
    T: MakeTlsConnect<Socket> + Clone + Send + Sync + 'static,
    T::Stream: Send + 'static,
    T::TlsConnect: Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    let state = Arc::new(Announcements::new());
    let weak = Arc::downgrade(&state);
    handle.spawn(async move {
        while let Some(state) = weak.upgrade() {
            if let Err(e) = listen_once(&config, &state, tls.clone()).await {
                tracing::debug!(error = %e, "the listening connection to PostgreSQL ended");
            }
            state.listening.store(false, Ordering::Release);
            drop(state);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    state
}

/// One listening connection, until it fails.
async fn listen_once<T>(
    config: &tokio_postgres::Config,
    state: &Announcements,
    tls: T,
) -> Result<(), tokio_postgres::Error>
where
    T: MakeTlsConnect<Socket>,
    T::Stream: Send + 'static,
{
    let (client, mut connection) = config.connect(tls).await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(tokio_postgres::AsyncMessage::Notification(n)) => {
                    if tx.send(n.payload().to_owned()).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    });
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    // Whatever was written while not listening is unknown: move on, then trust again.
    state.heard.fetch_add(1, Ordering::AcqRel);
    state.renew.store(false, Ordering::Release);
    state.listening.store(true, Ordering::Release);
    loop {
        tokio::select! {
            payload = rx.recv() => match payload {
                Some(payload) => state.heard(&payload),
                None => break,
            },
            () = tokio::time::sleep(Duration::from_millis(250)) => {
                if state.renew.load(Ordering::Acquire) {
                    break;
                }
            }
        }
    }
    driver.abort();
    Ok(())
}
