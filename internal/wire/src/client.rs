//! The master's client to one auxiliary: a small pool of persistent, authenticated TCP
//! connections, each multiplexed (request ids, answers matched out of order) and pipelined
//! (one flush for everything queued). Connections are kept up by background tasks on the
//! runtime handle given at creation, so callers on any runtime never block on a connect and a
//! dead auxiliary fails fast instead of making every request wait.

use crate::slots::{self, Slots};
use crate::{codec, WireError};
use bytes::{Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tiercache_protocol::{decode, encode, encode_frame_into, RemoteError, Request, Response};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::runtime::Handle;
use tokio::sync::{watch, Notify};
use tokio_util::codec::{Framed, FramedRead};

struct Conn {
    /// Requests encoded and waiting for the writer, which takes them all at once: everything
    /// the calling thread sent in one turn of its loop leaves in one write.
    out: Mutex<BytesMut>,
    /// Wakes the writer when `out` stops being empty.
    wake_writer: Notify,
    /// Signalled by the writer each time it takes `out`: callers held back by a full buffer
    /// go on.
    drained: Notify,
    /// The calls waiting for answers.
    slots: Slots,
    /// Wakes the connection's timer when a call starts on an idle connection (`idle`: the
    /// timer sleeps until the next ping, not the next deadline check).
    busy: Notify,
    idle: AtomicBool,
    /// When the connection came up; `heard_ms` counts from it.
    base: tokio::time::Instant,
    /// Milliseconds after `base` at which the last frame arrived (+1, so 0 means never).
    heard_ms: AtomicU64,
}

impl Conn {
    fn now_ms(&self) -> u64 {
        self.base.elapsed().as_millis() as u64 + 1
    }

    /// Appends one request to the output, unless the buffer is full (see [`OUT_LIMIT`]).
    fn enqueue(&self, id: u64, req: &Request) -> Result<bool, WireError> {
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
const OUT_LIMIT: usize = 4 << 20;

/// How often a connection with calls in flight looks for those past their deadline.
const TICK: Duration = Duration::from_millis(10);

/// An idle connection is pinged this often...
const PING_EVERY: Duration = Duration::from_secs(1);
/// ...and replaced when nothing at all was heard on it for this long.
const DEAD_AFTER: Duration = Duration::from_secs(3);

struct Shared {
    id: String,
    addr: String,
    token: String,
    slots: Vec<Mutex<Option<Arc<Conn>>>>,
    live: watch::Sender<usize>,
    ever_connected: AtomicBool,
    next: AtomicUsize,
    /// Wakes connection keepers out of their back-off when a caller needs a connection.
    kick: tokio::sync::Notify,
    /// The auxiliary itself ended the last connection or refused the last attempt (see
    /// [`WireError::Down`]); false after a timeout or a silent connection.
    down: AtomicBool,
}

impl Shared {
    /// Why there is no connection to answer on.
    fn unreachable(&self) -> WireError {
        if self.down.load(Ordering::Relaxed) {
            WireError::Down(self.id.clone())
        } else {
            WireError::Unreachable(self.id.clone())
        }
    }
}

/// How long a call waits for a connection to come (back) up before failing: long enough for a
/// restarted auxiliary to be picked up again, short enough to fail over quickly.
const RECONNECT_WAIT: Duration = Duration::from_millis(300);

/// How long a call on a client that never connected waits for its first connection.
const FIRST_CONNECT_WAIT: Duration = Duration::from_secs(3);

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

fn set_live(shared: &Shared) {
    let n = shared.slots.iter().filter(|s| s.lock().is_some()).count();
    shared.live.send_replace(n);
}

async fn connect(shared: &Shared) -> Result<Framed<TcpStream, tokio_util::codec::LengthDelimitedCodec>, WireError> {
    let unreachable = || WireError::Unreachable(shared.id.clone());
    let stream = match tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(&shared.addr)).await {
        Err(_) => return Err(unreachable()),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            return Err(WireError::Down(shared.id.clone()))
        }
        Ok(r) => r?,
    };
    stream.set_nodelay(true)?;
    // The kernel's own probe as a second line behind the pings (and for idle pools).
    let keepalive =
        socket2::TcpKeepalive::new().with_time(Duration::from_secs(5)).with_interval(Duration::from_secs(1));
    #[cfg(any(target_os = "linux", target_os = "macos", target_os = "freebsd"))]
    let keepalive = keepalive.with_retries(3);
    socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive)?;
    let mut framed = Framed::new(stream, codec());
    let hello = Request::Hello { token: shared.token.clone(), protocol: tiercache_protocol::PROTOCOL_VERSION };
    framed.send(Bytes::from(encode(0, &hello)?)).await?;
    let answer = tokio::time::timeout(Duration::from_secs(2), framed.next()).await.map_err(|_| unreachable())?;
    hello_answer(&shared.id, answer).map(|()| framed)
}

