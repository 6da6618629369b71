//! Membership through ZooKeeper: each node registers an ephemeral znode under
//! `${ZK_ROOT}/masters` or `${ZK_ROOT}/auxiliaries` holding its addresses as JSON, and watches
//! both directories. The only crate that talks to ZooKeeper.
//!
//! The cluster configuration (placement settings every process must agree on) lives in
//! `${ZK_ROOT}/config` as JSON: the first master to find it missing publishes its own, every
//! node watches it, and `PUT /config` rewrites it.
//!
//! - `config`: [`ClusterConfig`], read, published and rewritten ([`ConfigWriter`]).
//! - `session`: the supervisor of the session, its watches and the election.
//!
//! A supervisor task owns the session. While ZooKeeper is unreachable the last membership seen
//! stays published (nodes keep serving); when a session expires a new client is built, the
//! ephemeral znode re-created and the watches set again, without a restart.

mod config;
mod session;

pub use config::{ConfigWriteError, ConfigWriter};
use session::{supervise, Channels};
use std::sync::Arc;
use std::time::Duration;
pub use tiercache_placement::{ClusterConfig, Features, KeyHash, Member, Role, Settings, ZkState};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use zookeeper_client as zk;

/// The cluster as last seen in ZooKeeper.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Membership {
    /// Registered masters, sorted by id.
    pub masters: Vec<Member>,
    /// Registered auxiliaries, sorted by id.
    pub auxiliaries: Vec<Member>,
    /// Id of the elected coordinator master (lowest ephemeral-sequential election znode).
    pub coordinator: Option<String>,
}

/// Settings of discovery.
#[derive(Debug, Clone)]
pub struct DiscoveryConfig {
    /// ZooKeeper connect string.
    pub servers: String,
    /// Root znode of the cluster.
    pub root: String,
    /// Session timeout.
    pub session_timeout: Duration,
    /// Directory to register in.
    pub role: Role,
    /// This node.
    pub me: Member,
    /// The cluster configuration to publish when none is stored yet (masters), or `None` to
    /// only read it (auxiliaries).
    pub publish: Option<ClusterConfig>,
}

/// Handle on the running supervisor.
pub struct Discovery {
    membership: watch::Receiver<Arc<Membership>>,
    status: watch::Receiver<ZkState>,
    config: watch::Receiver<Option<ClusterConfig>>,
    fatal: watch::Receiver<Option<String>>,
    /// `ZK_ROOT`.
    root: String,
    client: Arc<parking_lot::Mutex<Option<zk::Client>>>,
    leave: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Discovery {
    /// Starts the supervisor on the current tokio runtime.
    pub fn start(cfg: DiscoveryConfig) -> Discovery {
        let (m_tx, m_rx) = watch::channel(Arc::new(Membership::default()));
        let (s_tx, s_rx) = watch::channel(ZkState::Connecting);
        let (c_tx, c_rx) = watch::channel(None);
        let (f_tx, f_rx) = watch::channel(None);
        let (l_tx, l_rx) = oneshot::channel();
        let client = Arc::new(parking_lot::Mutex::new(None));
        let root = cfg.root.clone();
        let chans = Channels { membership: m_tx, status: s_tx, config: c_tx, fatal: f_tx, client: client.clone() };
        let task = tokio::spawn(supervise(cfg, chans, l_rx));
        Discovery {
            membership: m_rx,
            status: s_rx,
            config: c_rx,
            fatal: f_rx,
            root,
            client,
            leave: Some(l_tx),
            task: Some(task),
        }
    }

    /// Watch of the stored cluster configuration (`None` until one is read).
    pub fn cluster_config(&self) -> watch::Receiver<Option<ClusterConfig>> {
        self.config.clone()
    }

    /// Set, with one line saying why, when the cluster asks for what this release cannot do
    /// (a `key_hash` it does not know): the node must stop rather than place keys otherwise.
    pub fn fatal(&self) -> watch::Receiver<Option<String>> {
        self.fatal.clone()
    }

    /// A handle that rewrites the cluster configuration (for `PUT /config`).
    pub fn config_writer(&self) -> ConfigWriter {
        ConfigWriter { client: self.client.clone(), path: format!("{}/config", self.root), root: self.root.clone() }
    }

    /// Watch of the membership.
    pub fn membership(&self) -> watch::Receiver<Arc<Membership>> {
        self.membership.clone()
    }

    /// Watch of the session state.
    pub fn status(&self) -> watch::Receiver<ZkState> {
        self.status.clone()
    }

    /// Deletes this node's znode and closes the session (bounded by `timeout`).
    pub async fn leave(mut self, timeout: Duration) {
        if let Some(l) = self.leave.take() {
            let _ = l.send(());
        }
        if let Some(t) = self.task.take() {
            let abort = t.abort_handle();
            if tokio::time::timeout(timeout, t).await.is_err() {
                abort.abort();
            }
        }
    }
}

fn opts(mode: zk::CreateMode) -> zk::CreateOptions<'static> {
    mode.with_acls(zk::Acls::anyone_all())
}
