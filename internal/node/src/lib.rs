//! Wiring of the three roles (master, auxiliary, local) from their configuration, and their
//! shutdown in a written order:
//!
//! 1. leave ZooKeeper (so masters stop routing to this node / clients stop being balanced here),
//! 2. stop accepting and drain in-flight HTTP requests,
//! 3. (auxiliary) hand keys to their new owners, then take a final snapshot,
//! 4. exit.

pub mod aux_ops;
mod recovery;

use aux_ops::{AuxOps, SlowAdapter};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tiercache_cluster::{serve_data, AuxAddr, DataServer, Metrics, Router, RouterConfig};
use tiercache_config::{AuxiliaryConfig, MasterConfig};
use tiercache_discovery::{Discovery, DiscoveryConfig, MemberInfo, Role, ZkStatus};
use tiercache_http::{AuxState, ClusterInfo, Limits, MasterInfo, MasterState};
use tiercache_store::{Store, StoreConfig, SystemClock};
use tokio::sync::watch;

/// Errors that stop a node.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// A port could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Metrics registration failed.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The HTTP server failed.
    #[error("http server: {0}")]
    Http(std::io::Error),
    /// The final snapshot of a stopping auxiliary failed: keys it did not hand off are lost,
    /// and the exit code tells the orchestrator so.
    #[error("final snapshot failed: {0}")]
    FinalSnapshot(String),
}

struct ZkInfo {
    status: Option<watch::Receiver<ZkStatus>>,
    membership: Option<watch::Receiver<Arc<tiercache_discovery::Membership>>>,
    static_masters: Vec<MasterInfo>,
    me: String,
}

impl ClusterInfo for ZkInfo {
    fn masters(&self) -> Vec<MasterInfo> {
        match &self.membership {
            Some(m) => m
                .borrow()
                .masters
                .iter()
                .map(|m| MasterInfo { id: m.id.clone(), address: m.http_addr.clone() })
                .collect(),
            None => self.static_masters.clone(),
        }
    }
    fn zookeeper(&self) -> &'static str {
        match &self.status {
            Some(s) => s.borrow().as_str(),
            None => "disabled",
        }
    }
    fn is_coordinator(&self) -> bool {
        match &self.membership {
            Some(m) => m.borrow().coordinator.as_deref() == Some(self.me.as_str()),
            None => true,
        }
    }
    fn coordinator(&self) -> Option<String> {
        match &self.membership {
            Some(m) => m.borrow().coordinator.clone(),
            None => Some(self.me.clone()),
        }
    }
}

fn store_for(cfg: &AuxiliaryConfig) -> Arc<Store> {
    Arc::new(Store::new(
        StoreConfig { max_entries: cfg.cache_size, max_bytes: cfg.cache_max_bytes, ..StoreConfig::default() },
        Arc::new(SystemClock),
    ))
}

fn router_for(cfg: &MasterConfig, metrics: Arc<Metrics>) -> Arc<Router> {
    Arc::new(Router::new(
        RouterConfig {
            replicas: cfg.replicas,
            write_quorum: cfg.write_quorum,
            read_quorum: cfg.read_quorum,
            virtual_nodes: cfg.virtual_nodes,
            request_timeout: cfg.request_timeout,
            connections: cfg.connections_per_auxiliary,
            token: cfg.common.internal_token.clone(),
        },
        metrics,
    ))
}

/// Connections the kernel queues before they are accepted: a burst beyond the default 128
/// would pay a one-second SYN retransmit. The kernel caps it at `net.core.somaxconn`.
const LISTEN_BACKLOG: i32 = 4096;

async fn bind_tcp(addr: SocketAddr) -> Result<tokio::net::TcpListener, NodeError> {
    tokio::net::TcpListener::from_std(bind_std(addr)?).map_err(|source| NodeError::Bind { addr, source })
}

