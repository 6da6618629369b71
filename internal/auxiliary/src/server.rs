//! The auxiliary's internal-protocol server: length-delimited frames over TCP, the first of
//! which must carry the shared token. It runs on a data thread of its own (a single-threaded
//! runtime, [`spawn_data_thread`]): cheap requests are answered inline in arrival order, the
//! answers to everything one read brought in leave in one write; slow ones (snapshot,
//! rebalance, and the walks over the whole store: flush, scan, count) run on the node's other
//! runtime and answer when done, so the data thread never stalls behind them.

use crate::ops::AuxOps;
use crate::recovery::Recovery;
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use parking_lot::RwLock;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tiercache_placement::{KeyHash, Ring};
use tiercache_protocol::Placed;
use tiercache_protocol::{decode, encode, Found, RemoteError, Request, Response, StatsReply, PROTOCOL_VERSION};
use tiercache_store::Store;
use tiercache_wire::{codec, Metrics};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_util::codec::Framed;

/// Everything a data connection needs.
pub struct DataServer {
    /// The data.
    pub store: Arc<Store>,
    /// The shared secret.
    pub token: String,
    /// Metrics of this auxiliary.
    pub metrics: Arc<Metrics>,
    /// Snapshots and transfers.
    pub ops: Arc<AuxOps>,
    /// Whether reads may miss acknowledged writes (see [`Recovery`]).
    pub recovery: Recovery,
    /// Whether this node may run a key's atomic steps (see [`crate::fence`]).
    pub fence: crate::fence::Fence,
    /// The recovery epoch of this node's start, when it started recovering.
    pub start_epoch: Option<u64>,
    /// Set by [`DataServer::close_writes`] when the node hands its keys off for good. Writes
    /// hold it for reading while they are applied.
    writes_closed: RwLock<bool>,
}

/// What a data connection does with one request.
enum Handled {
    /// Answered from the store.
    Answer(Response),
    /// A snapshot or rebalance, run on a task of its own.
    Slow,
    /// A write after [`DataServer::close_writes`].
    Refused,
}

impl DataServer {
    /// A server over `store`, accepting peers that present `token`.
    pub fn new(store: Arc<Store>, token: String, metrics: Arc<Metrics>, ops: Arc<AuxOps>, recovering: bool) -> Self {
        let recovery = Recovery::default();
        // Before the first connection is accepted: restored data may be older than what the
        // cluster acknowledged meanwhile.
        let start_epoch = recovering.then(|| recovery.begin("starting"));
        DataServer {
            store,
            token,
            metrics,
            ops,
            recovery,
            fence: crate::fence::Fence::default(),
            start_epoch,
            writes_closed: RwLock::new(false),
        }
    }

    /// From now on a write (put, delete, batch) is not applied: the connection that carried it
    /// is closed instead, so the master sees this node as unreachable, marks it suspect and
    /// counts its write quorum among the other owners. A leaving node calls this before its
    /// last hand-off pass: every write it acknowledged is then in that pass, even when a
    /// master is slow to drop it from the placement. Returns once the writes already past the
    /// check are in the store (they are applied without awaiting: microseconds, a batch a
    /// millisecond).
    pub fn close_writes(&self) {
        *self.writes_closed.write() = true;
    }

    fn handle(&self, req: &Request) -> Handled {
        let answer = |r: Option<Response>| r.map_or(Handled::Slow, Handled::Answer);
        if !req.is_write() {
            return answer(self.handle_fast(req));
        }
        let closed = self.writes_closed.read();
        if *closed {
            return Handled::Refused;
        }
        answer(self.handle_fast(req))
    }

    /// Answers one request as a connection would, off the network (the in-memory peers of
    /// tests, [`crate::peers::MemPeers`]); `None` when the connection would close instead (a
    /// write after [`DataServer::close_writes`]).
    pub async fn answer(self: &Arc<Self>, req: Request) -> Option<Response> {
        match self.handle(&req) {
            Handled::Answer(r) => Some(r),
            Handled::Slow => Some(self.clone().handle_slow(req).await),
            Handled::Refused => None,
        }
    }

