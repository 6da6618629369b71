//! The auxiliary's internal-protocol server: what it answers to each request. Cheap requests
//! are answered from the store at once; slow ones (snapshot, rebalance, and the walks over the
//! whole store: flush, scan, count) run on the node's other runtime and answer when done, so
//! the data thread ([`crate::listener`]) never stalls behind them.

use crate::ops::AuxOps;
use crate::recovery::Recovery;
use parking_lot::RwLock;
use std::sync::Arc;
use std::time::Instant;
use tiercache_placement::{KeyHash, Ring};
use tiercache_protocol::inplace::PutView;
use tiercache_protocol::Placed;
use tiercache_protocol::{Found, RemoteError, Request, Response, StatsReply};
use tiercache_store::Store;
use tiercache_wire::Metrics;

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
pub(crate) enum Handled {
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

    pub(crate) fn handle(&self, req: &Request) -> Handled {
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
    pub async fn answer(self: &Arc<Self>, req: &Request) -> Option<Response> {
        match self.handle(req) {
            Handled::Answer(r) => Some(r),
            Handled::Slow => Some(self.clone().handle_slow(req.clone()).await),
            Handled::Refused => None,
        }
    }

    /// Answers a `Get` straight into `out` (a connection's output buffer), its entry encoded
    /// from the store's bytes under the shard's lock: the data thread's GET allocates nothing.
    /// The answer is the one [`DataServer::answer`] gives.
    pub(crate) fn answer_get_into(
        &self,
        id: u64,
        key: &[u8],
        out: &mut bytes::BytesMut,
    ) -> Result<(), tiercache_protocol::ProtocolError> {
        let started = Instant::now();
        let recovering = self.recovery.recovering_for(key);
        let hit = self.store.get_with(key, |e| {
            tiercache_protocol::inplace::encode_found_frame_into(id, recovering, e, out)
                .map(|()| e.is_some_and(|e| e.value.is_some()))
        })?;
        self.metrics.observe("get", if hit { "hit" } else { "miss" }, started);
        Ok(())
    }

    /// Answers a `Put` read in place from its frame (see [`tiercache_protocol::inplace`]), as
    /// [`DataServer::handle`] answers the same request decoded.
    pub(crate) fn handle_put(&self, put: &PutView<'_>) -> Handled {
        let started = Instant::now();
        let closed = self.writes_closed.read();
        if *closed {
            return Handled::Refused;
        }
        Handled::Answer(self.put(put, started))
    }

    fn put(&self, put: &PutView<'_>, started: Instant) -> Response {
        let expires = self.store.expires_at(put.ttl_ms);
        match self.store.apply_raw(put.key, Some(put.value), put.version, expires, 0) {
            Ok(applied) => {
                self.metrics.observe("put", "ok", started);
                Response::Applied(applied as u64)
            }
            Err(e) => {
                self.metrics.observe("put", "error", started);
                Response::Error(match e {
                    tiercache_store::StoreError::TooLarge { size, limit } => RemoteError::TooLarge { size, limit },
                    other => RemoteError::BadFrame(other.to_string()),
                })
            }
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
                self.put(&PutView { key, value, version: *version, ttl_ms: *ttl_ms }, started)
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
    pub(crate) async fn handle_slow(self: Arc<Self>, req: Request) -> Response {
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
