//! The life of one pooled connection: connect and authenticate, then a writer, a reader and a
//! timer task until it ends (a dead peer, a timeout, a stop), and again.

use crate::client::*;
use crate::slots::Slots;
use crate::{codec, WireError};
use bytes::{Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tiercache_protocol::{decode, encode, RemoteError, Request, Response};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{watch, Notify};
use tokio_util::codec::{Framed, FramedRead};

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

pub(crate) async fn keep_connected(shared: Arc<Shared>, slot: usize, mut stop: watch::Receiver<bool>) {
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
        // A GET's value stays where it was read: a slice of the frame, not a copy.
        match tiercache_protocol::inplace::decode_response(frame.freeze()) {
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
    use tokio::runtime::Handle;

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

    /// An auxiliary stand-in that welcomes a connection and then reads nothing more (a process
    /// stalled on a full disk, say): its receive window fills, then the master's buffer.
    async fn stalled_peer() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let mut framed = Framed::new(stream, codec());
            framed.next().await.unwrap().unwrap();
            framed.send(Bytes::from(encode(0, &Response::Welcome).unwrap())).await.unwrap();
            std::future::pending::<()>().await;
            drop(framed);
        });
        addr
    }

    #[tokio::test]
    async fn a_peer_that_stops_reading_holds_callers_back_at_a_bounded_buffer() {
        let addr = stalled_peer().await;
        let client = Arc::new(AuxClient::new(&Handle::current(), "aux", &addr, "token", 1, Duration::from_secs(3)));
        // 3,000 writes of 16 KiB: 48 MiB, far more than the socket and the buffer hold.
        let value = Bytes::from(vec![b'v'; 16 * 1024]);
        let mut calls = tokio::task::JoinSet::new();
        for i in 0..3000u64 {
            let (client, value) = (client.clone(), value.clone());
            calls.spawn(async move {
                let put = Request::Put { key: Bytes::from(i.to_string()), value, version: i + 1, ttl_ms: 0 };
                client.call(&put).await
            });
        }
        let mut most = 0;
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            most = most.max(client.queued_bytes());
        }
        // Full, and not past its bound by more than one request: the rest of the callers wait.
        assert!(most >= OUT_LIMIT / 2, "the buffer never filled ({most} bytes): is the peer reading?");
        assert!(most <= OUT_LIMIT + 17 * 1024, "{most} bytes queued for a peer that reads nothing");
        assert!(calls.try_join_next().is_none(), "a call ended before its timeout");
        // And every caller gets its answer in the end, not a hang: a timeout, or, once the
        // first timeouts had the connection replaced, the end of the connection it waited on.
        let all = async {
            while let Some(r) = calls.join_next().await {
                let r = r.unwrap();
                assert!(matches!(r, Err(WireError::Timeout(_) | WireError::Unreachable(_))), "{r:?}");
            }
        };
        tokio::time::timeout(Duration::from_secs(10), all).await.expect("callers still held after 10 s");
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