    /// Answers one cheap request from the store; `None` for the slow ones.
    fn handle_fast(&self, req: &Request) -> Option<Response> {
        let started = Instant::now();
        if let Request::Apply { key, .. } | Request::ApplyReconciled { key, .. } = req {
            if let Err(refused) = self.fence.may_lead(key, &self.ops.node_id) {
                return Some(Response::Error(refused));
            }
        }
        if let Request::Transaction { expect, .. } = req {
            for e in expect {
                if let Err(refused) = self.fence.may_lead(&e.key, &self.ops.node_id) {
                    return Some(Response::Error(refused));
                }
            }
        }
        Some(match req {
            Request::Hello { .. } | Request::HelloV1 { .. } => Response::Welcome,
            // Like `Apply`: a transaction starts from every acknowledged write or not at all.
            Request::Transaction { expect, reconciled: false, .. }
                if expect.iter().any(|e| self.recovery.recovering_for(&e.key)) =>
            {
                Response::Recovering(None)
            }
            Request::Transaction { expect, bases, writes, .. } => {
                let r = crate::apply::transaction(&self.store, expect, bases, writes);
                self.metrics.observe(
                    "transaction",
                    if matches!(r, Response::Applied(_)) { "ok" } else { "error" },
                    started,
                );
                r
            }
            Request::Ping => Response::Pong,
            // It may have missed writes: the step must not start from its own copy alone.
            Request::Apply { key, .. } if self.recovery.recovering_for(key) => Response::Recovering(None),
            Request::Apply { key, op, version } | Request::ApplyReconciled { key, op, version, .. } => {
                if let Request::ApplyReconciled { base: Some(base), .. } = req {
                    let expires = self.store.expires_at(base.ttl_ms);
                    let _ = self.store.apply_raw(key, base.value.as_deref(), base.version, expires, base.expiry_seq);
                }
                let r = crate::apply::apply(&self.store, key, op, *version);
                self.metrics.observe(
                    "put",
                    if matches!(r, Response::Updated { .. }) { "ok" } else { "error" },
                    started,
                );
                r
            }
            Request::SetExpiry { key, version, expiry_seq, ttl_ms } => {
                let changed =
                    self.store.set_expiry(key, *ttl_ms, Some((*version, *expiry_seq))).is_some_and(|(_, c)| c);
                Response::Applied(u64::from(changed))
            }
            Request::Recover => {
                self.recovery.begin("a master wrote around it");
                Response::Recovering(None)
            }
            Request::Get { key } => {
                let found = self.store.get(key).map(|e| Found {
                    ttl_ms: e.remaining_ttl_ms(self.store.now_ms()),
                    value: e.value,
                    version: e.version,
                    expiry_seq: e.expiry_seq,
                });
                let result = if found.as_ref().is_some_and(|f| f.value.is_some()) { "hit" } else { "miss" };
                self.metrics.observe("get", result, started);
                if self.recovery.recovering_for(key) {
                    Response::Recovering(found)
                } else {
                    Response::Value(found)
                }
            }
            Request::Put { key, value, version, ttl_ms } => {
                match self.store.put(key.clone(), value.clone(), *version, *ttl_ms) {
                    Ok(applied) => {
                        self.metrics.observe("put", "ok", started);
                        Response::Applied(applied as u64)
                    }
                    Err(e) => {
                        self.metrics.observe("put", "error", started);
                        Response::Error(match e {
                            tiercache_store::StoreError::TooLarge { size, limit } => {
                                RemoteError::TooLarge { size, limit }
                            }
                            other => RemoteError::BadFrame(other.to_string()),
                        })
                    }
                }
            }
            Request::Delete { key, version } | Request::Remove { key, version } => {
                let out = self.store.delete(key.clone(), *version);
                self.metrics.observe("delete", if out.existed { "hit" } else { "miss" }, started);
                if matches!(req, Request::Remove { .. }) {
                    Response::Removed { existed: out.existed, applied: out.applied }
                } else {
                    Response::Deleted { existed: out.existed }
                }
            }
            Request::PutBatch { entries } => {
                let applied = entries
                    .iter()
                    .filter(|e| {
                        let expires = self.store.expires_at(e.ttl_ms);
                        self.store
                            .apply_raw(&e.key, e.value.as_deref(), e.version, expires, e.expiry_seq)
                            .unwrap_or(false)
                    })
                    .count();
                Response::Applied(applied as u64)
            }
            Request::Stats => {
                let s = self.store.stats();
                Response::Stats(StatsReply { keys: s.keys, bytes: s.bytes, evictions: s.evictions, expired: s.expired })
            }
            Request::Snapshot
            | Request::Rebalance { .. }
            | Request::Flush { .. }
            | Request::ScanShard { .. }
            | Request::CountPrimary { .. }
            | Request::Census { .. }
            | Request::Placed(_) => return None,
        })
    }