/// Binds with the backlog set on the socket itself: a listener handed to actix is already
/// listening, so its own backlog setting would not apply.
fn bind_std(addr: SocketAddr) -> Result<std::net::TcpListener, NodeError> {
    use socket2::{Domain, Protocol, Socket, Type};
    let bind = || -> std::io::Result<std::net::TcpListener> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_reuse_address(true)?;
        socket.set_nonblocking(true)?;
        socket.bind(&addr.into())?;
        socket.listen(LISTEN_BACKLOG)?;
        Ok(socket.into())
    };
    bind().map_err(|source| NodeError::Bind { addr, source })
}

fn workers() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)
}

fn aux_addrs(m: &tiercache_discovery::Membership) -> Vec<AuxAddr> {
    m.auxiliaries
        .iter()
        .map(|m| AuxAddr { id: m.id.clone(), data_addr: m.data_addr.clone(), http_addr: m.http_addr.clone() })
        .collect()
}

/// Applies membership changes to the router; the elected coordinator then starts the transfer
/// of keys whose owners changed.
async fn follow_membership(
    mut rx: watch::Receiver<Arc<tiercache_discovery::Membership>>,
    router: Arc<Router>,
    info: Arc<ZkInfo>,
) {
    let mut applied: Vec<AuxAddr> = Vec::new();
    // Bumped on every applied change: a sweep scheduled before it finds it moved and skips.
    let changes = Arc::new(std::sync::atomic::AtomicU64::new(0));
    loop {
        let mut next = aux_addrs(&rx.borrow_and_update());
        if applied.iter().any(|a| !next.contains(a)) {
            // A node re-registering after a session change shows up as a removal and an
            // addition; a short wait keeps such a blip from reshuffling the placement. Requests
            // to a node that really died are routed around meanwhile (suspect marking).
            tokio::time::sleep(Duration::from_millis(1500)).await;
            next = aux_addrs(&rx.borrow_and_update());
        }
        if next != applied {
            // Discovery keeps the last membership while ZooKeeper is unreachable, so an empty
            // list here means the cluster really has no auxiliary.
            router.set_members(&next);
            let previous: Vec<String> = applied.iter().map(|a| a.id.clone()).collect();
            let start_transfer = !applied.is_empty() && !next.is_empty() && info.is_coordinator();
            let change = changes.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            if !next.is_empty() {
                tokio::spawn(sweep_when_settled(router.clone(), info.clone(), changes.clone(), change));
            }
            applied = next;
            if start_transfer {
                let r = router.clone();
                tokio::spawn(async move {
                    // Let every master's view catch up before moving keys.
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    // A transfer that failed part-way (a target restarting, a timeout) is run
                    // again: until it succeeds some keys may have fewer than REPLICAS copies.
                    let mut backoff = Duration::from_secs(2);
                    for attempt in 1..=5 {
                        let results = r.rebalance(previous.clone()).await;
                        if results.iter().all(|(_, res)| res.is_ok()) {
                            break;
                        }
                        tracing::warn!(attempt, "rebalance incomplete; retrying in {backoff:?}");
                        tokio::time::sleep(backoff).await;
                        backoff *= 2;
                    }
                });
            }
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// How long the membership must stay unchanged before the ownership sweep.
const SWEEP_SETTLE: Duration = Duration::from_secs(5);

/// Once the membership has settled (a start from an empty view included: a whole-cluster
/// restart runs no transfer), the coordinator has every auxiliary send the copies it does not
/// own to their owners and drop them, so copies converge to keys × REPLICAS and a later loss
/// of an owner cannot expose an old copy. Cheap when there is nothing to move: one scan.
async fn sweep_when_settled(
    router: Arc<Router>,
    info: Arc<ZkInfo>,
    changes: Arc<std::sync::atomic::AtomicU64>,
    change: u64,
) {
    tokio::time::sleep(SWEEP_SETTLE).await;
    if changes.load(std::sync::atomic::Ordering::Relaxed) != change || !info.is_coordinator() {
        return;
    }
    let current: Vec<String> = router.view().ring.nodes().to_vec();
    tracing::info!("membership settled: sweeping copies on non-owners");
    router.rebalance(current).await;
}

fn master_state(
    cfg: &MasterConfig,
    router: Arc<Router>,
    metrics: Arc<Metrics>,
    cluster: Arc<dyn ClusterInfo>,
) -> MasterState {
    MasterState {
        node_id: cfg.common.node_id.clone(),
        router,
        metrics,
        limits: Limits {
            key_max_bytes: cfg.key_max_bytes,
            value_max_bytes: cfg.value_max_bytes,
            default_ttl_secs: cfg.default_ttl_secs,
        },
        admin_token: cfg.admin_token.clone(),
        cluster,
    }
}

/// Registers this node in ZooKeeper (in the background) and follows the membership.
fn start_discovery(common: &tiercache_config::CommonConfig, role: Role, data_addr: String) -> Discovery {
    Discovery::start(DiscoveryConfig {
        servers: common.zk_servers.clone(),
        root: common.zk_root.clone(),
        session_timeout: common.zk_session_timeout,
        role,
        me: MemberInfo {
            id: common.node_id.clone(),
            http_addr: format!("{}:{}", common.advertise_host, common.port),
            data_addr,
        },
    })
}

/// Runs a master until `shutdown` resolves.
pub async fn run_master(cfg: MasterConfig, shutdown: impl Future<Output = ()>) -> Result<(), NodeError> {
    let metrics = Arc::new(Metrics::new(prometheus::Registry::new())?);
    let router = router_for(&cfg, metrics.clone());
    let http_addr = SocketAddr::new(cfg.common.bind_addr, cfg.common.port);
    let listener = bind_std(http_addr)?;
    let discovery = start_discovery(&cfg.common, Role::Master, String::new());
    let info = Arc::new(ZkInfo {
        status: Some(discovery.status()),
        membership: Some(discovery.membership()),
        static_masters: vec![],
        me: cfg.common.node_id.clone(),
    });
    let follow = tokio::spawn(follow_membership(discovery.membership(), router.clone(), info.clone()));
    let state = master_state(&cfg, router, metrics, info);
    let server = tiercache_http::start_master(state, listener, workers()).map_err(NodeError::Http)?;
    tracing::info!(addr = %http_addr, id = cfg.common.node_id, zk = cfg.common.zk_servers, "master serving");
    shutdown.await;
    tracing::info!("shutting down: leaving ZooKeeper");
    discovery.leave(Duration::from_secs(3)).await;
    tracing::info!("shutting down: draining HTTP requests");
    server.stop().await;
    follow.abort();
    tracing::info!("master stopped");
    Ok(())
}

struct AuxRuntime {
    store: Arc<Store>,
    server: Arc<DataServer>,
    metrics: Arc<Metrics>,
    ops: Arc<AuxOps>,
    data_addr: SocketAddr,
    stop_data: watch::Sender<bool>,
    background: Vec<tokio::task::JoinHandle<()>>,
}

/// Starts the data side of an auxiliary: store (restored from its newest snapshot), data
/// listener, active expiry and periodic snapshots.
async fn start_aux_data(cfg: &AuxiliaryConfig, data_addr: SocketAddr) -> Result<AuxRuntime, NodeError> {
    let store = store_for(cfg);
    let metrics = Arc::new(Metrics::new(prometheus::Registry::new())?);
    if cfg.backup_interval_secs > 0 || cfg.backup_dir.exists() {
        aux_ops::remove_temp_snapshots(&cfg.backup_dir);
        let (s, dir) = (store.clone(), cfg.backup_dir.clone());
        let restored = tokio::task::spawn_blocking(move || aux_ops::restore_newest(&s, &dir)).await.ok().flatten();
        match restored {
            Some((file, n, took)) => {
                tracing::info!(file = %file.display(), entries = n, ms = took.as_millis() as u64, "restored snapshot")
            }
            None => tracing::info!(dir = %cfg.backup_dir.display(), "no snapshot to restore; starting empty"),
        }
    }
    let ops = Arc::new(AuxOps {
        store: store.clone(),
        backup_dir: cfg.backup_dir.clone(),
        node_id: cfg.common.node_id.clone(),
        token: cfg.common.internal_token.clone(),
        metrics: metrics.clone(),
        rt: tokio::runtime::Handle::current(),
        snapshot_lock: Arc::new(tokio::sync::Mutex::new(())),
    });
    let listener = bind_tcp(data_addr).await?;
    let data_addr = listener.local_addr().map_err(|source| NodeError::Bind { addr: data_addr, source })?;
    let (stop_data, stop_rx) = watch::channel(false);
    let server = Arc::new(DataServer::new(
        store.clone(),
        cfg.common.internal_token.clone(),
        metrics.clone(),
        Some(Arc::new(SlowAdapter(ops.clone()))),
    ));
    let mut background = vec![tokio::spawn(serve_data(listener, server.clone(), stop_rx))];
    let s = store.clone();
    background.push(tokio::spawn(async move {
        // A sixteenth of the shards every 250 ms: every expired entry is reclaimed within
        // about 4 s, without one long burst of lock holding.
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tick.tick().await;
            let s = s.clone();
            let step = s.shard_count().div_ceil(16);
            let _ = tokio::task::spawn_blocking(move || s.purge_expired_step(step)).await;
        }
    }));
    if cfg.backup_interval_secs > 0 {
        let o = ops.clone();
        let every = Duration::from_secs(cfg.backup_interval_secs);
        background.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                tick.tick().await;
                if let Err(e) = o.snapshot_now().await {
                    tracing::error!(error = e, "periodic snapshot failed");
                }
            }
        }));
    }
    Ok(AuxRuntime { store, server, metrics, ops, data_addr, stop_data, background })
}

