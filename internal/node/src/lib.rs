//! Wiring only: builds each role (master, auxiliary, local) from its configuration, connects
//! it to ZooKeeper and HTTP, and stops it in a written order:
//!
//! 1. leave ZooKeeper (so masters stop routing to this node / clients stop being balanced here),
//! 2. (auxiliary) hand keys to their new owners, refusing writes from the last pass on,
//! 3. stop accepting and drain in-flight HTTP requests,
//! 4. (auxiliary) close the data port and take a final snapshot,
//! 5. exit (non-zero when the final snapshot failed).

/// The configuration the binary parses before starting a role.
pub use tiercache_config as config;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tiercache_auxiliary::{Auxiliary, ClusterFeed, Settings};
use tiercache_config::{AuxiliaryConfig, MasterConfig};
use tiercache_discovery::{
    ClusterConfig, ConfigWriter, Discovery, DiscoveryConfig, MemberInfo, Membership, Role, ZkStatus,
};
use tiercache_http::AuxState;
use tiercache_master::{
    self as master, AuxAddr, ClusterInfo, ConfigChangeError, Limits, MasterInfo, MasterState, Metrics, Placement,
    Router, RouterConfig, WireConnect, ZkState,
};
use tokio::sync::watch;

/// Errors that stop a node.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// A port could not be bound.
    #[error("{var}: cannot listen on {addr}: {source}")]
    Bind {
        /// The variable that chose the port.
        var: &'static str,
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
    /// This master's environment disagrees with the cluster configuration stored in
    /// ZooKeeper: one of them is a mistake, and guessing would put keys on the wrong owners.
    #[error(
        "{var}={env} in this master's environment, but the cluster configuration ({path} in ZooKeeper) has \
         {var}={stored}: unset {var} or set it to {stored} (PUT /config changes REPLICAS for the whole cluster)"
    )]
    ClusterConfig {
        /// The variable.
        var: &'static str,
        /// Its value here.
        env: String,
        /// The cluster's value.
        stored: String,
        /// The znode.
        path: String,
    },
    /// A quorum of this master's environment is larger than the cluster's `REPLICAS`.
    #[error("{var}={quorum} is more than the cluster's REPLICAS={replicas} ({path} in ZooKeeper): lower {var}")]
    QuorumAboveReplicas {
        /// The variable.
        var: &'static str,
        /// Its value.
        quorum: usize,
        /// The cluster's copies per key.
        replicas: usize,
        /// The znode.
        path: String,
    },
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
    /// The stored cluster configuration, and the handle that rewrites it (None in local mode,
    /// whose placement is `local`).
    config: Option<(watch::Receiver<Option<ClusterConfig>>, ConfigWriter)>,
    local: Placement,
}

