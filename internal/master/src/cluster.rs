//! The cluster as a master knows it beyond its router: the membership service's view (behind
//! [`MembershipPort`]) and the stored configuration (behind [`ConfigStore`]), for `/nodes`,
//! `/health`, `PUT /config` and the key-hash switch. Local mode has neither: its master is
//! alone and its configuration its own.

use crate::follow_config::ConfigStore;
use crate::state::{ClusterInfo, ConfigChangeError, MasterInfo};
use std::sync::Arc;
use tiercache_placement::ZkState;
use tiercache_placement::{ClusterConfig, KeyHash, Member};

/// The port in front of the membership service (ZooKeeper's registered nodes and election).
pub trait MembershipPort: Send + Sync + 'static {
    /// The registered masters.
    fn masters(&self) -> Vec<Member>;
    /// The registered auxiliaries.
    fn auxiliaries(&self) -> Vec<Member>;
    /// The elected coordinator's id, if known.
    fn coordinator(&self) -> Option<String>;
    /// The session with the service.
    fn session(&self) -> ZkState;
}

/// A change of the stored cluster configuration, under way.
pub type ConfigChange = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), ConfigChangeError>> + Send>>;

/// What a master knows of the cluster: [`ClusterInfo`] from the two ports.
pub struct Cluster {
    me: String,
    /// This master's own configuration: what it publishes in a new cluster, what replaces a
    /// stored value that cannot be read, and local mode's only one.
    local: ClusterConfig,
    /// `None` in local mode.
    ports: Option<(Arc<dyn MembershipPort>, Arc<dyn ConfigStore>)>,
    /// Local mode's masters (itself).
    static_masters: Vec<MasterInfo>,
}

impl Cluster {
    /// A master of a cluster with a membership service.
    pub fn new(
        me: String,
        local: ClusterConfig,
        members: Arc<dyn MembershipPort>,
        store: Arc<dyn ConfigStore>,
    ) -> Self {
        Cluster { me, local, ports: Some((members, store)), static_masters: Vec::new() }
    }

    /// Local mode: `me` alone, reachable at `address`.
    pub fn alone(me: String, address: String, local: ClusterConfig) -> Self {
        let static_masters = vec![MasterInfo { id: me.clone(), address }];
        Cluster { me, local, ports: None, static_masters }
    }

    /// Rewrites the stored configuration with `f`; an unreadable stored value is replaced
    /// (with this master's settings).
    fn change(&self, f: impl Fn(ClusterConfig) -> ClusterConfig + Send + Sync + 'static) -> ConfigChange {
        let Some((_, store)) = &self.ports else {
            return Box::pin(async { Err(ConfigChangeError::NoZooKeeper) });
        };
        let fallback = self.local;
        let rewrite = store.update(Box::new(move |stored| Some(f(stored.unwrap_or(fallback)))));
        Box::pin(async move { rewrite.await.map(drop).map_err(ConfigChangeError::Store) })
    }
}

impl ClusterInfo for Cluster {
    fn placement(&self) -> Option<ClusterConfig> {
        match &self.ports {
            Some((_, store)) => *store.watch().borrow(),
            None => Some(self.local),
        }
    }

    fn set_replicas(&self, replicas: usize) -> ConfigChange {
        self.change(move |c| ClusterConfig { replicas, ..c })
    }

    fn set_key_hash(&self, key_hash: KeyHash) -> ConfigChange {
        // Every member must place keys the same way: refused while one cannot.
        let lacking: Vec<String> = match &self.ports {
            Some((members, _)) => members
                .masters()
                .into_iter()
                .chain(members.auxiliaries())
                .filter(|n| !n.features.places_by(key_hash))
                .map(|n| n.id)
                .collect(),
            None => Vec::new(),
        };
        if !lacking.is_empty() {
            let setting = format!("key_hash={}", key_hash.as_str());
            return Box::pin(async move { Err(ConfigChangeError::Unsupported { setting, members: lacking }) });
        }
        self.change(move |c| ClusterConfig { key_hash, ..c })
    }

    fn masters(&self) -> Vec<MasterInfo> {
        match &self.ports {
            Some((members, _)) => {
                members.masters().into_iter().map(|m| MasterInfo { id: m.id, address: m.http_addr }).collect()
            }
            None => self.static_masters.clone(),
        }
    }

    fn zookeeper(&self) -> ZkState {
        self.ports.as_ref().map_or(ZkState::Disabled, |(members, _)| members.session())
    }

    fn is_coordinator(&self) -> bool {
        match &self.ports {
            Some((members, _)) => members.coordinator().as_deref() == Some(self.me.as_str()),
            None => true,
        }
    }

    fn coordinator(&self) -> Option<String> {
        match &self.ports {
            Some((members, _)) => members.coordinator(),
            None => Some(self.me.clone()),
        }
    }
}
