//! The master's routing of client operations: the router, its placement and view, and
//! versioned writes and deletes (quorum reads, repair and fallback: `read`).

use crate::peer::{Connect, WireConnect};
use crate::quorum::{try_call_many, Plan};
use crate::rebalance::RebalanceStatus;
use crate::view::{AuxNode, Nodes, View};
use crate::MasterError;
use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tiercache_placement::Member;
use tiercache_placement::{KeyHash, Settings};
use tiercache_protocol::{Clock, Condition, Hlc, Op, Request, Response, SystemClock};
use tiercache_wire::{Metrics, WireError};

/// Routing settings (from the master's configuration). `replicas` and `virtual_nodes` are the
/// starting placement; the cluster configuration replaces them (`Router::set_placement`).
#[derive(Debug, Clone)]
pub struct RouterConfig {
    /// Copies of each key.
    pub replicas: usize,
    /// Acknowledgements needed for a write.
    pub write_quorum: usize,
    /// Answers needed for a read.
    pub read_quorum: usize,
    /// Virtual nodes per auxiliary.
    pub virtual_nodes: u32,
    /// Timeout of one request.
    pub request_timeout: Duration,
}

/// The answer of a quorum read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadResult {
    /// The newest version is a value.
    Hit(Bytes),
    /// No owner has it (or the newest version is a delete).
    Miss,
}

/// Routes client operations to owner auxiliaries.
pub struct Router<C: Connect = WireConnect> {
    pub(crate) cfg: RouterConfig,
    /// The cluster's current `REPLICAS`: changed at run time by `PUT /config`.
    replicas: AtomicUsize,
    /// The cluster's `VIRTUAL_NODES`.
    virtual_nodes: AtomicU32,
    /// The cluster's `key_hash`: which bytes of a key place it.
    key_hash: RwLock<KeyHash>,
    connect: C,
    view: RwLock<Arc<View<C::Peer>>>,
    pub(crate) hlc: Hlc,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) rebalance: Mutex<RebalanceStatus>,
    /// The cluster's record that it acknowledges writes; `None`: nothing to record (`local`).
    write_record: Mutex<Option<Arc<dyn WriteRecord>>>,
    /// Set once this master has seen the record in place (one attempt at a time; a failed
    /// one is tried again by the next write).
    recorded: tokio::sync::OnceCell<()>,
    /// Wall-clock time for suspect and recovering marks and the fallback windows (versions
    /// come from the HLC).
    pub(crate) clock: Arc<dyn Clock>,
}

/// The cluster's record that it acknowledges writes (ZooKeeper's `written` znode), the port an
/// auxiliary that starts empty relies on: with no record, the cluster has acknowledged
/// nothing, so the auxiliary has missed nothing and serves as a full replica at once.
pub trait WriteRecord: Send + Sync + 'static {
    /// Creates the record (idempotent), then lists the auxiliaries registered now.
    fn record(&self) -> futures::future::BoxFuture<'static, Result<Vec<String>, crate::PortError>>;
}

/// The answers of every auxiliary to one request.
pub type Answers<P> = Vec<(Arc<AuxNode<P>>, Result<Response, WireError>)>;

impl<C: Connect> Router<C> {
    /// A router with an empty view; `connect` makes the peer of each auxiliary that joins.
    pub fn new(cfg: RouterConfig, connect: C, metrics: Arc<Metrics>) -> Self {
        Router {
            replicas: AtomicUsize::new(cfg.replicas.max(1)),
            virtual_nodes: AtomicU32::new(cfg.virtual_nodes.max(1)),
            key_hash: RwLock::new(KeyHash::Whole),
            cfg,
            connect,
            view: RwLock::new(Arc::new(View::empty())),
            hlc: Hlc::new(),
            metrics,
            rebalance: Mutex::new(RebalanceStatus::default()),
            write_record: Mutex::new(None),
            recorded: tokio::sync::OnceCell::new(),
            clock: Arc::new(SystemClock),
        }
    }

    /// The same router on another clock (tests move a manual one instead of sleeping).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Where this master records, before its first write, that the cluster acknowledges
    /// writes (see [`WriteRecord`]).
    pub fn set_write_record(&self, record: Arc<dyn WriteRecord>) {
        *self.write_record.lock() = Some(record);
    }