/// One pass of a leaving auxiliary's hand-off to `remaining`. A target that fails is most
/// likely leaving too (a scale-in by several nodes, each with a view that still held the
/// others): the pass is done again without it, so its share goes to owners that stay. The
/// coordinator's rebalance later moves keys to their owners in the final placement.
async fn hand_off_pass(ops: &AuxOps, remaining: &mut Vec<(String, String)>, cfg: &AuxiliaryConfig, pass: u32) {
    loop {
        let e = match ops.transfer(remaining, cfg.virtual_nodes, cfg.replicas, false, &[]).await {
            Ok((moved, _)) => {
                tracing::info!(pass, moved, "handed keys to the remaining auxiliaries");
                return;
            }
            Err(e) => e,
        };
        if remaining.len() <= 1 {
            tracing::error!(pass, error = %e, "hand-off incomplete; the final snapshot keeps the keys");
            return;
        }
        tracing::warn!(pass, error = %e, "hand-off target failed; doing the pass again without it");
        remaining.retain(|(id, _)| *id != e.target);
    }
}

/// Runs an auxiliary until `shutdown` resolves.
pub async fn run_auxiliary(cfg: AuxiliaryConfig, shutdown: impl Future<Output = ()>) -> Result<(), NodeError> {
    let mut data = start_aux_data(&cfg, SocketAddr::new(cfg.common.bind_addr, cfg.data_port)).await?;
    // Restored data (or none) may be older than what the cluster acknowledged meanwhile.
    data.server.recovery.begin("starting");
    let http_addr = SocketAddr::new(cfg.common.bind_addr, cfg.common.port);
    let listener = bind_std(http_addr)?;
    let discovery =
        start_discovery(&cfg.common, Role::Auxiliary, format!("{}:{}", cfg.common.advertise_host, cfg.data_port));
    data.background.extend(recovery::start(&cfg, &data, &discovery));
    let status = discovery.status();
    let state = AuxState {
        node_id: cfg.common.node_id.clone(),
        store: data.store.clone(),
        metrics: data.metrics.clone(),
        zookeeper: Arc::new(move || status.borrow().as_str()),
        recovering: {
            let server = data.server.clone();
            Arc::new(move || server.recovery.recovering().then(|| server.recovery.reason()))
        },
    };
    let server = tiercache_http::start_auxiliary(state, listener).map_err(NodeError::Http)?;
    tracing::info!(http = %http_addr, data = %data.data_addr, id = cfg.common.node_id, "auxiliary serving");
    shutdown.await;

    tracing::info!("shutting down: leaving ZooKeeper");
    let last_view = discovery.membership().borrow().clone();
    discovery.leave(Duration::from_secs(3)).await;
    // Hand off: every key goes to its owners among the remaining auxiliaries, so scale-in
    // loses nothing even with one replica. Masters have dropped us from the placement by now
    // or will within moments; the data port stays open meanwhile for reads still in flight.
    let mut remaining: Vec<(String, String)> = last_view
        .auxiliaries
        .iter()
        .filter(|m| m.id != cfg.common.node_id)
        .map(|m| (m.id.clone(), m.data_addr.clone()))
        .collect();
    if !remaining.is_empty() {
        // Two passes: the first moves the bulk at once; masters take a moment to drop this
        // node from their placement, so the second catches writes that landed meanwhile.
        // Writes close before the second: a master still routing here then finds this node
        // unreachable instead of getting an acknowledgement that no pass would carry.
        for (pass, wait) in [(1, Duration::from_millis(200)), (2, Duration::from_millis(2500))] {
            tokio::time::sleep(wait).await;
            if pass == 2 {
                data.server.close_writes();
            }
            hand_off_pass(&data.ops, &mut remaining, &cfg, pass).await;
        }
    }
    // The final snapshot must hold every write this node acknowledged (the last node of a
    // cluster, or one whose hand-off failed, keeps its keys only there).
    data.server.close_writes();
    tracing::info!("shutting down: draining");
    server.stop().await;
    let _ = data.stop_data.send(true);
    let mut result = Ok(());
    if cfg.backup_interval_secs > 0 {
        match data.ops.snapshot_now().await {
            Ok(s) => tracing::info!(entries = s.entries, "final snapshot written"),
            Err(e) => result = Err(NodeError::FinalSnapshot(e)),
        }
    }
    for t in data.background {
        t.abort();
    }
    tracing::info!("auxiliary stopped");
    result
}

