//! Wiring only (`master_node`, `auxiliary_node`, `local_node`: one file per role; this file
//! the pieces they share): builds each role from its configuration, connects
//! it to ZooKeeper and HTTP, and stops it in a written order:
//!
//! 1. leave ZooKeeper (so masters stop routing to this node / clients stop being balanced here),
//! 2. (auxiliary) hand keys to their new owners, refusing writes from the last pass on,
//! 3. stop accepting and drain in-flight HTTP requests,
//! 4. (auxiliary) close the data port and take a final snapshot,
//! 5. exit (non-zero when the final snapshot failed).

/// The configuration the binary parses before starting a role.
pub use tiercache_config as config;

mod auxiliary_node;
mod local_node;
mod master_node;

pub use auxiliary_node::run_auxiliary;
pub use local_node::run_local;
pub use master_node::run_master;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tiercache_auxiliary::{Auxiliary, ClusterFeed, Settings};
use tiercache_config::{AuxiliaryConfig, MasterConfig};
use tiercache_discovery::{
    ClusterConfig, ConfigWriter, Discovery, DiscoveryConfig, Features, KeyHash, Member, Membership, Role, ZkState,
};
use tiercache_http::AuxState;
use tiercache_master::{self as master, ClusterInfo, Limits, MasterState, Metrics, Router, RouterConfig, WireConnect};
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
    /// The cluster asks for what this release cannot do (see `Discovery::fatal`).
    #[error("{0}")]
    Unsupported(String),
    /// Metrics registration failed.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The HTTP server failed.
    #[error("http server: {0}")]
    Http(std::io::Error),
    /// This master's environment disagrees with the cluster configuration stored in
    /// ZooKeeper: one of them is a mistake, and guessing would put keys on the wrong owners.
    #[error(transparent)]
    Disagreement(master::Disagreement),
    /// The final snapshot of a stopping auxiliary failed: keys it did not hand off are lost,
    /// and the exit code tells the orchestrator so.
    #[error("final snapshot failed: {0}")]
    FinalSnapshot(tiercache_auxiliary::SnapshotError),
}

/// ZooKeeper's registered nodes and election as the master's [`master::MembershipPort`].
struct ZkMembership {
    membership: watch::Receiver<Arc<Membership>>,
    status: watch::Receiver<ZkState>,
}

impl master::MembershipPort for ZkMembership {
    fn masters(&self) -> Vec<Member> {
        self.membership.borrow().masters.clone()
    }
    fn auxiliaries(&self) -> Vec<Member> {
        self.membership.borrow().auxiliaries.clone()
    }
    fn coordinator(&self) -> Option<String> {
        self.membership.borrow().coordinator.clone()
    }
    fn session(&self) -> ZkState {
        *self.status.borrow()
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
        me: Member {
            id: common.node_id.clone(),
            http_addr: format!("{}:{}", common.advertise_host, common.port),
            data_addr,
            features: Features::THIS_RELEASE,
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