    /// Answers a slow request, off the data thread.
    async fn handle_slow(self: Arc<Self>, req: Request) -> Response {
        match req {
            Request::Snapshot => self.ops.snapshot_answer().await,
            r @ Request::Rebalance { .. } => self.ops.rebalance_answer(r, KeyHash::Whole).await,
            Request::Placed(Placed { key_hash, request }) => match *request {
                r @ Request::Rebalance { .. } => self.ops.rebalance_answer(r, key_hash).await,
                Request::ScanShard { shard, members, virtual_nodes, pattern } => {
                    let ring = Ring::new(&members, virtual_nodes).with_key_hash(key_hash);
                    self.scan_shard(shard, ring, pattern).await
                }
                Request::CountPrimary { members, virtual_nodes } => {
                    self.count_primary(Ring::new(&members, virtual_nodes).with_key_hash(key_hash)).await
                }
                Request::Census { members, virtual_nodes } => {
                    self.census(Ring::new(&members, virtual_nodes).with_key_hash(key_hash)).await
                }
                _ => Response::Error(RemoteError::NotSupported),
            },
            Request::Flush { version } => {
                self.walk(move |s| Response::Count(crate::keyspace::flush(&s.store, version))).await
            }
            Request::ScanShard { shard, members, virtual_nodes, pattern } => {
                self.scan_shard(shard, Ring::new(&members, virtual_nodes), pattern).await
            }
            Request::CountPrimary { members, virtual_nodes } => {
                self.count_primary(Ring::new(&members, virtual_nodes)).await
            }
            Request::Census { members, virtual_nodes } => self.census(Ring::new(&members, virtual_nodes)).await,
            _ => Response::Error(RemoteError::NotSupported),
        }
    }

    /// `SCAN`'s walk over one shard, off the data thread.
    async fn scan_shard(self: Arc<Self>, shard: u32, ring: Ring, pattern: Option<bytes::Bytes>) -> Response {
        self.walk(move |s| {
            let keys = crate::keyspace::scan_shard(&s.store, shard as usize, &s.ops.node_id, &ring, pattern.as_deref());
            Response::Keys { keys, shards: s.store.shard_count() as u32 }
        })
        .await
    }

    /// `DBSIZE`'s count, off the data thread.
    async fn count_primary(self: Arc<Self>, ring: Ring) -> Response {
        self.walk(move |s| Response::Count(crate::keyspace::count_primary(&s.store, &s.ops.node_id, &ring))).await
    }

    /// `INFO keyspace`'s count, off the data thread.
    async fn census(self: Arc<Self>, ring: Ring) -> Response {
        self.walk(move |s| Response::Census(crate::keyspace::census(&s.store, &s.ops.node_id, &ring))).await
    }

    /// Runs a walk over the whole store on a blocking thread.
    async fn walk(self: Arc<Self>, f: impl FnOnce(&DataServer) -> Response + Send + 'static) -> Response {
        tokio::task::spawn_blocking(move || f(&self))
            .await
            .unwrap_or_else(|_| Response::Error(RemoteError::NotSupported))
    }
}

