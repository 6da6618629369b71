//! The supervisor of the ZooKeeper session: registration, the watches of both directories,
//! the election and the configuration, and a new session after an expiry.

use crate::config::{read_config, Stored};
use crate::{opts, ClusterConfig, DiscoveryConfig, Member, Membership, Role, ZkState};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{oneshot, watch};
use zookeeper_client as zk;

enum SessionEnd {
    Leave,
    Lost(String),
}

/// Where the supervisor publishes what it sees.
pub(crate) struct Channels {
    pub(crate) membership: watch::Sender<Arc<Membership>>,
    pub(crate) status: watch::Sender<ZkState>,
    pub(crate) config: watch::Sender<Option<ClusterConfig>>,
    pub(crate) fatal: watch::Sender<Option<String>>,
    /// The live session's client, for writes made on behalf of the node (`PUT /config`).
    pub(crate) client: Arc<parking_lot::Mutex<Option<zk::Client>>>,
}

pub(crate) async fn supervise(cfg: DiscoveryConfig, chans: Channels, mut leave: oneshot::Receiver<()>) {
    let s_tx = &chans.status;
    let mut backoff = Duration::from_millis(200);
    loop {
        s_tx.send_replace(ZkState::Connecting);
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
                s_tx.send_replace(ZkState::Disconnected);
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

async fn list(client: &zk::Client, dir: &str) -> Result<(Vec<Member>, zk::OneshotWatcher), zk::Error> {
    let (children, watcher) = client.list_and_watch_children(dir).await?;
    Ok((members_of(client, dir, children).await?, watcher))
}

/// The members whose znodes are `children` of `dir`, sorted.
pub(crate) async fn members_of(
    client: &zk::Client,
    dir: &str,
    children: Vec<String>,
) -> Result<Vec<Member>, zk::Error> {
    let mut out = Vec::with_capacity(children.len());
    for c in children {
        match client.get_data(&format!("{dir}/{c}")).await {
            Ok((data, _)) => match serde_json::from_slice::<Member>(&data) {
                Ok(m) => out.push(m),
                Err(e) => tracing::warn!(node = c, error = %e, "ignoring znode with unreadable data"),
            },
            Err(zk::Error::NoNode) => {}
            Err(e) => return Err(e),
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
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
        s_tx.send_replace(ZkState::Connected);
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
    s_tx: &watch::Sender<ZkState>,
    leave: &mut oneshot::Receiver<()>,
) -> Option<SessionEnd> {
    loop {
        match s {
            zk::SessionState::SyncConnected | zk::SessionState::ConnectedReadOnly => return None,
            zk::SessionState::Disconnected => {
                tracing::warn!("ZooKeeper disconnected; keeping the last membership");
                s_tx.send_replace(ZkState::Disconnected);
            }
            other => return Some(SessionEnd::Lost(other.to_string())),
        }
        s = tokio::select! {
            s = state.changed() => s,
            _ = &mut *leave => return Some(SessionEnd::Leave),
        };
    }
}
