//! The Redis protocol (RESP2, and RESP3 after `HELLO 3`) front end of a master: a sibling of
//! the HTTP API over the same master core, so routing, quorums, versions and TTLs are not
//! written twice.
//!
//! - `frame`: requests off the wire, every announced length checked before it is buffered.
//! - `cmd`: one file per command, dispatched by name with Redis's arity rules and error words.
//!
//! A connection answers its commands in order; everything already received is answered before
//! one write (pipelining), and within it a run of consecutive reads is sent to the cluster
//! together while any other command runs alone, so a read after a write sees the write. The server stops reading while it
//! writes, so a client that sends faster than it reads meets TCP back-pressure, not a growing
//! buffer here.

mod cmd;
mod frame;
mod resp3;

use bytes::BytesMut;
use frame::Parsed;
use redis_protocol::resp2::encode::extend_encode;
use redis_protocol::resp2::types::BytesFrame;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tiercache_master::MasterState;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A connection with nothing pending is closed after this long without a request.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// A request that started arriving must be complete within this long.
const SLOW_TIMEOUT: Duration = Duration::from_secs(30);
/// Commands taken from the input at once.
const MAX_BATCH: usize = 1024;
/// Answers are written out once this many bytes are waiting, even mid-pipeline.
const FLUSH_AT: usize = 64 * 1024;

/// What every connection of this front end shares: the settings `CONFIG GET` reports.
pub(crate) struct Front {
    /// Connections served at once (`MAX_CLIENTS`, as lowered at start).
    pub max_clients: usize,
    /// The port the listener is bound to.
    pub port: u16,
    /// The address it is bound to.
    pub bind: String,
}

/// Who a connection has authenticated as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Identity {
    /// Nothing yet, and a client password is set: only AUTH, HELLO and QUIT are served.
    Nobody,
    /// A client (or no password is set).
    Client,
    /// `AUTH admin <ADMIN_TOKEN>`: may also flush.
    Admin,
}

/// What one client connection remembers between commands.
#[derive(Clone)]
pub(crate) struct Session {
    /// Who it is.
    pub identity: Identity,
    /// `CLIENT ID`.
    pub id: u64,
    /// `CLIENT SETNAME`.
    pub name: Option<bytes::Bytes>,
    /// QUIT was received: answer, then close.
    pub quit: bool,
    /// `HELLO 3` switched this connection to RESP3 (until `HELLO 2` or `RESET`).
    pub resp3: bool,
    /// The versions of this connection's recent writes, so its reads see them. Shared by the
    /// clones a run of pipelined reads works with.
    pub floors: Arc<parking_lot::Mutex<tiercache_master::WriteFloors>>,
    /// The commands queued since `MULTI`.
    pub multi: Option<Vec<cmd::Command>>,
    /// A command was refused while queueing: `EXEC` answers `EXECABORT`.
    pub multi_dirty: bool,
    /// The keys of `WATCH`, as their primary held them.
    pub watched: Vec<Watched>,
    /// While `EXEC` runs the queued commands: the keys they work on (`master::tx`).
    pub tx: Option<Arc<parking_lot::Mutex<tiercache_master::tx::Overlay>>>,
    /// The reply just made is Redis's null array (`*-1`: an `EXEC` a watched key aborted),
    /// which RESP2 frames cannot say.
    pub null_array: bool,
}

/// A key of `WATCH`.
#[derive(Debug, Clone)]
pub(crate) struct Watched {
    pub key: bytes::Bytes,
    /// The owner that led its group.
    pub primary: String,
    /// Its version and expiry sequence there (`None`: no entry).
    pub stamp: Option<(u64, u32)>,
}

/// File descriptors kept for everything but client connections (pooled connections to the
/// auxiliaries, ZooKeeper, the HTTP listener and its clients, logs).
const RESERVED_FDS: u64 = 128;

/// How long the stop waits for open connections to finish what they received.
const DRAIN_FOR: Duration = Duration::from_secs(10);

