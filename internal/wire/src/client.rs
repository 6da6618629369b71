//! The master's client to one auxiliary: a small pool of persistent, authenticated TCP
//! connections, each multiplexed (request ids, answers matched out of order) and pipelined
//! (one flush for everything queued). Connections are kept up by background tasks on the
//! runtime handle given at creation, so callers on any runtime never block on a connect and a
//! dead auxiliary fails fast instead of making every request wait.

use crate::{codec, WireError};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tiercache_protocol::{decode, encode, RemoteError, Request, Response};
use tokio::net::TcpStream;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::codec::Framed;

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Response>>>>;

struct Conn {
    tx: mpsc::UnboundedSender<Bytes>,
    pending: Pending,
    next_id: AtomicU64,
    /// Signalled by a call that timed out on a silent connection: it is replaced, not reused
    /// (a peer that vanished without FIN or RST leaves it half-open for good).
    broken: tokio::sync::Notify,
    /// When the connection came up; `heard_ms` counts from it.
    base: tokio::time::Instant,
    /// Milliseconds after `base` at which the last frame arrived (+1, so 0 means never).
    heard_ms: AtomicU64,
}

impl Conn {
    fn now_ms(&self) -> u64 {
        self.base.elapsed().as_millis() as u64 + 1
    }

    /// Nothing at all arrived on this connection since `since` (from [`Conn::now_ms`]).
    fn silent_since(&self, since: u64) -> bool {
        self.heard_ms.load(Ordering::Relaxed) <= since
    }
}

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
        let sent_ms = conn.now_ms();
        let id = conn.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = Bytes::from(encode(id, req)?);
        let (tx, rx) = oneshot::channel();
        conn.pending.lock().insert(id, tx);
        if conn.tx.send(frame).is_err() {
            conn.pending.lock().remove(&id);
            return Err(self.shared.unreachable());
        }
        match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(Response::Error(e))) => Err(WireError::Remote(self.shared.id.clone(), e)),
            Ok(Ok(resp)) => Ok(resp),
            // The connection ended while this call waited; the keeper recorded why first.
            Ok(Err(_)) => Err(self.shared.unreachable()),
            Err(_) => {
                conn.pending.lock().remove(&id);
                // A slow answer on a connection that carries others is no reason to drop them
                // all; a connection on which nothing came back since this request was sent is.
                if conn.silent_since(sent_ms) {
                    conn.broken.notify_one();
                }
                Err(WireError::Timeout(self.shared.id.clone()))
            }
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
    let Ok(ping) = encode(0, &Request::Ping).map(Bytes::from) else { return };
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
        let (mut sink, mut stream) = framed.split();
        let (tx, mut rx) = mpsc::unbounded_channel::<Bytes>();
        let pending: Pending = Arc::new(Mutex::new(HashMap::new()));
        let conn = Arc::new(Conn {
            tx,
            pending: pending.clone(),
            next_id: AtomicU64::new(1),
            broken: tokio::sync::Notify::new(),
            base: tokio::time::Instant::now(),
            heard_ms: AtomicU64::new(1),
        });
        *shared.slots[slot].lock() = Some(conn.clone());
        shared.ever_connected.store(true, Ordering::Relaxed);
        set_live(&shared);
        let writer = async {
            while let Some(first) = rx.recv().await {
                sink.feed(first).await?;
                while let Ok(more) = rx.try_recv() {
                    sink.feed(more).await?;
                }
                sink.flush().await?;
            }
            Ok::<(), std::io::Error>(())
        };

        let reader = async {
            while let Some(frame) = stream.next().await {
                let frame = frame?;
                conn.heard_ms.store(conn.now_ms(), Ordering::Relaxed);
                match decode::<Response>(&frame) {
                    Ok((id, resp)) => {
                        if let Some(tx) = pending.lock().remove(&id) {
                            let _ = tx.send(resp);
                        }
                    }
                    Err(e) => tracing::warn!(aux = shared.id, error = %e, "undecodable answer"),
                }
            }
            Ok::<(), std::io::Error>(())
        };
        let watchdog = async {
            let mut tick = tokio::time::interval(PING_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let quiet =
                    Duration::from_millis(conn.now_ms().saturating_sub(conn.heard_ms.load(Ordering::Relaxed).max(1)));
                if quiet >= DEAD_AFTER {
                    return quiet;
                }
                // Answers to id 0 match no call; any frame heard proves the peer alive.
                if quiet >= PING_EVERY && conn.tx.send(ping.clone()).is_err() {
                    return quiet;
                }
            }
        };
        // The peer closing or resetting the connection means it is not serving (down); a
        // silent one may be cut off (see `WireError::Down`).
        let stopped = tokio::select! {
            // Answers already received are read before the watchdog judges the connection.
            biased;
            r = reader => {
                if let Err(e) = &r { tracing::debug!(error = %e, "reader ended"); }
                shared.down.store(r.as_ref().map_or_else(closed_by_peer, |()| true), Ordering::Relaxed);
                false
            }
            r = writer => {
                if let Err(e) = &r { tracing::debug!(error = %e, "writer ended"); }
                shared.down.store(r.as_ref().is_err_and(closed_by_peer), Ordering::Relaxed);
                false
            }
            quiet = watchdog => {
                tracing::warn!(aux = shared.id, ?quiet, "auxiliary silent on a pooled connection; replacing it");
                false
            }
            _ = conn.broken.notified() => {
                tracing::info!(aux = shared.id, "a request timed out; replacing its connection");
                false
            }
            _ = crate::stopped(&mut stop) => true,
        };
        *shared.slots[slot].lock() = None;
        // Dropping the senders fails every waiting call at once instead of at its timeout.
        pending.lock().clear();
        set_live(&shared);
        if stopped {
            return;
        }
        tracing::info!(aux = shared.id, addr = shared.addr, "connection to auxiliary lost; reconnecting");
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
