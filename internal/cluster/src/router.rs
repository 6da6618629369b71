//! The master's routing: the current view (ring + pooled clients), quorum reads and writes
//! with hybrid-logical-clock versions, read repair, and suspect marking so a failing
//! auxiliary is routed around before ZooKeeper notices it is gone.

use crate::{client::AuxClient, hlc::Hlc, metrics::Metrics, ClusterError};
use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tiercache_placement::Ring;
use tiercache_protocol::{Found, Request, Response, WireEntry};
use tiercache_store::last_write_wins;
use tokio::runtime::Handle;

/// How long an auxiliary stays suspect after a failed request.
const SUSPECT_FOR_MS: u64 = 3_000;

/// Routing settings (from the master's configuration).
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
    /// Pooled connections per auxiliary.
    pub connections: usize,
    /// Shared secret.
    pub token: String,
}

/// An auxiliary as the membership lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuxAddr {
    /// Its `NODE_ID`.
    pub id: String,
    /// host:port of its internal protocol.
    pub data_addr: String,
    /// host:port of its HTTP server.
    pub http_addr: String,
}

/// Health of an auxiliary as this master sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeStatus {
    /// Member and answering.
    Up,
    /// Member but recent requests failed.
    Suspect,
}

impl NodeStatus {
    /// The word shown in `/nodes`.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeStatus::Up => "up",
            NodeStatus::Suspect => "suspect",
        }
    }
}

/// One auxiliary in the view.
pub struct AuxNode {
    /// Addresses.
    pub addr: AuxAddr,
    /// One pooled client per calling thread, created lazily on that thread's runtime: an
    /// actix worker then talks to auxiliaries through connections driven by its own thread,
    /// with no cross-thread wake-up on the hot path.
    clients: RwLock<HashMap<std::thread::ThreadId, Arc<AuxClient>>>,
    token: String,
    connections: usize,
    timeout: Duration,
    suspect_until_ms: AtomicU64,
    /// Until when reads ask this node last: it answered as recovering (may miss writes).
    recovering_until_ms: AtomicU64,
}

/// How long a node that answered as recovering is asked last by reads before being tried
/// first again (its catch-up usually takes a few seconds).
const RECOVERING_FOR_MS: u64 = 1_000;

impl AuxNode {
    /// Current status.
    pub fn status(&self) -> NodeStatus {
        if self.suspect_until_ms.load(Ordering::Relaxed) > crate::now_ms() {
            NodeStatus::Suspect
        } else {
            NodeStatus::Up
        }
    }

    fn recovering(&self) -> bool {
        self.recovering_until_ms.load(Ordering::Relaxed) > crate::now_ms()
    }

    fn set_recovering(&self, yes: bool) {
        let until = if yes { crate::now_ms() + RECOVERING_FOR_MS } else { 0 };
        self.recovering_until_ms.store(until, Ordering::Relaxed);
    }

    fn mark(&self, err: &ClusterError) {
        if err.is_unreachable() {
            self.suspect_until_ms.store(crate::now_ms() + SUSPECT_FOR_MS, Ordering::Relaxed);
        }
    }

    /// The calling thread's client (must be called from within a tokio runtime).
    pub fn client(&self) -> Arc<AuxClient> {
        let tid = std::thread::current().id();
        if let Some(c) = self.clients.read().ok().and_then(|m| m.get(&tid).cloned()) {
            return c;
        }
        let c = Arc::new(AuxClient::new(
            &Handle::current(),
            &self.addr.id,
            &self.addr.data_addr,
            &self.token,
            self.connections,
            self.timeout,
        ));
        match self.clients.write() {
            Ok(mut m) => m.entry(tid).or_insert(c).clone(),
            Err(_) => c,
        }
    }

    async fn call(&self, req: &Request) -> Result<Response, ClusterError> {
        let r = self.client().call(req).await;
        match &r {
            Ok(_) => self.suspect_until_ms.store(0, Ordering::Relaxed),
            Err(e) => self.mark(e),
        }
        r
    }
}

/// How long after a membership change reads that miss fall back to the previous owners:
/// long enough for the transfer of a large store to finish.
const FALLBACK_MS: u64 = 60_000;

/// The placement before the last change, kept while keys move.
#[derive(Clone)]
pub struct Previous {
    /// The old ring.
    pub ring: Ring,
    /// The old auxiliaries (some may be leaving or gone).
    pub nodes: HashMap<String, Arc<AuxNode>>,
    /// Unix ms after which the fallback stops.
    pub until_ms: u64,
    /// Unix ms of the change.
    pub since_ms: u64,
}

/// How long after a change departed auxiliaries are still asked: a gracefully leaving one
/// hands its keys over within a few seconds; after that only current members are asked.
const DEPARTED_FALLBACK_MS: u64 = 5_000;

