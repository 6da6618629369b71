//! The master's client to one auxiliary: a small pool of persistent, authenticated TCP
//! connections, each multiplexed (request ids, answers matched out of order) and pipelined
//! (one flush for everything queued). Connections are kept up by background tasks on the
//! runtime handle given at creation, so callers on any runtime never block on a connect and a
//! dead auxiliary fails fast instead of making every request wait. How each connection is made
//! and kept: `connection`.

use crate::connection::keep_connected;
use crate::slots::{self, Slots};
use crate::WireError;
use bytes::BytesMut;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tiercache_protocol::{encode_frame_into, Request, Response};
use tokio::runtime::Handle;
use tokio::sync::{watch, Notify};

pub(crate) struct Conn {
    /// Requests encoded and waiting for the writer, which takes them all at once: everything
    /// the calling thread sent in one turn of its loop leaves in one write.
    pub(crate) out: Mutex<BytesMut>,
    /// Wakes the writer when `out` stops being empty.
    pub(crate) wake_writer: Notify,
    /// Signalled by the writer each time it takes `out`: callers held back by a full buffer
    /// go on.
    pub(crate) drained: Notify,
    /// The calls waiting for answers.
    pub(crate) slots: Slots,
    /// Wakes the connection's timer when a call starts on an idle connection (`idle`: the
    /// timer sleeps until the next ping, not the next deadline check).
    pub(crate) busy: Notify,
    pub(crate) idle: AtomicBool,
    /// When the connection came up; `heard_ms` counts from it.
    pub(crate) base: tokio::time::Instant,
    /// Milliseconds after `base` at which the last frame arrived (+1, so 0 means never).
    pub(crate) heard_ms: AtomicU64,
}

impl Conn {
    pub(crate) fn now_ms(&self) -> u64 {
        self.base.elapsed().as_millis() as u64 + 1
    }

    /// Appends one request to the output, unless the buffer is full (see [`OUT_LIMIT`]).
    pub(crate) fn enqueue(&self, id: u64, req: &Request) -> Result<bool, WireError> {
        let mut out = self.out.lock();
        if out.len() >= OUT_LIMIT {
            return Ok(false);
        }
        let was_empty = out.is_empty();
        encode_frame_into(id, req, &mut out)?;
        if was_empty {
            self.wake_writer.notify_one();
        }
        Ok(true)
    }
}

/// Bytes of requests waiting to be written past which a caller waits for the writer: a slow
/// auxiliary then holds back the client tasks that call it (they stop reading from their
/// clients) instead of growing this buffer.
pub(crate) const OUT_LIMIT: usize = 4 << 20;

/// How often a connection with calls in flight looks for those past their deadline.
pub(crate) const TICK: Duration = Duration::from_millis(10);

/// An idle connection is pinged this often...
pub(crate) const PING_EVERY: Duration = Duration::from_secs(1);
/// ...and replaced when nothing at all was heard on it for this long.
pub(crate) const DEAD_AFTER: Duration = Duration::from_secs(3);

pub(crate) struct Shared {
    pub(crate) id: String,
    pub(crate) addr: String,
    pub(crate) token: String,
    pub(crate) slots: Vec<Mutex<Option<Arc<Conn>>>>,
    pub(crate) live: watch::Sender<usize>,
    pub(crate) ever_connected: AtomicBool,
    pub(crate) next: AtomicUsize,
    /// Wakes connection keepers out of their back-off when a caller needs a connection.
    pub(crate) kick: tokio::sync::Notify,
    /// The auxiliary itself ended the last connection or refused the last attempt (see
    /// [`WireError::Down`]); false after a timeout or a silent connection.
    pub(crate) down: AtomicBool,
}

impl Shared {
    /// Why there is no connection to answer on.
    pub(crate) fn unreachable(&self) -> WireError {
        if self.down.load(Ordering::Relaxed) {
            WireError::Down(self.id.clone())
        } else {
            WireError::Unreachable(self.id.clone())
        }
    }
}

/// How long a call waits for a connection to come (back) up before failing: long enough for a
/// restarted auxiliary to be picked up again, short enough to fail over quickly.
pub(crate) const RECONNECT_WAIT: Duration = Duration::from_millis(300);

/// How long a call on a client that never connected waits for its first connection.
pub(crate) const FIRST_CONNECT_WAIT: Duration = Duration::from_secs(3);

/// Pooled connections to one auxiliary.
pub struct AuxClient {
    shared: Arc<Shared>,
    timeout: Duration,
    stop: watch::Sender<bool>,
}