    /// Before the first write: the record is in place, and every auxiliary registered then
    /// (which may have seen no record and so serves as caught up) is in this master's view,
    /// so the write reaches it.
    pub(crate) async fn ensure_recorded(&self) -> Result<(), MasterError> {
        if self.recorded.initialized() {
            return Ok(());
        }
        self.recorded.get_or_try_init(|| self.record_first_write()).await.map(drop)
    }

    async fn record_first_write(&self) -> Result<(), MasterError> {
        let Some(record) = self.write_record.lock().clone() else { return Ok(()) };
        let budget = self.cfg.request_timeout.max(Duration::from_secs(2));
        let deadline = tokio::time::Instant::now() + budget;
        let registered = match tokio::time::timeout_at(deadline, record.record()).await {
            Ok(Ok(ids)) => ids,
            Ok(Err(e)) => return Err(MasterError::NotRecorded(crate::NotRecorded::Store(e))),
            Err(_) => return Err(MasterError::NotRecorded(crate::NotRecorded::Timeout)),
        };
        while !registered.iter().all(|id| self.view().nodes.contains_key(id)) {
            if tokio::time::Instant::now() >= deadline {
                return Err(MasterError::NotRecorded(crate::NotRecorded::PlacementLags));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// The routing settings.
    pub fn config(&self) -> &RouterConfig {
        &self.cfg
    }

    /// Copies of each key, as the cluster configuration says now.
    pub fn replicas(&self) -> usize {
        self.replicas.load(Ordering::Relaxed)
    }

    /// Virtual nodes per auxiliary, as the cluster configuration says.
    pub fn virtual_nodes(&self) -> u32 {
        self.virtual_nodes.load(Ordering::Relaxed)
    }

    /// Acknowledgements a write needs: `WRITE_QUORUM`, at most the copies there are.
    pub(crate) fn write_quorum(&self) -> usize {
        self.cfg.write_quorum.min(self.replicas())
    }

    pub(crate) fn read_quorum(&self) -> usize {
        self.cfg.read_quorum.min(self.replicas())
    }

    /// How the cluster places keys (its configuration's `key_hash`).
    pub fn key_hash(&self) -> KeyHash {
        *self.key_hash.read()
    }

    /// Adopts the cluster configuration; a new `virtual_nodes` or `key_hash` rebuilds the
    /// ring (and keeps the old one for reads while keys move, as a membership change does).
    pub fn set_placement(&self, settings: Settings) {
        let Settings { replicas, virtual_nodes, key_hash } = settings;
        let old_replicas = self.replicas.swap(replicas.max(1), Ordering::Relaxed);
        let old_vn = self.virtual_nodes.swap(virtual_nodes.max(1), Ordering::Relaxed);
        let old_hash = std::mem::replace(&mut *self.key_hash.write(), key_hash);
        if old_vn != virtual_nodes || old_hash != key_hash {
            let members: Vec<Member> = self.view().nodes.values().map(|n| n.addr.clone()).collect();
            self.set_members(&members);
        }
        if (old_replicas, old_vn, old_hash) != (replicas, virtual_nodes, key_hash) {
            tracing::info!(replicas, virtual_nodes, key_hash = key_hash.as_str(), "cluster configuration adopted");
        }
    }

    /// The current view.
    pub fn view(&self) -> Arc<View<C::Peer>> {
        self.view.read().clone()
    }

    /// Replaces the membership; peers of unchanged auxiliaries are kept.
    pub fn set_members(&self, members: &[Member]) {
        let timeout = self.cfg.request_timeout;
        let now = self.clock.now_ms();
        let view = self.view().next(members, self.virtual_nodes(), self.key_hash(), now, |m| {
            AuxNode::new(m.clone(), self.connect.connect(m), timeout, self.clock.clone())
        });
        self.metrics.auxiliary_nodes.set(members.len() as i64);
        tracing::info!(auxiliaries = ?view.ring.nodes(), "placement updated");
        *self.view.write() = Arc::new(view);
    }

    /// Sends a versioned write to every answering owner; succeeds once `WRITE_QUORUM` of them
    /// (capped at the owners reachable) confirmed. Returns the answers gathered by then.
    /// The answer of the owner that confirmed as the primary comes first.
    async fn write(&self, key: &[u8], req: Request) -> Result<smallvec::SmallVec<[Response; 2]>, MasterError> {
        self.ensure_recorded().await?;
        let view = self.view();
        // In ring order: the first live owner is the key's primary, where `Router::apply` runs
        // read-modify-write steps; the write is acknowledged only once it holds it.
        let owners = view.owners(key, self.replicas());
        if owners.is_empty() {
            return Err(MasterError::NoAuxiliaries);
        }
        let (live, suspects): (Nodes<_>, Nodes<_>) = owners.iter().cloned().partition(|n| !n.routed_around());
        let targets = if live.is_empty() {
            owners
        } else {
            // Routed around (down): if this write is acknowledged, they miss it.
            for n in &suspects {
                n.note_missed_write();
            }
            live
        };
        // Whether a tombstone took hold is told only by releases that know `Remove`.
        let req = match req {
            Request::Remove { key, version } if !targets.iter().all(|n| n.addr.features.transactions) => {
                Request::Delete { key, version }
            }
            req => req,
        };
        let plan = Plan { need: self.write_quorum(), all_at_once: true, sloppy: true, primary: true };
        let out = try_call_many(targets, req, plan, |_, _| true).await;
        if !out.reached() {
            return Err(MasterError::quorum(out.need, out.counted, &out.errors));
        }
        let mut answers = out.answers;
        if let Some(at) = out.primary {
            answers[..=at].rotate_right(1);
        }
        Ok(answers.into_iter().map(|(_, r)| r).collect())
    }

    /// Writes a value with a new version; returns that version (a floor for the writer's
    /// next reads, see [`Router::read_at_least`]).
    pub async fn put(&self, key: Bytes, value: Bytes, ttl_ms: u64) -> Result<u64, MasterError> {
        let version = self.hlc.next();
        let put = Request::Put { key: key.clone(), value: value.clone(), version, ttl_ms };
        let answers = self.write(&key, put).await?;
        if !matches!(answers.first(), Some(Response::Applied(0))) {
            return Ok(version);
        }
        // The primary kept an entry newer than this version: another master wrote it with a
        // clock ahead of this one's, in the same millisecond, perhaps before this write began,
        // so this write must not hide behind it. The primary orders it as a step instead, on
        // top of whatever it holds; a step is never kept out, so writers racing on a hot key
        // all succeed, in the primary's order, as they would on Redis.
        let op = Op::Set { value, ttl_ms, keep_ttl: false, condition: Condition::Always };
        let (_, written) = self.apply(key, op).await?;
        Ok(written.map_or(version, |w| w.version))
    }

    /// Deletes with a new version; true when some owner held a live value.
    pub async fn delete(&self, key: Bytes) -> Result<bool, MasterError> {
        self.delete_versioned(key).await.map(|(existed, _)| existed)
    }

    /// Like [`Router::delete`], with the version of the delete.
    pub async fn delete_versioned(&self, key: Bytes) -> Result<(bool, u64), MasterError> {
        let version = self.hlc.next();
        let answers = self.write(&key, Request::Remove { key: key.clone(), version }).await?;
        if !matches!(answers.first(), Some(Response::Removed { applied: false, .. })) {
            let existed = answers
                .iter()
                .any(|r| matches!(r, Response::Deleted { existed: true } | Response::Removed { existed: true, .. }));
            return Ok((existed, version));
        }
        // As for a put: the primary kept a newer entry, so the delete runs there as a step
        // (GETDEL), which tells whether a value was there at the point it took effect. When
        // none was, the newer entry is itself a delete marker, at or above this version.
        let (previous, written) = self.apply(key, Op::GetDel).await?;
        Ok((previous.is_some(), written.map_or(version, |w| w.version)))
    }

    /// Sends one request to every auxiliary of the view concurrently, sorted by id.
    pub async fn call_all(&self, req: Request, timeout: Duration) -> Answers<C::Peer> {
        let view = self.view();
        let mut nodes: Vec<_> = view.nodes.values().cloned().collect();
        nodes.sort_by(|a, b| a.addr.id.cmp(&b.addr.id));
        let req = &req;
        futures::future::join_all(nodes.into_iter().map(|n| async move {
            let r = n.call_with_timeout(req, timeout).await;
            (n, r)
        }))
        .await
    }
}
