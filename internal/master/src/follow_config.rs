//! Following the cluster configuration: a master checks its own environment against the stored
//! configuration, adopts it, follows its changes (`PUT /config`, a `key_hash` switch) and, while
//! it coordinates, re-replicates after a change of `REPLICAS` until every key has its copies.
//! ZooKeeper stays behind a port ([`ConfigStore`]), so this is unit-tested against an in-memory
//! store.

use crate::peer::Connect;
use crate::rebalance::{follow, rebalance_with_retries};
use crate::router::Router;
use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;
use tiercache_placement::{ClusterConfig, Member};
use tokio::sync::watch;

/// A rewrite of the stored configuration: from what is stored (`None`: nothing readable) to
/// what to store (`None`: leave it).
pub type Rewrite = Box<dyn FnMut(Option<ClusterConfig>) -> Option<ClusterConfig> + Send>;

/// The port in front of the stored cluster configuration (ZooKeeper's `${ZK_ROOT}/config`).
pub trait ConfigStore: Send + Sync + 'static {
    /// The stored configuration as it changes; `None` until one is read.
    fn watch(&self) -> watch::Receiver<Option<ClusterConfig>>;
    /// Rewrites it as a compare-and-set: a concurrent rewrite makes it read and apply the
    /// rewrite again. Returns what is stored afterwards.
    fn update(&self, rewrite: Rewrite) -> BoxFuture<'static, Result<Option<ClusterConfig>, crate::PortError>>;
}

/// What this master's environment says about the placement.
#[derive(Debug, Clone)]
pub struct Environment {
    /// `REPLICAS`, when set.
    pub replicas: Option<usize>,
    /// `VIRTUAL_NODES`, when set.
    pub virtual_nodes: Option<u32>,
    /// `WRITE_QUORUM`.
    pub write_quorum: usize,
    /// `READ_QUORUM`.
    pub read_quorum: usize,
    /// Where the configuration is stored, for the messages.
    pub path: String,
}

/// Why a master cannot join the cluster as configured: its environment and the stored
/// configuration disagree, and guessing would put keys on the wrong owners.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Disagreement {
    /// A placement setting of the environment differs from the stored one.
    #[error(
        "{var}={env} in this master's environment, but the cluster configuration ({path} in ZooKeeper) has \
         {var}={stored}: unset {var} or set it to {stored} (PUT /config changes REPLICAS for the whole cluster)"
    )]
    Setting {
        /// The variable.
        var: &'static str,
        /// Its value here.
        env: String,
        /// The cluster's value.
        stored: String,
        /// The znode.
        path: String,
    },
    /// A quorum of the environment is larger than the cluster's `REPLICAS`.
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
}

impl Environment {
    /// Whether this master may run with `stored`.
    pub fn check(&self, stored: &ClusterConfig) -> Result<(), Disagreement> {
        let setting =
            |var, env: String, stored: String| Disagreement::Setting { var, env, stored, path: self.path.clone() };
        if let Some(r) = self.replicas.filter(|r| *r != stored.replicas) {
            return Err(setting("REPLICAS", r.to_string(), stored.replicas.to_string()));
        }
        if let Some(v) = self.virtual_nodes.filter(|v| *v != stored.virtual_nodes) {
            return Err(setting("VIRTUAL_NODES", v.to_string(), stored.virtual_nodes.to_string()));
        }
        for (var, quorum) in [("WRITE_QUORUM", self.write_quorum), ("READ_QUORUM", self.read_quorum)] {
            if quorum > stored.replicas {
                let path = self.path.clone();
                return Err(Disagreement::QuorumAboveReplicas { var, quorum, replicas: stored.replicas, path });
            }
        }
        Ok(())
    }
}

/// How often the coordinator looks whether keys lack copies after a change of `REPLICAS`.
const REREPLICATE_EVERY: Duration = Duration::from_secs(2);

/// Waits for the stored configuration, checks `env` against it (an error ends the master) and
/// adopts it; then follows its changes and the membership (`members`: rebalancing as the
/// coordinator), and re-replicates while this master coordinates. Returns only on a
/// disagreement, or when a watch ends.
pub async fn follow_config<C: Connect>(
    env: Environment,
    store: Arc<dyn ConfigStore>,
    router: Arc<Router<C>>,
    members: watch::Receiver<Vec<Member>>,
    is_coordinator: Arc<dyn Fn() -> bool + Send + Sync>,
) -> Result<(), Disagreement> {
    let mut config = store.watch();
    let Ok(first) = config.wait_for(Option::is_some).await.map(|c| *c) else { return Ok(()) };
    let Some(first) = first else { return Ok(()) };
    env.check(&first)?;
    router.set_placement(first.settings());
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
            router.set_placement(next.settings());
            *cur = next;
        }
    };
    // The coordinator re-replicates whenever the stored REPLICAS is ahead of the last one every
    // key was copied for: right after a PUT /config, and again on the next coordinator when
    // the one that should have done it stopped first.
    let rereplicate = async {
        let mut tick = tokio::time::interval(REREPLICATE_EVERY);
        loop {
            tick.tick().await;
            let c = *current.lock();
            if c.replicated_for == c.replicas || !is_coordinator() {
                continue;
            }
            tracing::info!(from = c.replicated_for, to = c.replicas, "REPLICAS changed: re-replicating");
            if rebalance_with_retries(router.clone(), vec![]).await {
                // Recorded only if REPLICAS did not change again meanwhile.
                let done = store
                    .update(Box::new(move |stored| {
                        stored
                            .filter(|s| s.replicas == c.replicas)
                            .map(|s| ClusterConfig { replicated_for: c.replicas, ..s })
                    }))
                    .await;
                if let Err(error) = done {
                    tracing::warn!(error, "could not record the re-replication; it will run again");
                }
            }
        }
    };
    tokio::select! {
        _ = follow(members, router.clone(), is_coordinator.clone()) => {}
        _ = changes => {}
        _ = rereplicate => {}
    }
    Ok(())
}

/// A store in memory, for the unit tests of the configuration follower (local mode keeps no
/// cluster configuration: `Cluster::alone`).
#[derive(Clone)]
pub struct MemConfigStore {
    tx: Arc<watch::Sender<Option<ClusterConfig>>>,
}

impl MemConfigStore {
    /// A store holding `config`.
    pub fn new(config: Option<ClusterConfig>) -> MemConfigStore {
        MemConfigStore { tx: Arc::new(watch::channel(config).0) }
    }

    /// What it holds now.
    pub fn get(&self) -> Option<ClusterConfig> {
        *self.tx.borrow()
    }
}

impl ConfigStore for MemConfigStore {
    fn watch(&self) -> watch::Receiver<Option<ClusterConfig>> {
        self.tx.subscribe()
    }

    fn update(&self, mut rewrite: Rewrite) -> BoxFuture<'static, Result<Option<ClusterConfig>, crate::PortError>> {
        let mut out = self.get();
        self.tx.send_if_modified(|c| match rewrite(*c) {
            Some(next) => {
                out = Some(next);
                let changed = *c != Some(next);
                *c = Some(next);
                changed
            }
            None => false,
        });
        Box::pin(async move { Ok(out) })
    }
}