/// `MAX_CLIENTS`, lowered to what the open-file limit allows (as Redis does), with a line saying so.
pub fn client_limit(max_clients: usize) -> usize {
    let Some(soft) = rustix::process::getrlimit(rustix::process::Resource::Nofile).current else {
        return max_clients;
    };
    let room = usize::try_from(soft.saturating_sub(RESERVED_FDS)).unwrap_or(usize::MAX).max(1);
    if room < max_clients {
        tracing::warn!(
            max_clients,
            lowered_to = room,
            open_file_limit = soft,
            "MAX_CLIENTS lowered to what the open-file limit allows (raise it with ulimit -n or LimitNOFILE)"
        );
        return room;
    }
    max_clients
}

/// Accepts RESP connections until `stop` turns true, at most `max_clients` at once (past
/// that a client gets Redis's `-ERR max number of clients reached` and is closed); then lets
/// the open connections finish the commands they received (up to 10 s) and returns. Each
/// connection is served on one of the master's data threads (`MasterState::data_threads`),
/// round robin, and stays there.
pub async fn serve(
    listener: TcpListener,
    state: Arc<MasterState>,
    mut stop: watch::Receiver<bool>,
    max_clients: usize,
) {
    let ids = Arc::new(AtomicU64::new(0));
    let local = listener.local_addr().ok();
    let front = Arc::new(Front {
        max_clients,
        port: local.map_or(0, |a| a.port()),
        bind: local.map_or_else(String::new, |a| a.ip().to_string()),
    });
    let open = tokio_util::task::TaskTracker::new();
    let data_threads = state.data_threads.clone();
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((mut stream, _)) if open.len() >= max_clients => {
                    state.metrics.resp_rejected.inc();
                    tokio::spawn(async move {
                        let _ = tokio::time::timeout(
                            Duration::from_secs(1),
                            stream.write_all(b"-ERR max number of clients reached\r\n"),
                        )
                        .await;
                    });
                }
                Ok((stream, peer)) => {
                    let (state, id, stop) = (state.clone(), ids.fetch_add(1, Ordering::Relaxed) + 1, stop.clone());
                    let front = front.clone();
                    // The socket leaves this runtime's reactor: its readiness then wakes the
                    // data thread that serves it, not this one.
                    let stream = match stream.into_std() {
                        Ok(s) => s,
                        Err(e) => {
                            tracing::warn!(%peer, error = %e, "cannot hand a RESP connection over");
                            continue;
                        }
                    };
                    let serve = open.track_future(async move {
                        let stream = TcpStream::from_std(stream)?;
                        state.metrics.resp_connections.inc();
                        let r = connection(stream, &state, &front, id, stop).await;
                        state.metrics.resp_connections.dec();
                        r
                    });
                    let served = async move {
                        if let Err(e) = serve.await {
                            tracing::debug!(%peer, error = %e, "RESP connection ended");
                        }
                    };
                    match data_threads.pick() {
                        Some(thread) => drop(thread.spawn(served)),
                        None => drop(tokio::spawn(served)),
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "RESP accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = stopped(&mut stop) => break,
        }
    }
    drop(listener);
    open.close();
    if !open.is_empty() {
        tracing::info!(connections = open.len(), "draining RESP connections");
    }
    if tokio::time::timeout(DRAIN_FOR, open.wait()).await.is_err() {
        tracing::warn!(connections = open.len(), "RESP connections still busy after the drain; closing them");
    }
}

/// Resolves once the flag turns true (the guard `wait_for` returns is dropped inside).
async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// Appends a reply in the connection's protocol. Commands build RESP2 frames; in RESP3 they
/// are converted (`resp3::convert`), and the field-value lists of `HELLO` and `CONFIG GET`
/// become maps.
fn encode(out: &mut BytesMut, reply: &BytesFrame, session: &Session, map: bool) {
    let encoded = if session.resp3 {
        let frame = if map { resp3::map(reply) } else { resp3::convert(reply) };
        redis_protocol::resp3::encode::complete::extend_encode(out, &frame, false).map(drop)
    } else {
        extend_encode(out, reply, false).map(drop)
    };
    if let Err(e) = encoded {
        tracing::warn!(error = %e, "cannot encode a RESP reply");
    }
}

