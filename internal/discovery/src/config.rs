//! The cluster configuration in `${ZK_ROOT}/config`: its type, how it is read (and published
//! by the first master), and how it is rewritten without losing the fields of other releases.

use crate::session::members_of;
use crate::{opts, Member};
use std::sync::Arc;
use tiercache_placement::{ClusterConfig, KeyHash};
use zookeeper_client as zk;

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

/// Rewrites the stored cluster configuration through the live session.
#[derive(Clone)]
pub struct ConfigWriter {
    pub(crate) client: Arc<parking_lot::Mutex<Option<zk::Client>>>,
    pub(crate) path: String,
    /// `ZK_ROOT`.
    pub(crate) root: String,
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
    pub async fn record_written(&self) -> Result<Vec<Member>, ConfigWriteError> {
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

/// The stored cluster configuration as read.
pub(crate) enum Stored {
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
pub(crate) async fn read_config(
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
