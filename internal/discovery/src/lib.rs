//! Membership through ZooKeeper: each node registers an ephemeral znode under
//! `${ZK_ROOT}/masters` or `${ZK_ROOT}/auxiliaries` holding its addresses as JSON, and watches
//! both directories. The only crate that talks to ZooKeeper.
//!
//! The cluster configuration (placement settings every process must agree on) lives in
//! `${ZK_ROOT}/config` as JSON: the first master to find it missing publishes its own, every
//! node watches it, and `PUT /config` rewrites it.
//!
//! A supervisor task owns the session. While ZooKeeper is unreachable the last membership seen
//! stays published (nodes keep serving); when a session expires a new client is built, the
//! ephemeral znode re-created and the watches set again, without a restart.

use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
pub use tiercache_placement::{KeyHash, Settings};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use zookeeper_client as zk;

/// Which directory a node registers in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Stateless HTTP front.
    Master,
    /// Data holder.
    Auxiliary,
}

impl Role {
    fn dir(self) -> &'static str {
        match self {
            Role::Master => "masters",
            Role::Auxiliary => "auxiliaries",
        }
    }
}

/// What a node publishes about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
pub struct MemberInfo {
    /// `NODE_ID`.
    pub id: String,
    /// host:port of its HTTP server.
    pub http_addr: String,
    /// host:port of its internal protocol (auxiliaries only).
    #[serde(default)]
    pub data_addr: String,
    /// What this node's release can do that older ones cannot ([`FEATURES`]); a cluster
    /// setting that needs a feature is refused while a member lacks it.
    #[serde(default)]
    pub features: Vec<String>,
}

/// The features of this release: it places keys by hash tags when the cluster configuration
/// says so (`key_hash:tagged`), and runs `Request::Transaction` and `Request::Census`
/// ([`TRANSACTIONS`]).
pub const FEATURES: &[&str] = &["key_hash:tagged", TRANSACTIONS];

/// The feature of a release that runs transactions.
pub const TRANSACTIONS: &str = "transactions";

/// The feature a member needs for the cluster to place keys by `key_hash`.
pub fn feature_for(key_hash: KeyHash) -> Option<&'static str> {
    match key_hash {
        KeyHash::Whole => None,
        KeyHash::Tagged => Some("key_hash:tagged"),
    }
}

/// The cluster as last seen in ZooKeeper.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Membership {
    /// Registered masters, sorted by id.
    pub masters: Vec<MemberInfo>,
    /// Registered auxiliaries, sorted by id.
    pub auxiliaries: Vec<MemberInfo>,
    /// Id of the elected coordinator master (lowest ephemeral-sequential election znode).
    pub coordinator: Option<String>,
}

/// Placement settings shared by the whole cluster, stored in `${ZK_ROOT}/config`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterConfig {
    /// Copies of each key (`REPLICAS`).
    pub replicas: usize,
    /// Virtual nodes per auxiliary on the ring (`VIRTUAL_NODES`).
    pub virtual_nodes: u32,
    /// The `replicas` for which every key was last re-replicated; behind `replicas` after a
    /// `PUT /config` until a coordinator's rebalance has succeeded (any coordinator, so one
    /// lost with a master is redone by the next).
    #[serde(default)]
    pub replicated_for: usize,
    /// Which bytes of a key place it. A configuration written before hash tags has none:
    /// whole keys, until an operator switches (`POST /rebalance?key_hash=tagged`).
    #[serde(default)]
    pub key_hash: KeyHash,
}

impl ClusterConfig {
    /// Most copies the cluster accepts.
    pub const MAX_REPLICAS: usize = 16;

    /// The placement settings it holds.
    pub fn settings(&self) -> Settings {
        Settings { virtual_nodes: self.virtual_nodes, replicas: self.replicas, key_hash: self.key_hash }
    }

    /// Whether the values can be used (a hand-edited znode may hold anything).
    pub fn is_valid(&self) -> bool {
        (1..=Self::MAX_REPLICAS).contains(&self.replicas) && (1..=65536).contains(&self.virtual_nodes)
    }
}