/// A placement and the clients of its auxiliaries.
pub struct View {
    /// The ring over the auxiliaries.
    pub ring: Ring,
    /// Auxiliaries by id.
    pub nodes: HashMap<String, Arc<AuxNode>>,
    /// The previous placement while a rebalance may still be moving keys.
    pub previous: Option<Previous>,
}

/// Progress of rebalance transfers, as `/nodes` shows it.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RebalanceStatus {
    /// A transfer is running now.
    pub running: bool,
    /// Transfers completed since start.
    pub runs: u64,
    /// Keys moved by the last transfer.
    pub last_moved: u64,
    /// Duration of the last transfer in ms.
    pub last_duration_ms: u64,
    /// Errors of the last transfer, if any.
    pub last_errors: Vec<String>,
}

impl View {
    fn owners(&self, key: &[u8], replicas: usize) -> Vec<Arc<AuxNode>> {
        self.ring.owners(key, replicas).into_iter().filter_map(|id| self.nodes.get(id).cloned()).collect()
    }
}

/// Routes client operations to owner auxiliaries.
pub struct Router {
    cfg: RouterConfig,
    view: RwLock<Arc<View>>,
    hlc: Hlc,
    metrics: Arc<Metrics>,
    rebalance: std::sync::Mutex<RebalanceStatus>,
}

/// The answer of a quorum read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadResult {
    /// The newest version is a value.
    Hit(Bytes),
    /// No owner has it (or the newest version is a delete).
    Miss,
}

impl Router {
    /// A router with an empty view; connections are made lazily on the runtime of each
    /// calling thread.
    pub fn new(cfg: RouterConfig, metrics: Arc<Metrics>) -> Router {
        Router {
            cfg,
            view: RwLock::new(Arc::new(View { ring: Ring::default(), nodes: HashMap::new(), previous: None })),
            hlc: Hlc::new(),
            metrics,
            rebalance: std::sync::Mutex::new(RebalanceStatus::default()),
        }
    }

    /// The routing settings.
    pub fn config(&self) -> &RouterConfig {
        &self.cfg
    }

