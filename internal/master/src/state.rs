//! What a master is, beyond its router: its identity, limits, secrets and the cluster as
//! discovery reports it. Both front ends (HTTP and RESP) serve one [`MasterState`].

use crate::{Metrics, Router};
use std::sync::Arc;
use tiercache_placement::{ClusterConfig, ZkState};

/// Size limits and defaults of the client API.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Longest key in bytes.
    pub key_max_bytes: usize,
    /// Largest value in bytes.
    pub value_max_bytes: usize,
    /// TTL when a write gives none (seconds, 0 = never).
    pub default_ttl_secs: u64,
}

/// A master as listed in `/nodes`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MasterInfo {
    /// `NODE_ID`.
    pub id: String,
    /// host:port of its HTTP API.
    pub address: String,
}

/// Why `PUT /config` could not store the change.
#[derive(Debug, thiserror::Error)]
pub enum ConfigChangeError {
    /// Local mode keeps no cluster configuration.
    #[error("local mode has no cluster configuration: set REPLICAS in the environment")]
    NoZooKeeper,
    /// ZooKeeper did not take the write.
    #[error("could not store the cluster configuration: {0}")]
    Store(#[source] crate::PortError),
    /// Members of an older release do not know the setting: it would place keys differently
    /// there.
    #[error("{setting} is not supported by {}: upgrade them first", .members.join(", "))]
    Unsupported {
        /// The setting asked for.
        setting: String,
        /// The members that lack it.
        members: Vec<String>,
    },
}

/// What the master knows about the cluster beyond its router (from discovery).
pub trait ClusterInfo: Send + Sync + 'static {
    /// The cluster configuration as stored, once read.
    fn placement(&self) -> Option<ClusterConfig>;
    /// Stores a new `REPLICAS` for the whole cluster.
    fn set_replicas(
        &self,
        replicas: usize,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), ConfigChangeError>> + Send + 'static>>;
    /// Stores a new `key_hash` for the whole cluster, if every member supports it.
    fn set_key_hash(
        &self,
        key_hash: tiercache_placement::KeyHash,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), ConfigChangeError>> + Send + 'static>>;
    /// Registered masters.
    fn masters(&self) -> Vec<MasterInfo>;
    /// The ZooKeeper session.
    fn zookeeper(&self) -> ZkState;
    /// Whether this master coordinates rebalances.
    fn is_coordinator(&self) -> bool;
    /// Id of the master that coordinates rebalances, if known.
    fn coordinator(&self) -> Option<String>;
}

/// Everything the master's handlers need.
pub struct MasterState {
    /// `NODE_ID`.
    pub node_id: String,
    /// Routing to auxiliaries.
    pub router: Arc<Router>,
    /// Metrics of this master.
    pub metrics: Arc<Metrics>,
    /// Limits.
    pub limits: Limits,
    /// Token for `/backup`, `/rebalance` and `/flush` (RESP: `AUTH admin <token>`), if set.
    pub admin_token: Option<String>,
    /// Password of the client API, if set.
    pub client_password: Option<String>,
    /// Discovery's view.
    pub cluster: Arc<dyn ClusterInfo>,
    /// The threads both front ends serve clients on.
    pub data_threads: Arc<crate::DataThreads>,
    /// Brings series kept elsewhere up to date before `/metrics` renders (local mode: its
    /// in-process auxiliaries' stores).
    pub refresh_metrics: Option<RefreshMetrics>,
}

/// See [`MasterState::refresh_metrics`].
pub type RefreshMetrics = Box<dyn Fn(&Metrics) + Send + Sync>;