/// Why the cluster configuration could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ConfigWriteError {
    /// No ZooKeeper session right now.
    #[error("ZooKeeper is not connected")]
    NotConnected,
    /// ZooKeeper refused or failed the write.
    #[error("ZooKeeper: {0}")]
    ZooKeeper(#[from] zk::Error),
}

/// State of the ZooKeeper session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZkStatus {
    /// No session yet (or building a new one after expiry).
    Connecting,
    /// Session live, znode registered, watches set.
    Connected,
    /// Connection lost; the session may still come back.
    Disconnected,
}

impl ZkStatus {
    /// A short word for `/health`.
    pub fn as_str(self) -> &'static str {
        match self {
            ZkStatus::Connecting => "connecting",
            ZkStatus::Connected => "connected",
            ZkStatus::Disconnected => "disconnected",
        }
    }
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
    pub me: MemberInfo,
    /// The cluster configuration to publish when none is stored yet (masters), or `None` to
    /// only read it (auxiliaries).
    pub publish: Option<ClusterConfig>,
}

/// Rewrites the stored cluster configuration through the live session.
#[derive(Clone)]
pub struct ConfigWriter {
    client: Arc<parking_lot::Mutex<Option<zk::Client>>>,
    path: String,
    /// `ZK_ROOT`.
    root: String,
}