    /// The current view.
    pub fn view(&self) -> Arc<View> {
        match self.view.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Replaces the membership; clients of unchanged auxiliaries are kept.
    pub fn set_members(&self, members: &[AuxAddr]) {
        let old = self.view();
        let mut nodes = HashMap::new();
        for m in members {
            let node = match old.nodes.get(&m.id) {
                Some(n) if n.addr == *m => n.clone(),
                _ => Arc::new(AuxNode {
                    clients: RwLock::new(HashMap::new()),
                    token: self.cfg.token.clone(),
                    connections: self.cfg.connections,
                    timeout: self.cfg.request_timeout,
                    addr: m.clone(),
                    suspect_until_ms: AtomicU64::new(0),
                    recovering_until_ms: AtomicU64::new(0),
                }),
            };
            nodes.insert(m.id.clone(), node);
        }
        let ids: Vec<&str> = members.iter().map(|m| m.id.as_str()).collect();
        let ring = Ring::new(&ids, self.cfg.virtual_nodes);
        let changed = old.ring.nodes() != ring.nodes();
        let previous = if changed && !old.ring.is_empty() {
            let now = crate::now_ms();
            Some(Previous {
                ring: old.ring.clone(),
                nodes: old.nodes.clone(),
                until_ms: now + FALLBACK_MS,
                since_ms: now,
            })
        } else {
            old.previous.clone()
        };
        let view = Arc::new(View { ring, nodes, previous });
        self.metrics.auxiliary_nodes.set(members.len() as i64);
        tracing::info!(auxiliaries = ?ids, "placement updated");
        match self.view.write() {
            Ok(mut g) => *g = view,
            Err(p) => *p.into_inner() = view,
        }
    }

    /// Owners ordered for use: answering ones first, then recovering ones, suspects last.
    fn ordered_owners(&self, view: &View, key: &[u8]) -> Vec<Arc<AuxNode>> {
        let mut owners = view.owners(key, self.cfg.replicas);
        owners.sort_by_key(|n| (n.status() == NodeStatus::Suspect, n.recovering()));
        owners
    }

    /// Quorum read: asks owners until `READ_QUORUM` of them answered, returns the newest
    /// version and repairs owners that answered an older one. An owner that is recovering (it
    /// may have missed acknowledged writes) is heard but not counted: the next owner is asked
    /// too. Only when every owner has been asked and too few counted is the newest of what
    /// was heard returned (two faults at once: best effort).
    pub async fn get(&self, key: Bytes) -> Result<ReadResult, ClusterError> {
        let view = self.view();
        let owners = self.ordered_owners(&view, &key);
        if owners.is_empty() {
            return Err(ClusterError::NoAuxiliaries);
        }
        let need = self.cfg.read_quorum.min(owners.len());
        let req = Request::Get { key: key.clone() };
        let mut answers: Vec<(Arc<AuxNode>, Option<Found>)> = Vec::with_capacity(need);
        let mut counted = 0;
        let mut errors = Vec::new();
        let mut next = 0;
        let mut inflight = FuturesUnordered::new();
        while counted < need {
            while inflight.len() + counted < need && next < owners.len() {
                let node = owners[next].clone();
                let req = &req;
                inflight.push(async move {
                    let r = node.call(req).await;
                    (node, r)
                });
                next += 1;
            }
            let Some((node, r)) = inflight.next().await else { break };
            match r {
                Ok(Response::Value(found)) => {
                    node.set_recovering(false);
                    answers.push((node, found));
                    counted += 1;
                }
                Ok(Response::Recovering(found)) => {
                    node.set_recovering(true);
                    answers.push((node, found));
                }
                Ok(other) => errors.push(format!("{}: unexpected {other:?}", node.addr.id)),
                Err(e) => errors.push(e.to_string()),
            }
        }
        if answers.is_empty() {
            return Err(ClusterError::Quorum { need, got: 0, detail: errors.join("; ") });
        }
        if counted < need && answers.len() < need {
            return Err(ClusterError::Quorum { need, got: answers.len(), detail: errors.join("; ") });
        }
        let newest = answers
            .iter()
            .filter_map(|(_, f)| f.as_ref())
            .fold(None::<&Found>, |best, f| match best {
                Some(b) if !last_write_wins(f.version, f.value.as_deref(), b.version, b.value.as_deref()) => Some(b),
                _ => Some(f),
            })
            .cloned();
        if let Some(newest) = &newest {
            self.hlc.observe(newest.version);
            for (node, f) in &answers {
                if f.as_ref().is_none_or(|f| f.version != newest.version) {
                    self.repair(node.clone(), &key, newest);
                }
            }
        }
        let newest = if newest.is_some() { newest } else { self.fallback(&view, &key, &answers).await };
        Ok(match newest.and_then(|f| f.value) {
            Some(v) => ReadResult::Hit(v),
            None => ReadResult::Miss,
        })
    }

    /// While keys move after a membership change, a key no current owner has is looked up on
    /// its previous owners; when found it is copied to the current owners at once.
    async fn fallback(&self, view: &View, key: &Bytes, asked: &[(Arc<AuxNode>, Option<Found>)]) -> Option<Found> {
        let now = crate::now_ms();
        let prev = view.previous.as_ref().filter(|p| p.until_ms > now)?;
        let departed_ok = now < prev.since_ms + DEPARTED_FALLBACK_MS;
        let current = view.owners(key, self.cfg.replicas);
        let req = Request::Get { key: key.clone() };
        // A short budget: this only runs on a miss, and a dead previous owner must not turn
        // every miss into a timeout.
        let budget = self.cfg.request_timeout.min(Duration::from_millis(200));
        for id in prev.ring.owners(key, self.cfg.replicas) {
            if asked.iter().any(|(n, _)| n.addr.id == id) {
                continue;
            }
            let node = match view.nodes.get(id) {
                Some(n) => n,
                None if departed_ok => match prev.nodes.get(id) {
                    Some(n) => n,
                    None => continue,
                },
                None => continue,
            };
            if node.status() == NodeStatus::Suspect {
                continue;
            }
            let answer = node.client().call_with_timeout(&req, budget).await;
            if let Err(e) = &answer {
                node.mark(e);
            }
            if let Ok(Response::Value(Some(found)) | Response::Recovering(Some(found))) = answer {
                for owner in &current {
                    self.repair(owner.clone(), key, &found);
                }
                return Some(found);
            }
        }
        None
    }

    fn repair(&self, node: Arc<AuxNode>, key: &Bytes, f: &Found) {
        let entry = WireEntry { key: key.clone(), value: f.value.clone(), version: f.version, ttl_ms: f.ttl_ms };
        let metrics = self.metrics.clone();
        // On the calling thread's runtime, through its own connections.
        tokio::spawn(async move {
            if let Ok(Response::Applied(n)) = node.call(&Request::PutBatch { entries: vec![entry] }).await {
                metrics.read_repairs.inc_by(n);
            }
        });
    }

    /// Sends a versioned write to every answering owner; succeeds once `WRITE_QUORUM` of them
    /// (capped at the owners reachable) confirmed. Returns the answers gathered by then.
    async fn write(&self, key: &[u8], req: Request) -> Result<Vec<Response>, ClusterError> {
        let view = self.view();
        let owners = self.ordered_owners(&view, key);
        if owners.is_empty() {
            return Err(ClusterError::NoAuxiliaries);
        }
        let live: Vec<_> = owners.iter().filter(|n| n.status() == NodeStatus::Up).cloned().collect();
        let targets = if live.is_empty() { owners } else { live };
        let need = self.cfg.write_quorum.min(targets.len());
        let req = Arc::new(req);
        let mut inflight: FuturesUnordered<_> = targets
            .into_iter()
            .map(|node| {
                let req = req.clone();
                async move { node.call(&req).await }
            })
            .collect();
        let mut oks = Vec::new();
        let mut errors = Vec::new();
        let mut need = need;
        while let Some(r) = inflight.next().await {
            match r {
                Ok(resp) => oks.push(resp),
                Err(e) => {
                    // An owner found unreachable just now is routed around like a known
                    // suspect: the quorum counts among the owners that can answer.
                    if e.is_unreachable() && need > 1 {
                        need -= 1;
                    }
                    errors.push(e.to_string());
                }
            }
            if oks.len() >= need && inflight.is_empty() {
                break;
            }
            if oks.len() >= need {
                // Quorum reached: let the slower replicas finish in the background.
                tokio::spawn(async move { while inflight.next().await.is_some() {} });
                break;
            }
        }
        if oks.len() < need || oks.is_empty() {
            return Err(ClusterError::Quorum { need, got: oks.len(), detail: errors.join("; ") });
        }
        Ok(oks)
    }

    /// Writes a value with a new version.
    pub async fn put(&self, key: Bytes, value: Bytes, ttl_ms: u64) -> Result<(), ClusterError> {
        let version = self.hlc.next();
        let oks = self.write(&key.clone(), Request::Put { key, value, version, ttl_ms }).await?;
        if let Some(Response::Error(e)) = oks.first() {
            return Err(ClusterError::Remote(String::new(), e.clone()));
        }
        Ok(())
    }

    /// Deletes with a new version; true when some owner held a live value.
    pub async fn delete(&self, key: Bytes) -> Result<bool, ClusterError> {
        let version = self.hlc.next();
        let oks = self.write(&key.clone(), Request::Delete { key, version }).await?;
        Ok(oks.iter().any(|r| matches!(r, Response::Deleted { existed: true })))
    }

    /// Sends one request to every auxiliary of the view concurrently.
    pub async fn call_all(
        &self,
        req: Request,
        timeout: Duration,
    ) -> Vec<(Arc<AuxNode>, Result<Response, ClusterError>)> {
        let view = self.view();
        let mut nodes: Vec<_> = view.nodes.values().cloned().collect();
        nodes.sort_by(|a, b| a.addr.id.cmp(&b.addr.id));
        let futs = nodes.into_iter().map(|n| {
            let req = req.clone();
            async move {
                let r = n.client().call_with_timeout(&req, timeout).await;
                (n, r)
            }
        });
        futures::future::join_all(futs).await
    }
}

impl Router {
    /// Current rebalance progress.
    pub fn rebalance_status(&self) -> RebalanceStatus {
        match self.rebalance.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn with_status(&self, f: impl FnOnce(&mut RebalanceStatus)) {
        match self.rebalance.lock() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    /// Asks every auxiliary of the current view to send its keys to their owners under this
    /// view (only to owners that are new relative to `previous`, or to all when it is empty)
    /// and to drop what it no longer owns. Returns the answers per auxiliary.
    pub async fn rebalance(&self, previous: Vec<String>) -> Vec<(Arc<AuxNode>, Result<Response, ClusterError>)> {
        let started = std::time::Instant::now();
        let view = self.view();
        let mut members: Vec<(String, String)> =
            view.nodes.values().map(|n| (n.addr.id.clone(), n.addr.data_addr.clone())).collect();
        members.sort();
        self.with_status(|s| s.running = true);
        let req = Request::Rebalance {
            members,
            virtual_nodes: self.cfg.virtual_nodes,
            replicas: self.cfg.replicas as u32,
            drop_unowned: true,
            previous,
        };
        let results = self.call_all(req, Duration::from_secs(600)).await;
        let mut moved = 0;
        let mut errors = Vec::new();
        for (node, r) in &results {
            match r {
                Ok(Response::Rebalanced { moved: m, .. }) => moved += m,
                Ok(other) => errors.push(format!("{}: unexpected {other:?}", node.addr.id)),
                Err(e) => errors.push(e.to_string()),
            }
        }
        self.metrics.rebalance_keys_moved.inc_by(moved);
        let ms = started.elapsed().as_millis() as u64;
        tracing::info!(moved, ms, errors = errors.len(), "rebalance finished");
        self.with_status(|s| {
            s.running = false;
            s.runs += 1;
            s.last_moved = moved;
            s.last_duration_ms = ms;
            s.last_errors = errors;
        });
        results
    }
}