impl Drop for AuxClient {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl AuxClient {
    /// Starts `connections` connection keepers for the auxiliary `id` at `addr`.
    pub fn new(rt: &Handle, id: &str, addr: &str, token: &str, connections: usize, timeout: Duration) -> AuxClient {
        let (live, _) = watch::channel(0usize);
        let shared = Arc::new(Shared {
            id: id.to_string(),
            addr: addr.to_string(),
            token: token.to_string(),
            slots: (0..connections.max(1)).map(|_| Mutex::new(None)).collect(),
            live,
            ever_connected: AtomicBool::new(false),
            next: AtomicUsize::new(0),
            kick: tokio::sync::Notify::new(),
            down: AtomicBool::new(false),
        });
        let (stop, stop_rx) = watch::channel(false);
        for slot in 0..shared.slots.len() {
            rt.spawn(keep_connected(shared.clone(), slot, stop_rx.clone()));
        }
        AuxClient { shared, timeout, stop }
    }

    fn pick(&self) -> Option<Arc<Conn>> {
        let n = self.shared.slots.len();
        let start = self.shared.next.fetch_add(1, Ordering::Relaxed);
        (0..n).find_map(|i| self.shared.slots[(start + i) % n].lock().clone())
    }

    /// Bytes of requests waiting for the writer on the connections open now.
    #[cfg(test)]
    pub(crate) fn queued_bytes(&self) -> usize {
        self.shared.slots.iter().filter_map(|s| s.lock().clone()).map(|c| c.out.lock().len()).sum()
    }

    /// Sends one request and waits for its answer (bounded by the request timeout).
    pub async fn call(&self, req: &Request) -> Result<Response, WireError> {
        self.call_with_timeout(req, self.timeout).await
    }

    /// Like [`AuxClient::call`] with an explicit timeout (snapshots and transfers take longer).
    pub async fn call_with_timeout(&self, req: &Request, timeout: Duration) -> Result<Response, WireError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let conn = match self.pick() {
            Some(c) => c,
            None => {
                // Just added (give the first connection the request's budget) or reconnecting
                // (a short wait, so a restarted auxiliary is used again at once while a dead one
                // fails fast and is routed around).
                self.shared.kick.notify_waiters();
                let wait = if self.shared.ever_connected.load(Ordering::Relaxed) {
                    tokio::time::Instant::now() + RECONNECT_WAIT.min(timeout)
                } else {
                    // A reachable auxiliary answers a connect in milliseconds; a long transfer
                    // timeout must not become a long wait for one that is gone.
                    tokio::time::Instant::now() + FIRST_CONNECT_WAIT.min(timeout)
                };
                let mut rx = self.shared.live.subscribe();
                let _ = tokio::time::timeout_at(wait, rx.wait_for(|n| *n > 0)).await;
                self.pick().ok_or_else(|| self.shared.unreachable())?
            }
        };
        // One clock read for both ends of the call.
        let now = tokio::time::Instant::now();
        let sent_ms = now.duration_since(conn.base).as_millis() as u64 + 1;
        let deadline_ms = sent_ms + deadline.saturating_duration_since(now).as_millis() as u64;
        let (id, first) = match conn.slots.take(sent_ms, deadline_ms) {
            Ok(taken) => taken,
            Err(slots::Ended::Full) => return Err(WireError::Busy(self.shared.id.clone())),
            Err(_) => return Err(self.shared.unreachable()),
        };
        let reply = conn.slots.wait(id);
        if first && conn.idle.load(Ordering::Relaxed) {
            conn.idle.store(false, Ordering::Relaxed);
            conn.busy.notify_one();
        }
        while !conn.enqueue(id, req)? {
            // Full: wait for the writer to take the buffer (registered before the second
            // look, so a drain in between is not missed).
            let drained = conn.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            if conn.enqueue(id, req)? {
                break;
            }
            if tokio::time::timeout_at(deadline, drained).await.is_err() {
                return Err(WireError::Timeout(self.shared.id.clone()));
            }
        }
        match reply.await {
            Ok(Response::Error(e)) => Err(WireError::Remote(self.shared.id.clone(), e)),
            Ok(resp) => Ok(resp),
            // The connection ended while this call waited; the keeper recorded why first.
            Err(slots::Ended::Closed | slots::Ended::Full) => Err(self.shared.unreachable()),
            Err(slots::Ended::TimedOut) => Err(WireError::Timeout(self.shared.id.clone())),
        }
    }
}