/// Runs one master and three auxiliaries in this process with static membership and no
/// ZooKeeper, until `shutdown` resolves.
pub async fn run_local(
    master: MasterConfig,
    aux: AuxiliaryConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), NodeError> {
    let metrics = Arc::new(Metrics::new(prometheus::Registry::new())?);
    let router = router_for(&master, metrics.clone());
    let mut auxes = Vec::new();
    let mut members = Vec::new();
    for i in 0..3 {
        let mut c = aux.clone();
        c.common.node_id = format!("local-aux-{i}");
        c.backup_dir = aux.backup_dir.join(format!("aux-{i}"));
        let rt = start_aux_data(&c, SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        members.push(AuxAddr {
            id: c.common.node_id.clone(),
            data_addr: rt.data_addr.to_string(),
            http_addr: rt.data_addr.to_string(),
        });
        auxes.push((c, rt));
    }
    router.set_members(&members);
    let http_addr = SocketAddr::new(master.common.bind_addr, master.common.port);
    let listener = bind_std(http_addr)?;
    let info = Arc::new(ZkInfo {
        status: None,
        membership: None,
        static_masters: vec![MasterInfo { id: master.common.node_id.clone(), address: http_addr.to_string() }],
        me: master.common.node_id.clone(),
    });
    let state = master_state(&master, router, metrics, info);
    let server = tiercache_http::start_master(state, listener, workers()).map_err(NodeError::Http)?;
    tracing::info!(addr = %http_addr, "local mode: one master and three auxiliaries serving");
    shutdown.await;
    server.stop().await;
    for (c, rt) in auxes {
        let _ = rt.stop_data.send(true);
        if c.backup_interval_secs > 0 {
            if let Err(e) = rt.ops.snapshot_now().await {
                tracing::error!(error = e, "final snapshot failed");
            }
        }
        for t in rt.background {
            t.abort();
        }
    }
    Ok(())
}