/// Reads the answer to `Hello`. Only an explicit refusal is a token problem: a peer that closes
/// the connection (one stopping or dying) is unreachable, and must not send an operator after
/// the token.
fn hello_answer(id: &str, answer: Option<std::io::Result<bytes::BytesMut>>) -> Result<(), WireError> {
    match answer {
        Some(Ok(frame)) => match decode::<Response>(&frame) {
            Ok((_, Response::Welcome)) => Ok(()),
            Ok((_, Response::Error(RemoteError::Unauthorized))) => Err(WireError::Unauthorized(id.to_string())),
            Ok((_, Response::Error(e @ RemoteError::ProtocolMismatch { .. }))) => {
                Err(WireError::Remote(id.to_string(), e))
            }
            _ => Err(WireError::Unreachable(id.to_string())),
        },
        // Closed before the welcome: a node stopping.
        None | Some(Err(_)) => Err(WireError::Down(id.to_string())),
    }
}

/// The peer ended the connection (a reset or a closed pipe), as opposed to a local error such
/// as a firewall's `EPERM` or a timeout.
fn closed_by_peer(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset, UnexpectedEof};
    matches!(e.kind(), BrokenPipe | ConnectionReset | ConnectionAborted | UnexpectedEof)
}

async fn keep_connected(shared: Arc<Shared>, slot: usize, mut stop: watch::Receiver<bool>) {
    let mut backoff = Duration::from_millis(50);
    loop {
        if *stop.borrow() {
            return;
        }
        let framed = tokio::select! {
            r = connect(&shared) => r,
            _ = crate::stopped(&mut stop) => return,
        };
        let framed = match framed {
            Ok(f) => f,
            Err(e) => {
                shared.down.store(e.is_down(), Ordering::Relaxed);
                tracing::debug!(aux = shared.id, addr = shared.addr, error = %e, "connect failed");
                if matches!(e, WireError::Unauthorized(_)) {
                    tracing::error!(
                        aux = shared.id,
                        "auxiliary refused our INTERNAL_TOKEN; check that every node has the same"
                    );
                }
                if let WireError::Remote(_, e @ RemoteError::ProtocolMismatch { .. }) = &e {
                    tracing::error!(aux = shared.id, "{e}");
                }
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shared.kick.notified() => {}
                    _ = crate::stopped(&mut stop) => return,
                }
                backoff = (backoff * 2).min(Duration::from_millis(500));
                continue;
            }
        };
        backoff = Duration::from_millis(50);
        shared.down.store(false, Ordering::Relaxed);
        // The server sends nothing before it is asked, so nothing is left in the read buffer.
        let (read_half, write_half) = framed.into_inner().into_split();
        let conn = Arc::new(Conn {
            out: Mutex::new(BytesMut::with_capacity(16 * 1024)),
            wake_writer: Notify::new(),
            drained: Notify::new(),
            slots: Slots::default(),
            busy: Notify::new(),
            idle: AtomicBool::new(false),
            base: tokio::time::Instant::now(),
            heard_ms: AtomicU64::new(1),
        });
        *shared.slots[slot].lock() = Some(conn.clone());
        shared.ever_connected.store(true, Ordering::Relaxed);
        set_live(&shared);
        // Reader, writer and timer are tasks of their own: each is polled only when what it
        // waits for happens, not whenever any of them is woken.
        let mut parts = tokio::task::JoinSet::new();
        parts.spawn(write(conn.clone(), write_half));
        parts.spawn(read(conn.clone(), shared.clone(), read_half));
        parts.spawn(watch(conn.clone()));
        // The peer closing or resetting the connection means it is not serving (down); a
        // silent one may be cut off (see `WireError::Down`).
        let stopped = tokio::select! {
            ended = parts.join_next() => {
                match ended {
                    Some(Ok(Ended::Reader(r))) => {
                        if let Err(e) = &r { tracing::debug!(error = %e, "reader ended"); }
                        shared.down.store(r.as_ref().map_or_else(closed_by_peer, |()| true), Ordering::Relaxed);
                    }
                    Some(Ok(Ended::Writer(r))) => {
                        if let Err(e) = &r { tracing::debug!(error = %e, "writer ended"); }
                        shared.down.store(r.as_ref().is_err_and(closed_by_peer), Ordering::Relaxed);
                    }
                    Some(Ok(Ended::Silent(quiet))) => {
                        tracing::warn!(aux = shared.id, ?quiet, "auxiliary silent on a pooled connection; replacing it")
                    }
                    Some(Ok(Ended::TimedOut)) => {
                        tracing::info!(aux = shared.id, "a request timed out; replacing its connection")
                    }
                    Some(Err(e)) => tracing::warn!(aux = shared.id, error = %e, "connection task failed"),
                    None => {}
                }
                false
            }
            _ = crate::stopped(&mut stop) => true,
        };
        parts.abort_all();
        *shared.slots[slot].lock() = None;
        // Every waiting call fails at once instead of at its timeout.
        conn.slots.close_all();
        set_live(&shared);
        if stopped {
            return;
        }
        tracing::info!(aux = shared.id, addr = shared.addr, "connection to auxiliary lost; reconnecting");
    }
}