/// Starts the data thread: [`serve_data`] on a single-threaded runtime of its own, until
/// `shutdown` turns true; the connections open then are served until `gone` closes (the
/// auxiliary is dropped) or the process ends.
pub fn spawn_data_thread(
    listener: TcpListener,
    server: Arc<DataServer>,
    shutdown: watch::Receiver<bool>,
    mut gone: watch::Receiver<()>,
) -> std::io::Result<()> {
    let listener = listener.into_std()?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    std::thread::Builder::new().name("tiercache-data".into()).spawn(move || {
        rt.block_on(async move {
            match TcpListener::from_std(listener) {
                Ok(listener) => serve_data(listener, server, shutdown).await,
                Err(e) => tracing::error!(error = %e, "data listener unusable"),
            }
            let _ = gone.changed().await;
        });
    })?;
    Ok(())
}

/// Accepts data connections until `shutdown` turns true.
pub async fn serve_data(listener: TcpListener, server: Arc<DataServer>, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, peer)) => {
                    let s = server.clone();
                    tokio::spawn(async move {
                        if let Err(e) = connection(stream, s).await {
                            tracing::debug!(%peer, error = %e, "data connection closed");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = tiercache_wire::stopped(&mut shutdown) => break,
        }
    }
}

async fn connection(stream: TcpStream, server: Arc<DataServer>) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut framed = Framed::new(stream, codec());
    // Authenticate first: an unauthenticated peer gets nothing and changes nothing.
    let first = match tokio::time::timeout(Duration::from_secs(5), framed.next()).await {
        Ok(Some(f)) => f?,
        _ => return Ok(()),
    };
    let token_ok = |t: &str| tiercache_protocol::same_secret(t, &server.token);
    // (id, the peer's protocol version when its token is right).
    let (id, protocol) = match decode::<Request>(&first) {
        Ok((id, Request::Hello { token, protocol })) => (id, token_ok(&token).then_some(protocol)),
        Ok((id, Request::HelloV1 { token })) => (id, token_ok(&token).then_some(1)),
        Ok((id, _)) => (id, None),
        Err(_) => return Ok(()),
    };
    let answer = match protocol {
        Some(PROTOCOL_VERSION) => Response::Welcome,
        Some(theirs) => {
            let e = RemoteError::ProtocolMismatch { theirs, ours: PROTOCOL_VERSION };
            tracing::error!(peer = ?framed.get_ref().peer_addr().ok(), "data connection refused: {e}");
            Response::Error(e)
        }
        None => {
            tracing::warn!("data connection refused: bad or missing internal token");
            Response::Error(RemoteError::Unauthorized)
        }
    };
    let welcome = answer == Response::Welcome;
    let sent = framed.send(Bytes::from(encode(id, &answer).map_err(std::io::Error::other)?)).await;
    if !welcome {
        return Ok(());
    }
    sent?;
    let (slow_tx, mut slow_rx) = mpsc::channel::<Bytes>(64);
    loop {
        tokio::select! {
            frame = framed.next() => {
                let Some(frame) = frame else { return Ok(()) };
                let frame = frame?;
                let (id, req) = match decode::<Request>(&frame) {
                    Ok(x) => x,
                    Err(e) => {
                        let out = encode(0, &Response::Error(RemoteError::BadFrame(e.to_string()))).map_err(std::io::Error::other)?;
                        framed.send(Bytes::from(out)).await?;
                        continue;
                    }
                };
                match server.handle(&req) {
                    Handled::Refused => return Err(std::io::Error::other("writes closed: this auxiliary is leaving")),
                    Handled::Answer(resp) => {
                        let out = encode(id, &resp).map_err(std::io::Error::other)?;
                        framed.feed(Bytes::from(out)).await?;
                        // Pipelining: answer everything already received before one flush.
                        if framed.read_buffer().is_empty() {
                            SinkExt::<Bytes>::flush(&mut framed).await?;
                        }
                    }
                    Handled::Slow => {
                        let (tx, slow) = (slow_tx.clone(), server.clone().handle_slow(req));
                        server.ops.rt.spawn(async move {
                            if let Ok(out) = encode(id, &slow.await) {
                                let _ = tx.send(Bytes::from(out)).await;
                            }
                        });
                    }
                }
            }
            Some(out) = slow_rx.recv() => framed.send(out).await?,
        }
    }
}