impl ClusterInfo for ZkInfo {
    fn placement(&self) -> Option<Placement> {
        match &self.config {
            Some((rx, _)) => rx.borrow().map(|c| Placement {
                replicas: c.replicas,
                virtual_nodes: c.virtual_nodes,
                replicated_for: c.replicated_for,
            }),
            None => Some(self.local),
        }
    }
    fn set_replicas(
        &self,
        replicas: usize,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<(), ConfigChangeError>> + Send + 'static>> {
        let Some((_, discovery)) = self.config.clone() else {
            return Box::pin(async { Err(ConfigChangeError::NoZooKeeper) });
        };
        let fallback = ClusterConfig {
            replicas: self.local.replicas,
            virtual_nodes: self.local.virtual_nodes,
            replicated_for: self.local.replicas,
        };
        Box::pin(async move {
            // An unreadable stored value is replaced (with this master's VIRTUAL_NODES).
            discovery
                .update(|stored| Some(ClusterConfig { replicas, ..stored.unwrap_or(fallback) }))
                .await
                .map(drop)
                .map_err(|e| ConfigChangeError::Store(e.to_string()))
        })
    }
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
    fn zookeeper(&self) -> ZkState {
        match self.status.as_ref().map(|s| *s.borrow()) {
            None => ZkState::Disabled,
            Some(ZkStatus::Connecting) => ZkState::Connecting,
            Some(ZkStatus::Connected) => ZkState::Connected,
            Some(ZkStatus::Disconnected) => ZkState::Disconnected,
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

fn router_for(cfg: &MasterConfig, metrics: Arc<Metrics>) -> Arc<Router> {
    Arc::new(Router::new(
        RouterConfig {
            replicas: cfg.replicas,
            write_quorum: cfg.write_quorum,
            read_quorum: cfg.read_quorum,
            virtual_nodes: cfg.virtual_nodes,
            request_timeout: cfg.request_timeout,
        },
        WireConnect { token: cfg.common.internal_token.clone(), connections: 1 },
        metrics,
    ))
}

fn settings_for(cfg: &AuxiliaryConfig) -> Settings {
    Settings {
        node_id: cfg.common.node_id.clone(),
        token: cfg.common.internal_token.clone(),
        cache_size: cfg.cache_size,
        cache_max_bytes: cfg.cache_max_bytes,
        backup_dir: cfg.backup_dir.clone(),
        backup_interval_secs: cfg.backup_interval_secs,
        restore: cfg.restore,
    }
}

/// Connections the kernel queues before they are accepted: a burst beyond the default 128
/// would pay a one-second SYN retransmit. The kernel caps it at `net.core.somaxconn`.
const LISTEN_BACKLOG: i32 = 4096;

fn bind_tcp(var: &'static str, addr: SocketAddr) -> Result<tokio::net::TcpListener, NodeError> {
    tokio::net::TcpListener::from_std(bind_std(var, addr)?).map_err(|source| NodeError::Bind { var, addr, source })
}

/// Binds with the backlog set on the socket itself: a listener handed to actix is already
/// listening, so its own backlog setting would not apply.
fn bind_std(var: &'static str, addr: SocketAddr) -> Result<std::net::TcpListener, NodeError> {
    use socket2::{Domain, Protocol, Socket, Type};
    let bind = || -> std::io::Result<std::net::TcpListener> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_reuse_address(true)?;
        socket.set_nonblocking(true)?;
        socket.bind(&addr.into())?;
        socket.listen(LISTEN_BACKLOG)?;
        Ok(socket.into())
    };
    bind().map_err(|source| NodeError::Bind { var, addr, source })
}

/// Where RESP listens, for the startup line.
fn resp_addr(cfg: &MasterConfig) -> String {
    match cfg.redis_port {
        0 => "off".to_string(),
        p => SocketAddr::new(cfg.common.bind_addr, p).to_string(),
    }
}

/// Where snapshots go, for the startup line.
fn snapshots_where(cfg: &AuxiliaryConfig) -> String {
    if !cfg.restore {
        return "off: none written, none restored (LOCAL_PERSIST=0)".to_string();
    }
    match cfg.backup_interval_secs {
        0 => format!("off (restored from {} at start when present)", cfg.backup_dir.display()),
        n => format!("{} every {n} s, restored at start", cfg.backup_dir.display()),
    }
}

/// The RESP front end, when `REDIS_PORT` is not 0: stopping it is a send on the sender, and
/// the task ends once its connections have drained.
type RespFrontEnd = (watch::Sender<bool>, tokio::task::JoinHandle<()>);

fn start_resp(cfg: &MasterConfig, state: &Arc<MasterState>) -> Result<Option<RespFrontEnd>, NodeError> {
    if cfg.redis_port == 0 {
        return Ok(None);
    }
    let addr = SocketAddr::new(cfg.common.bind_addr, cfg.redis_port);
    let listener = bind_tcp("REDIS_PORT", addr)?;
    let (stop, stopped) = watch::channel(false);
    let max_clients = tiercache_resp::client_limit(cfg.max_clients);
    let task = tokio::spawn(tiercache_resp::serve(listener, state.clone(), stopped, max_clients));
    tracing::info!(%addr, max_clients, "RESP serving");
    Ok(Some((stop, task)))
}

fn aux_addrs(m: &Arc<Membership>) -> Vec<AuxAddr> {
    m.auxiliaries
        .iter()
        .map(|m| AuxAddr { id: m.id.clone(), data_addr: m.data_addr.clone(), http_addr: m.http_addr.clone() })
        .collect()
}

/// A watch of `f(value)`, following one of discovery's.
fn derived<S: Send + Sync + 'static, T: PartialEq + Send + Sync + 'static>(
    mut rx: watch::Receiver<S>,
    f: impl Fn(&S) -> T + Send + 'static,
) -> watch::Receiver<T> {
    let (tx, out) = watch::channel(f(&rx.borrow_and_update()));
    tokio::spawn(async move {
        while rx.changed().await.is_ok() {
            let next = f(&rx.borrow_and_update());
            tx.send_if_modified(|cur| {
                let changed = *cur != next;
                *cur = next;
                changed
            });
        }
    });
    out
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
        client_password: cfg.client_password.clone(),
        cluster,
        data_threads: Default::default(),
        refresh_metrics: None,
    }
}

/// Registers this node in ZooKeeper (in the background) and follows the membership; a master
/// publishes `publish` as the cluster configuration when none is stored.
fn start_discovery(
    common: &tiercache_config::CommonConfig,
    role: Role,
    data_addr: String,
    publish: Option<ClusterConfig>,
) -> Discovery {
    Discovery::start(DiscoveryConfig {
        publish,
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

/// Which build runs: shown at start, in `tiercache_build_info` and in `INFO server`.
#[derive(Debug, Clone, Copy)]
pub struct Build {
    /// The crate version.
    pub version: &'static str,
    /// The git commit it was built from ("unknown" when not known).
    pub commit: &'static str,
}

/// A warning when the admin API is open to the network: anyone who reaches `addr` may flush.
fn warn_if_admin_open(cfg: &MasterConfig, addr: SocketAddr) {
    if cfg.admin_token.is_none() && !addr.ip().is_loopback() {
        tracing::warn!(
            %addr,
            "the admin API (POST /flush, /backup, /rebalance, PUT /config) is open to anyone who reaches this \
             address: set ADMIN_TOKEN, or BIND_ADDR=127.0.0.1"
        );
    }
}

/// Runs a master until `shutdown` resolves.
pub async fn run_master(cfg: MasterConfig, build: Build, shutdown: impl Future<Output = ()>) -> Result<(), NodeError> {
    let metrics = Arc::new(Metrics::for_master(prometheus::Registry::new())?);
    metrics.build_info(build.version, build.commit)?;
    let router = router_for(&cfg, metrics.clone());
    let http_addr = SocketAddr::new(cfg.common.bind_addr, cfg.common.port);
    let listener = bind_std("PORT", http_addr)?;
    // A new cluster has nothing to re-replicate.
    let publish =
        ClusterConfig { replicas: cfg.replicas, virtual_nodes: cfg.virtual_nodes, replicated_for: cfg.replicas };
    let discovery = start_discovery(&cfg.common, Role::Master, String::new(), Some(publish));
    let info = Arc::new(ZkInfo {
        status: Some(discovery.status()),
        membership: Some(discovery.membership()),
        static_masters: vec![],
        me: cfg.common.node_id.clone(),
        config: Some((discovery.cluster_config(), discovery.config_writer())),
        local: Placement { replicas: cfg.replicas, virtual_nodes: cfg.virtual_nodes, replicated_for: cfg.replicas },
    });
    router.set_write_record(Arc::new(ZkWriteRecord(discovery.config_writer())));
    let members = derived(discovery.membership(), aux_addrs);
    let coordinator = info.clone();
    let is_coordinator: Arc<dyn Fn() -> bool + Send + Sync> = Arc::new(move || coordinator.is_coordinator());
    let (fatal_tx, fatal) = tokio::sync::oneshot::channel();
    let follow = tokio::spawn(follow_cluster_config(
        cfg.clone(),
        discovery.cluster_config(),
        discovery.config_writer(),
        router.clone(),
        members,
        is_coordinator,
        fatal_tx,
    ));
    let state = Arc::new(master_state(&cfg, router, metrics, info));
    // The HTTP workers are the data threads the RESP connections are served on.
    let server = tiercache_http::start_master(state.clone(), listener, cfg.data_threads).map_err(NodeError::Http)?;
    let resp = start_resp(&cfg, &state)?;
    tracing::info!(
        version = build.version,
        commit = build.commit,
        http = %http_addr,
        redis = %resp_addr(&cfg),
        id = cfg.common.node_id,
        zk = cfg.common.zk_servers,
        "master serving (it holds no data)"
    );
    warn_if_admin_open(&cfg, http_addr);
    let fatal = tokio::select! {
        _ = shutdown => None,
        Ok(e) = fatal => Some(e),
    };
    // The written order: stop accepting (RESP here, HTTP below), leave ZooKeeper, drain.
    let resp = resp.map(|(stop, task)| {
        let _ = stop.send(true);
        task
    });
    tracing::info!("shutting down: leaving ZooKeeper");
    follow.abort();
    discovery.leave(Duration::from_secs(3)).await;
    tracing::info!("shutting down: draining HTTP requests and RESP connections");
    server.stop().await;
    if let Some(task) = resp {
        let _ = task.await;
    }
    tracing::info!("master stopped");
    fatal.map_or(Ok(()), Err)
}

/// Checks this master's environment against the stored cluster configuration, adopts it, then
/// follows the membership (rebalancing as the coordinator) and later changes of the
/// configuration (`PUT /config`: the coordinator re-replicates).
async fn follow_cluster_config(
    cfg: MasterConfig,
    mut config: watch::Receiver<Option<ClusterConfig>>,
    writer: ConfigWriter,
    router: Arc<Router>,
    members: watch::Receiver<Vec<AuxAddr>>,
    is_coordinator: Arc<dyn Fn() -> bool + Send + Sync>,
    fatal: tokio::sync::oneshot::Sender<NodeError>,
) {
    let path = format!("{}/config", cfg.common.zk_root);
    let Ok(first) = config.wait_for(Option::is_some).await.map(|c| *c) else { return };
    let Some(first) = first else { return };
    if let Err(e) = check_environment(&cfg, &first, &path) {
        let _ = fatal.send(e);
        return;
    }
    router.set_placement(first.replicas, first.virtual_nodes);
    let current = Arc::new(parking_lot::Mutex::new(first));
    let changes = async {
        while config.changed().await.is_ok() {
            let Some(next) = *config.borrow_and_update() else { continue };
            let mut cur = current.lock();
            if next.virtual_nodes != cur.virtual_nodes {
                // Every key would move with no rebalance to follow it: keep routing as before.
                tracing::error!(
                    stored = next.virtual_nodes,
                    running = cur.virtual_nodes,
                    "VIRTUAL_NODES changed in ZooKeeper; ignored (it cannot change on a running cluster)"
                );
                continue;
            }
            router.set_placement(next.replicas, next.virtual_nodes);
            *cur = next;
        }
    };
    // The coordinator re-replicates whenever the stored REPLICAS is ahead of the last one every
    // key was copied for: right after a PUT /config, and again on the next coordinator when
    // the one that should have done it stopped first.
    let rereplicate = async {
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        loop {
            tick.tick().await;
            let c = *current.lock();
            if c.replicated_for == c.replicas || !is_coordinator() {
                continue;
            }
            tracing::info!(from = c.replicated_for, to = c.replicas, "REPLICAS changed: re-replicating");
            if master::rebalance_with_retries(router.clone(), vec![]).await {
                // Recorded only if REPLICAS did not change again meanwhile.
                let done = writer
                    .update(|stored| {
                        stored
                            .filter(|s| s.replicas == c.replicas)
                            .map(|s| ClusterConfig { replicated_for: c.replicas, ..s })
                    })
                    .await;
                if let Err(e) = done {
                    tracing::warn!(error = %e, "could not record the re-replication; it will run again");
                }
            }
        }
    };
    tokio::select! {
        _ = master::follow(members, router.clone(), is_coordinator.clone()) => {}
        _ = changes => {}
        _ = rereplicate => {}
    }
}

fn check_environment(cfg: &MasterConfig, stored: &ClusterConfig, path: &str) -> Result<(), NodeError> {
    let mismatch = |var, env: String, stored: String| NodeError::ClusterConfig { var, env, stored, path: path.into() };
    if cfg.replicas_from_env && cfg.replicas != stored.replicas {
        return Err(mismatch("REPLICAS", cfg.replicas.to_string(), stored.replicas.to_string()));
    }
    if cfg.virtual_nodes_from_env && cfg.virtual_nodes != stored.virtual_nodes {
        return Err(mismatch("VIRTUAL_NODES", cfg.virtual_nodes.to_string(), stored.virtual_nodes.to_string()));
    }
    for (var, quorum) in [("WRITE_QUORUM", cfg.write_quorum), ("READ_QUORUM", cfg.read_quorum)] {
        if quorum > stored.replicas {
            return Err(NodeError::QuorumAboveReplicas { var, quorum, replicas: stored.replicas, path: path.into() });
        }
    }
    Ok(())
}

/// The `written` znode as the master's [`master::WriteRecord`].
struct ZkWriteRecord(ConfigWriter);

impl master::WriteRecord for ZkWriteRecord {
    fn record(&self) -> futures::future::BoxFuture<'static, Result<Vec<String>, String>> {
        let writer = self.0.clone();
        Box::pin(async move {
            let members = writer.record_written().await.map_err(|e| e.to_string())?;
            Ok(members.into_iter().map(|m| m.id).collect())
        })
    }
}

/// An auxiliary that started empty, in a cluster that has recorded no write, has missed
/// nothing: it serves as a full replica at once. Checked once registered, so that a master
/// recording the first write afterwards lists this node and routes that write here too.
async fn start_fresh_if_nothing_written(
    aux: Arc<Auxiliary>,
    mut status: watch::Receiver<ZkStatus>,
    writer: ConfigWriter,
) {
    if aux.store.stats().keys > 0 {
        return;
    }
    loop {
        if status.wait_for(|s| *s == ZkStatus::Connected).await.is_err() {
            return;
        }
        match writer.has_written().await {
            Ok(true) => return,
            Ok(false) => {
                if aux.start_fresh() {
                    tracing::info!("the cluster has acknowledged no write yet: serving as a full replica at once");
                }
                return;
            }
            Err(e) => {
                tracing::debug!(error = %e, "cannot tell whether the cluster has written; asking again");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// Runs an auxiliary until `shutdown` resolves.
pub async fn run_auxiliary(
    cfg: AuxiliaryConfig,
    build: Build,
    shutdown: impl Future<Output = ()>,
) -> Result<(), NodeError> {
    let metrics = Arc::new(Metrics::for_auxiliary(prometheus::Registry::new())?);
    metrics.build_info(build.version, build.commit)?;
    let data_addr = SocketAddr::new(cfg.common.bind_addr, cfg.data_port);
    let data_listener = bind_tcp("DATA_PORT", data_addr)?;
    let aux = Auxiliary::start(settings_for(&cfg), data_listener, metrics, true)
        .await
        .map_err(|source| NodeError::Bind { var: "DATA_PORT", addr: data_addr, source })?;
    let http_addr = SocketAddr::new(cfg.common.bind_addr, cfg.common.port);
    let listener = bind_std("PORT", http_addr)?;
    for var in &cfg.ignored {
        tracing::warn!(var, "ignored: an auxiliary takes placement from the cluster configuration in ZooKeeper");
    }
    let discovery =
        start_discovery(&cfg.common, Role::Auxiliary, format!("{}:{}", cfg.common.advertise_host, cfg.data_port), None);
    let placement = derived(discovery.cluster_config(), |c| c.map(|c| (c.virtual_nodes, c.replicas)));
    let mut status = discovery.status();
    let (registered_tx, registered) = watch::channel(false);
    tokio::spawn(async move {
        loop {
            registered_tx.send_replace(*status.borrow_and_update() == ZkStatus::Connected);
            if status.changed().await.is_err() {
                return;
            }
        }
    });
    aux.follow_cluster(ClusterFeed {
        members: derived(discovery.membership(), |m| {
            m.auxiliaries.iter().map(|a| (a.id.clone(), a.data_addr.clone())).collect()
        }),
        registered,
        placement: placement.clone(),
    });
    let aux = Arc::new(aux);
    tokio::spawn(start_fresh_if_nothing_written(aux.clone(), discovery.status(), discovery.config_writer()));
    let status = discovery.status();
    let state = AuxState {
        health: {
            let (aux, status) = (aux.clone(), status.clone());
            Arc::new(move || aux.health(status.borrow().as_str()))
        },
        ready: {
            let (aux, placement) = (aux.clone(), placement.clone());
            Arc::new(move || aux.recovering().is_none() && placement.borrow().is_some())
        },
        metrics: {
            let aux = aux.clone();
            Arc::new(move || aux.render_metrics(*status.borrow() == ZkStatus::Connected))
        },
    };
    let server = tiercache_http::start_auxiliary(state, listener).map_err(NodeError::Http)?;
    tracing::info!(
        version = build.version,
        commit = build.commit,
        http = %http_addr,
        data = %aux.data_addr,
        id = cfg.common.node_id,
        snapshots = %snapshots_where(&cfg),
        "auxiliary serving"
    );
    shutdown.await;

    tracing::info!("shutting down: leaving ZooKeeper");
    let last_view = discovery.membership().borrow().clone();
    discovery.leave(Duration::from_secs(3)).await;
    // Masters have dropped us from the placement by now or will within moments; the data port
    // stays open meanwhile for reads still in flight.
    let remaining: Vec<(String, String)> = last_view
        .auxiliaries
        .iter()
        .filter(|m| m.id != cfg.common.node_id)
        .map(|m| (m.id.clone(), m.data_addr.clone()))
        .collect();
    let placement = *placement.borrow();
    match placement {
        Some(p) => aux.hand_off(remaining, p).await,
        None => tracing::warn!("no cluster configuration read: nothing handed off; the final snapshot keeps the keys"),
    }
    aux.server.close_writes();
    tracing::info!("shutting down: draining");
    server.stop().await;
    let result = aux.stop().await.map_err(NodeError::FinalSnapshot);
    tracing::info!("auxiliary stopped");
    result
}

/// Runs one master and three auxiliaries in this process with static membership and no
/// ZooKeeper, until `shutdown` resolves.
pub async fn run_local(
    master: MasterConfig,
    aux: AuxiliaryConfig,
    build: Build,
    shutdown: impl Future<Output = ()>,
) -> Result<(), NodeError> {
    let metrics = Arc::new(Metrics::for_local(prometheus::Registry::new())?);
    metrics.build_info(build.version, build.commit)?;
    let router = router_for(&master, metrics.clone());
    let mut auxes = Vec::new();
    let mut members = Vec::new();
    for i in 0..3 {
        let mut c = aux.clone();
        c.common.node_id = format!("local-aux-{i}");
        c.backup_dir = aux.backup_dir.join(format!("aux-{i}"));
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        let m = Arc::new(Metrics::for_auxiliary(prometheus::Registry::new())?);
        // Static membership in one process: no node can miss a write, nothing to recover.
        let a = Auxiliary::start(settings_for(&c), bind_tcp("DATA_PORT", addr)?, m, false)
            .await
            .map_err(|source| NodeError::Bind { var: "DATA_PORT", addr, source })?;
        members.push(AuxAddr {
            id: c.common.node_id.clone(),
            data_addr: a.data_addr.to_string(),
            // Its /health and /metrics are the master's: it has no HTTP port of its own.
            http_addr: "in-process".to_string(),
        });
        auxes.push(a);
    }
    router.set_members(&members);
    let http_addr = SocketAddr::new(master.common.bind_addr, master.common.port);
    let listener = bind_std("PORT", http_addr)?;
    let info = Arc::new(ZkInfo {
        status: None,
        membership: None,
        static_masters: vec![MasterInfo { id: master.common.node_id.clone(), address: http_addr.to_string() }],
        me: master.common.node_id.clone(),
        config: None,
        local: Placement {
            replicas: master.replicas,
            virtual_nodes: master.virtual_nodes,
            replicated_for: master.replicas,
        },
    });
    let mut state = master_state(&master, router, metrics, info);
    // /metrics shows the in-process auxiliaries' store series, summed, as one auxiliary's.
    let parts: Vec<_> = auxes.iter().map(|a| (a.store.clone(), a.metrics.clone())).collect();
    state.refresh_metrics = Some(Box::new(move |m: &Metrics| {
        let (mut keys, mut bytes, mut evictions, mut expired, mut backup) = (0, 0, 0, 0, 0f64);
        for (store, own) in &parts {
            let s = store.stats();
            (keys, bytes, evictions, expired) =
                (keys + s.keys, bytes + s.bytes, evictions + s.evictions, expired + s.expired);
            backup = backup.max(own.backup_last_success.get());
        }
        m.size.set(keys as i64);
        m.bytes.set(bytes as i64);
        Metrics::sync_counter(&m.evictions, evictions);
        Metrics::sync_counter(&m.expired, expired);
        m.backup_last_success.set(backup);
    }));
    let state = Arc::new(state);
    let server = tiercache_http::start_master(state.clone(), listener, master.data_threads).map_err(NodeError::Http)?;
    let resp = start_resp(&master, &state)?;
    tracing::info!(
        version = build.version,
        commit = build.commit,
        http = %http_addr,
        redis = %resp_addr(&master),
        snapshots = %snapshots_where(&aux),
        "local mode: one master and three auxiliaries serving"
    );
    warn_if_admin_open(&master, http_addr);
    shutdown.await;
    let resp = resp.map(|(stop, task)| {
        let _ = stop.send(true);
        task
    });
    server.stop().await;
    if let Some(task) = resp {
        let _ = task.await;
    }
    for a in auxes {
        if let Err(e) = a.stop().await {
            tracing::error!(error = e, "final snapshot failed");
        }
    }
    Ok(())
}