impl ConfigWriter {
    /// Rewrites the stored cluster configuration as `f` says, from the value stored now
    /// (`None` when absent or unreadable), as a compare-and-set: a concurrent rewrite makes it
    /// read and try again, so no change is lost. `f` returning `None` leaves it alone.
    pub async fn update(
        &self,
        mut f: impl FnMut(Option<ClusterConfig>) -> Option<ClusterConfig>,
    ) -> Result<Option<ClusterConfig>, ConfigWriteError> {
        let client = self.client.lock().clone().ok_or(ConfigWriteError::NotConnected)?;
        for _ in 0..10 {
            let (raw, version) = match client.get_data(&self.path).await {
                Ok((data, stat)) => (serde_json::from_slice::<serde_json::Value>(&data).ok(), Some(stat.version)),
                Err(zk::Error::NoNode) => (None, None),
                Err(e) => return Err(e.into()),
            };
            let stored = raw.clone().and_then(|v| serde_json::from_value::<ClusterConfig>(v).ok());
            let Some(next) = f(stored) else { return Ok(stored) };
            let data = serde_json::to_vec(&merged(raw, &next)).unwrap_or_default();
            let written = match version {
                Some(v) => client.set_data(&self.path, &data, Some(v)).await.map(drop),
                None => client.create(&self.path, &data, &opts(zk::CreateMode::Persistent)).await.map(drop),
            };
            match written {
                Ok(()) => return Ok(Some(next)),
                Err(zk::Error::BadVersion | zk::Error::NodeExists) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ConfigWriteError::ZooKeeper(zk::Error::BadVersion))
    }

    /// `${ZK_ROOT}/written`: created, once, before the cluster's first write is sent, so an
    /// auxiliary that starts without a snapshot can tell a cluster that has acknowledged
    /// nothing (it has missed nothing) from one whose data it must catch up on.
    fn written_path(&self) -> String {
        format!("{}/written", self.root)
    }

    /// Records that the cluster is about to acknowledge writes, then lists the auxiliaries
    /// registered now: a write routed by that list reaches every auxiliary that could have
    /// seen no record (see [`ConfigWriter::has_written`]).
    pub async fn record_written(&self) -> Result<Vec<MemberInfo>, ConfigWriteError> {
        let client = self.client.lock().clone().ok_or(ConfigWriteError::NotConnected)?;
        match client.create(&self.written_path(), b"", &opts(zk::CreateMode::Persistent)).await {
            Ok(_) | Err(zk::Error::NodeExists) => {}
            Err(e) => return Err(e.into()),
        }
        let dir = format!("{}/auxiliaries", self.root);
        let children = client.list_children(&dir).await?;
        Ok(members_of(&client, &dir, children).await?)
    }

    /// Whether the cluster has recorded a write (see [`ConfigWriter::record_written`]).
    pub async fn has_written(&self) -> Result<bool, ConfigWriteError> {
        let client = self.client.lock().clone().ok_or(ConfigWriteError::NotConnected)?;
        Ok(client.check_stat(&self.written_path()).await?.is_some())
    }
}

/// `next` written over `stored`, keeping the fields this release does not know: a newer
/// release's settings survive an older node's change of the ones it knows.
fn merged(stored: Option<serde_json::Value>, next: &ClusterConfig) -> serde_json::Value {
    let mut out = match stored {
        Some(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    if let Ok(serde_json::Value::Object(known)) = serde_json::to_value(next) {
        out.extend(known);
    }
    serde_json::Value::Object(out)
}

/// Handle on the running supervisor.
pub struct Discovery {
    membership: watch::Receiver<Arc<Membership>>,
    status: watch::Receiver<ZkStatus>,
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
        let (s_tx, s_rx) = watch::channel(ZkStatus::Connecting);
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
    pub fn status(&self) -> watch::Receiver<ZkStatus> {
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

enum SessionEnd {
    Leave,
    Lost(String),
}

/// Where the supervisor publishes what it sees.
struct Channels {
    membership: watch::Sender<Arc<Membership>>,
    status: watch::Sender<ZkStatus>,
    config: watch::Sender<Option<ClusterConfig>>,
    fatal: watch::Sender<Option<String>>,
    /// The live session's client, for writes made on behalf of the node (`PUT /config`).
    client: Arc<parking_lot::Mutex<Option<zk::Client>>>,
}

async fn supervise(cfg: DiscoveryConfig, chans: Channels, mut leave: oneshot::Receiver<()>) {
    let s_tx = &chans.status;
    let mut backoff = Duration::from_millis(200);
    loop {
        s_tx.send_replace(ZkStatus::Connecting);
        let connect =
            zk::Client::connector().with_session_timeout(cfg.session_timeout).with_fail_eagerly().connect(&cfg.servers);
        let client = tokio::select! {
            r = connect => r,
            _ = &mut leave => return,
        };
        let client = match client {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, servers = %cfg.servers, "cannot reach ZooKeeper; serving with the last membership");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = &mut leave => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        backoff = Duration::from_millis(200);
        let end = session(&cfg, &client, &chans, &mut leave).await;
        *chans.client.lock() = None;
        match end {
            SessionEnd::Leave => {
                let path = format!("{}/{}/{}", cfg.root, cfg.role.dir(), cfg.me.id);
                if let Err(e) = client.delete(&path, None).await {
                    tracing::warn!(error = %e, "could not delete own znode; the session close removes it");
                }
                tracing::info!(path, "left ZooKeeper");
                return;
            }
            SessionEnd::Lost(why) => {
                tracing::warn!(why, "ZooKeeper session lost; building a new one");
                s_tx.send_replace(ZkStatus::Disconnected);
            }
        }
    }
}

async fn register(cfg: &DiscoveryConfig, client: &zk::Client) -> Result<(), zk::Error> {
    for dir in ["masters", "auxiliaries", "election"] {
        client.mkdir(&format!("{}/{}", cfg.root, dir), &opts(zk::CreateMode::Persistent)).await?;
    }
    let path = format!("{}/{}/{}", cfg.root, cfg.role.dir(), cfg.me.id);
    let data = serde_json::to_vec(&cfg.me).unwrap_or_default();
    if cfg.role == Role::Master {
        // Election: the master with the lowest sequence number coordinates.
        let prefix = format!("{}/election/n-", cfg.root);
        client.create(&prefix, cfg.me.id.as_bytes(), &opts(zk::CreateMode::EphemeralSequential)).await?;
    }
    for _ in 0..3 {
        match client.create(&path, &data, &opts(zk::CreateMode::Ephemeral)).await {
            Ok(_) => return Ok(()),
            Err(zk::Error::NodeExists) => {
                // Left by our own previous session (not yet expired) or a node reusing our id.
                tracing::warn!(path, "znode exists; replacing it");
                match client.delete(&path, None).await {
                    Ok(()) | Err(zk::Error::NoNode) => {}
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
    }
    Err(zk::Error::NodeExists)
}

async fn list(client: &zk::Client, dir: &str) -> Result<(Vec<MemberInfo>, zk::OneshotWatcher), zk::Error> {
    let (children, watcher) = client.list_and_watch_children(dir).await?;
    Ok((members_of(client, dir, children).await?, watcher))
}

/// The members whose znodes are `children` of `dir`, sorted.
async fn members_of(client: &zk::Client, dir: &str, children: Vec<String>) -> Result<Vec<MemberInfo>, zk::Error> {
    let mut out = Vec::with_capacity(children.len());
    for c in children {
        match client.get_data(&format!("{dir}/{c}")).await {
            Ok((data, _)) => match serde_json::from_slice::<MemberInfo>(&data) {
                Ok(m) => out.push(m),
                Err(e) => tracing::warn!(node = c, error = %e, "ignoring znode with unreadable data"),
            },
            Err(zk::Error::NoNode) => {}
            Err(e) => return Err(e),
        }
    }
    out.sort();
    Ok(out)
}

async fn elected(client: &zk::Client, dir: &str) -> Result<(Option<String>, zk::OneshotWatcher), zk::Error> {
    let (mut children, watcher) = client.list_and_watch_children(dir).await?;
    // Sequence numbers are zero-padded: name order is creation order.
    children.sort();
    for c in children {
        match client.get_data(&format!("{dir}/{c}")).await {
            Ok((data, _)) => return Ok((Some(String::from_utf8_lossy(&data).into_owned()), watcher)),
            Err(zk::Error::NoNode) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok((None, watcher))
}

/// The stored cluster configuration as read.
enum Stored {
    /// None is stored yet.
    Missing,
    /// Read and in range.
    Usable(ClusterConfig),
    /// Unreadable or out of range (a hand edit): the last good one stays.
    Unusable,
    /// It asks for a rule this release does not know: why, in one line.
    Unknown(String),
}

impl Stored {
    fn parse(path: &str, data: &[u8]) -> Stored {
        let raw: Option<serde_json::Value> = serde_json::from_slice(data).ok();
        if let Some(name) = raw.as_ref().and_then(|v| v.get("key_hash")).and_then(|k| k.as_str()) {
            if KeyHash::parse(name).is_none() {
                return Stored::Unknown(format!(
                    "the cluster configuration {path} places keys by key_hash {name:?}, which this release \
                     does not know (it knows \"whole\" and \"tagged\"); run the release that wrote it"
                ));
            }
        }
        match serde_json::from_slice::<ClusterConfig>(data) {
            Ok(c) if c.is_valid() => Stored::Usable(c),
            Ok(c) => {
                tracing::error!(path, config = ?c, "cluster configuration out of range; fix it with PUT /config");
                Stored::Unusable
            }
            Err(e) => {
                tracing::error!(path, error = %e, "unusable cluster configuration; fix it with PUT /config");
                Stored::Unusable
            }
        }
    }
}

/// Reads the cluster configuration and watches it; publishes `publish` when none is stored.
async fn read_config(
    client: &zk::Client,
    path: &str,
    publish: Option<&ClusterConfig>,
) -> Result<(Stored, zk::OneshotWatcher), zk::Error> {
    loop {
        match client.get_and_watch_data(path).await {
            Ok((data, _, watcher)) => return Ok((Stored::parse(path, &data), watcher)),
            Err(zk::Error::NoNode) => {}
            Err(e) => return Err(e),
        }
        if let Some(p) = publish {
            let data = serde_json::to_vec(p).unwrap_or_default();
            match client.create(path, &data, &opts(zk::CreateMode::Persistent)).await {
                Ok(_) => tracing::info!(
                    path,
                    replicas = p.replicas,
                    virtual_nodes = p.virtual_nodes,
                    key_hash = p.key_hash.as_str(),
                    "published the cluster configuration"
                ),
                Err(zk::Error::NodeExists) => {}
                Err(e) => return Err(e),
            }
            continue;
        }
        // Nothing stored and nothing to publish: wait for a master to create it.
        let (stat, watcher) = client.check_and_watch_stat(path).await?;
        if stat.is_none() {
            return Ok((Stored::Missing, watcher));
        }
    }
}

async fn session(
    cfg: &DiscoveryConfig,
    client: &zk::Client,
    chans: &Channels,
    leave: &mut oneshot::Receiver<()>,
) -> SessionEnd {
    let (m_tx, s_tx) = (&chans.membership, &chans.status);
    let mut state = client.state_watcher();
    if let Err(e) = register(cfg, client).await {
        return SessionEnd::Lost(format!("register: {e}"));
    }
    *chans.client.lock() = Some(client.clone());
    let config_path = format!("{}/config", cfg.root);
    tracing::info!(id = cfg.me.id, role = cfg.role.dir(), "registered in ZooKeeper");
    let masters_dir = format!("{}/masters", cfg.root);
    let aux_dir = format!("{}/auxiliaries", cfg.root);
    let election_dir = format!("{}/election", cfg.root);
    loop {
        let listed = async {
            let (masters, mw) = list(client, &masters_dir).await?;
            let (auxiliaries, aw) = list(client, &aux_dir).await?;
            let (coordinator, ew) = elected(client, &election_dir).await?;
            let (config, cw) = read_config(client, &config_path, cfg.publish.as_ref()).await?;
            Ok::<_, zk::Error>((Membership { masters, auxiliaries, coordinator }, config, mw, aw, ew, cw))
        };
        let (membership, config, mw, aw, ew, cw) = match listed.await {
            Ok(x) => x,
            Err(e) if !client.state().is_terminated() => {
                tracing::debug!(error = %e, "listing failed; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            Err(e) => return SessionEnd::Lost(format!("list: {e}")),
        };
        s_tx.send_replace(ZkStatus::Connected);
        let config = match config {
            Stored::Usable(c) => Some(c),
            Stored::Missing | Stored::Unusable => None,
            Stored::Unknown(why) => {
                chans.fatal.send_replace(Some(why));
                None
            }
        };
        // An unreadable value keeps the last good one.
        if config.is_some() {
            chans.config.send_if_modified(|cur| {
                let changed = *cur != config;
                *cur = config;
                changed
            });
        }
        m_tx.send_if_modified(|cur| {
            if **cur != membership {
                *cur = Arc::new(membership);
                true
            } else {
                false
            }
        });
        tokio::select! {
            _ = mw.changed() => {}
            _ = aw.changed() => {}
            _ = ew.changed() => {}
            _ = cw.changed() => {}
            _ = &mut *leave => return SessionEnd::Leave,
            s = state.changed() => {
                if let Some(end) = on_state(s, &mut state, s_tx, leave).await {
                    return end;
                }
            }
        }
    }
}

/// Follows session states after a change; returns when the session is usable again (None) or
/// over.
async fn on_state(
    mut s: zk::SessionState,
    state: &mut zk::StateWatcher,
    s_tx: &watch::Sender<ZkStatus>,
    leave: &mut oneshot::Receiver<()>,
) -> Option<SessionEnd> {
    loop {
        match s {
            zk::SessionState::SyncConnected | zk::SessionState::ConnectedReadOnly => return None,
            zk::SessionState::Disconnected => {
                tracing::warn!("ZooKeeper disconnected; keeping the last membership");
                s_tx.send_replace(ZkStatus::Disconnected);
            }
            other => return Some(SessionEnd::Lost(other.to_string())),
        }
        s = tokio::select! {
            s = state.changed() => s,
            _ = &mut *leave => return Some(SessionEnd::Leave),
        };
    }
}