/// Why a connection's task ended.
enum Ended {
    Reader(std::io::Result<()>),
    Writer(std::io::Result<()>),
    /// Nothing heard for this long.
    Silent(Duration),
    /// A call timed out on a connection silent since it was sent.
    TimedOut,
}

/// Writes whatever the callers queued, all of it at once, each time the writer is woken.
async fn write(conn: Arc<Conn>, mut half: tokio::net::tcp::OwnedWriteHalf) -> Ended {
    let mut taken = BytesMut::with_capacity(16 * 1024);
    loop {
        conn.wake_writer.notified().await;
        loop {
            std::mem::swap(&mut *conn.out.lock(), &mut taken);
            if taken.is_empty() {
                break;
            }
            conn.drained.notify_waiters();
            if let Err(e) = half.write_all(&taken).await {
                return Ended::Writer(Err(e));
            }
            taken.clear();
        }
    }
}

/// Hands each answer to the call waiting for it.
async fn read(conn: Arc<Conn>, shared: Arc<Shared>, half: tokio::net::tcp::OwnedReadHalf) -> Ended {
    let mut frames = FramedRead::new(half, codec());
    while let Some(frame) = frames.next().await {
        let frame = match frame {
            Ok(f) => f,
            Err(e) => return Ended::Reader(Err(e)),
        };
        conn.heard_ms.store(conn.now_ms(), Ordering::Relaxed);
        match decode::<Response>(&frame) {
            // Answers to id 0 (pings) match no call.
            Ok((id, resp)) => drop(id != 0 && conn.slots.answer(id, resp)),
            Err(e) => tracing::warn!(aux = shared.id, error = %e, "undecodable answer"),
        }
    }
    Ended::Reader(Ok(()))
}