async fn connection(
    mut stream: TcpStream,
    state: &MasterState,
    front: &Front,
    id: u64,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let max_bulk = state.limits.value_max_bytes.max(state.limits.key_max_bytes);
    let identity = if state.client_password.is_some() { Identity::Nobody } else { Identity::Client };
    let mut session = Session {
        identity,
        id,
        name: None,
        quit: false,
        resp3: false,
        floors: Default::default(),
        multi: None,
        multi_dirty: false,
        watched: Vec::new(),
        tx: None,
        null_array: false,
    };
    let mut input = BytesMut::with_capacity(16 * 1024);
    let mut out = BytesMut::with_capacity(16 * 1024);
    let mut batch: Vec<cmd::Command> = Vec::new();
    // One timer and one stop signal for the connection's life, not one per read: `idle`
    // fires at the earliest moment the connection could be idle for too long, and looks at
    // when it last heard from the client before closing it.
    let mut heard = tokio::time::Instant::now();
    let idle = tokio::time::sleep(IDLE_TIMEOUT);
    tokio::pin!(idle);
    let stop_signal = stopped(&mut stop);
    tokio::pin!(stop_signal);
    loop {
        // Everything already received, up to a bound, is one batch: answered with one write.
        let mut invalid = None;
        while batch.len() < MAX_BATCH {
            match frame::next(&mut input, max_bulk) {
                Parsed::Command(args) => batch.push(cmd::Command::new(args)),
                Parsed::Incomplete => break,
                Parsed::Invalid(why) => {
                    invalid = Some(why);
                    break;
                }
            }
        }
        let full = batch.len() == MAX_BATCH;
        let mut at = 0;
        while at < batch.len() {
            // A run of reads goes out together (their answers keep their order); anything
            // else runs alone, so a read after a write sees it.
            // (Inside MULTI they are queued, in order, on the connection's own session.)
            let reads =
                if session.multi.is_some() { 0 } else { batch[at..].iter().take_while(|c| c.is_read()).count() };
            if reads > 1 {
                let replies = futures::future::join_all(batch[at..at + reads].iter_mut().map(|args| {
                    let mut s = session.clone();
                    let args = std::mem::take(args);
                    async move { cmd::run(state, front, &mut s, args).await }
                }))
                .await;
                for reply in &replies {
                    encode(&mut out, reply, &session, false);
                }
                at += reads;
            } else {
                let map = batch[at].replies_map();
                let reply = cmd::run(state, front, &mut session, std::mem::take(&mut batch[at])).await;
                if std::mem::take(&mut session.null_array) && !session.resp3 {
                    out.extend_from_slice(b"*-1\r\n");
                } else {
                    encode(&mut out, &reply, &session, map);
                }
                at += 1;
                if session.quit {
                    stream.write_all(&out).await?;
                    return Ok(());
                }
            }
            if out.len() >= FLUSH_AT {
                stream.write_all(&out).await?;
                out.clear();
            }
        }
        batch.clear();
        if let Some(why) = invalid {
            encode(&mut out, &BytesFrame::Error(format!("ERR Protocol error: {why}").into()), &session, false);
            stream.write_all(&out).await?;
            return Ok(());
        }
        if full {
            // More complete commands may be waiting: take them before reading.
            continue;
        }
        if !out.is_empty() {
            stream.write_all(&out).await?;
            out.clear();
        }
        input.reserve(16 * 1024);
        loop {
            let wait = if input.is_empty() { IDLE_TIMEOUT } else { SLOW_TIMEOUT };
            if idle.deadline() > heard + wait {
                // A request started arriving: it has the shorter time to be complete.
                idle.as_mut().reset(heard + wait);
            }
            tokio::select! {
                // The input first: when it is ready, the timer and the stop signal are not
                // polled at all.
                biased;
                r = stream.read_buf(&mut input) => match r {
                    Ok(0) => return Ok(()),
                    Ok(_) => {
                        heard = tokio::time::Instant::now();
                        break;
                    }
                    Err(e) => return Err(e),
                },
                () = &mut idle => {
                    if heard.elapsed() >= wait {
                        return Ok(());
                    }
                    idle.as_mut().reset(heard + wait);
                }
                // Stopping: everything received has been answered; close between commands.
                () = &mut stop_signal, if input.is_empty() => return Ok(()),
            }
        }
    }
}