/// The connection's one timer: the deadlines of the calls in flight, and pings when idle.
async fn watch(conn: Arc<Conn>) -> Ended {
    let mut last_ping_check = conn.now_ms();
    loop {
        // Deadlines are checked every tick while calls were in flight at the last one; an
        // idle connection sleeps until its next ping unless a call wakes it.
        if conn.slots.waiting() > 0 {
            tokio::time::sleep(TICK).await;
        } else {
            conn.idle.store(true, Ordering::Relaxed);
            // A call that started before the flag was up is seen here.
            if conn.slots.waiting() == 0 {
                tokio::select! {
                    _ = tokio::time::sleep(PING_EVERY) => {}
                    _ = conn.busy.notified() => continue,
                }
            }
            conn.idle.store(false, Ordering::Relaxed);
        }
        // Answers that arrived with this wake-up (after a pause of the whole process, say)
        // are read before any call or the connection is judged.
        tokio::task::yield_now().await;
        let now = conn.now_ms();
        if conn.slots.expire(now, conn.heard_ms.load(Ordering::Relaxed)) {
            return Ended::TimedOut;
        }
        if now.saturating_sub(last_ping_check) < PING_EVERY.as_millis() as u64 {
            continue;
        }
        last_ping_check = now;
        let quiet = Duration::from_millis(now.saturating_sub(conn.heard_ms.load(Ordering::Relaxed).max(1)));
        if quiet >= DEAD_AFTER {
            return Ended::Silent(quiet);
        }
        // Any frame heard proves the peer alive.
        if quiet >= PING_EVERY && conn.enqueue(0, &Request::Ping).is_err() {
            return Ended::Silent(quiet);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use tokio::net::TcpListener;

    /// An auxiliary stand-in: it welcomes every connection, but on the first one it then goes
    /// silent without closing (a peer cut off without FIN or RST); later ones answer pings and
    /// reads. Returns its address and the number of connections it accepted.
    async fn half_open_peer() -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let n = count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut framed = Framed::new(stream, codec());
                    while let Some(Ok(frame)) = framed.next().await {
                        let (id, req): (u64, Request) = decode(&frame).unwrap();
                        let resp = match req {
                            Request::Hello { .. } | Request::HelloV1 { .. } => Response::Welcome,
                            _ if n == 0 => continue,
                            Request::Ping => Response::Pong,
                            _ => Response::Value(None),
                        };
                        framed.send(Bytes::from(encode(id, &resp).unwrap())).await.unwrap();
                    }
                    // Keep a silent connection open until the test ends.
                    std::future::pending::<()>().await;
                });
            }
        });
        (addr, accepted)
    }

    fn get() -> Request {
        Request::Get { key: Bytes::from_static(b"k") }
    }

    #[tokio::test]
    async fn a_connection_on_which_a_request_timed_out_is_replaced() {
        let (addr, accepted) = half_open_peer().await;
        let client = AuxClient::new(&Handle::current(), "aux", &addr, "token", 1, Duration::from_millis(200));
        assert!(matches!(client.call(&get()).await, Err(WireError::Timeout(_))));
        let mut answered = false;
        for _ in 0..10 {
            if client.call(&get()).await.is_ok() {
                answered = true;
                break;
            }
        }
        assert!(answered, "still calling into the silent connection");
        assert!(accepted.load(Ordering::SeqCst) >= 2);
    }

    #[test]
    fn only_an_explicit_refusal_blames_the_token() {
        let frame = |r: &Response| Some(Ok(bytes::BytesMut::from(&encode(0, r).unwrap()[..])));
        assert!(hello_answer("a", frame(&Response::Welcome)).is_ok());
        let refused = hello_answer("a", frame(&Response::Error(RemoteError::Unauthorized)));
        assert!(matches!(refused, Err(WireError::Unauthorized(_))));
        // Closed by a dying peer or a reset: down; something that is not a tiercache auxiliary:
        // unreachable.
        for answer in [None, Some(Err(std::io::ErrorKind::ConnectionReset.into()))] {
            assert!(matches!(hello_answer("a", answer), Err(WireError::Down(_))));
        }
        assert!(matches!(hello_answer("a", frame(&Response::Pong)), Err(WireError::Unreachable(_))));
    }

    #[tokio::test]
    async fn a_closed_port_is_down_and_a_silent_peer_only_unreachable() {
        // Nobody listens: refused.
        let port = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
        let closed = AuxClient::new(
            &Handle::current(),
            "gone",
            &format!("127.0.0.1:{port}"),
            "t",
            1,
            Duration::from_millis(500),
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(matches!(closed.call(&Request::Ping).await, Err(WireError::Down(_))));
        // Accepts and answers nothing (frozen, or cut off behind a firewall that drops).
        let (addr, _) = half_open_peer().await;
        let silent = AuxClient::new(&Handle::current(), "silent", &addr, "t", 1, Duration::from_millis(300));
        let e = silent.call(&Request::Get { key: Bytes::from_static(b"k") }).await.unwrap_err();
        assert!(!e.is_down(), "{e:?}");
    }

    #[tokio::test]
    async fn a_silent_idle_connection_is_replaced_within_seconds() {
        let (addr, accepted) = half_open_peer().await;
        let _client = AuxClient::new(&Handle::current(), "aux", &addr, "token", 1, Duration::from_secs(1));
        let deadline = tokio::time::Instant::now() + DEAD_AFTER + PING_EVERY * 3;
        while accepted.load(Ordering::SeqCst) < 2 {
            assert!(tokio::time::Instant::now() < deadline, "no new connection after {:?} of silence", DEAD_AFTER);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
