//! The auxiliary's core: it holds the data and serves it to masters.
//!
//! - [`Auxiliary`]: one running auxiliary: its store (restored from the newest snapshot), data
//!   server, active expiry and periodic snapshots; then its hand-off and stop.
//! - [`server`]: what the internal-protocol server answers ([`DataServer`]), and
//!   [`listener`]: its data port, on a thread of its own; [`apply`]: the
//!   read-modify-write operations it runs as one step when this node is a key's primary.
//! - [`recovery`]: whether this node may have missed writes, and [`catch_up`]: the reasons to
//!   recover and the pull from peers that ends it.
//! - [`fence`]: only a key's first registered owner runs its atomic steps.
//! - [`keyspace`]: `FLUSHALL` and the count behind `DBSIZE`.
//! - [`ops`]: transfers to new owners, the catch-up pull, snapshots on demand; [`peers`]: the
//!   seam in front of the network they reach peers through, and its in-memory side for tests.
//! - [`snapshot`]: the snapshot files; [`outbox`]: restored copies of other nodes' keys,
//!   kept out of the store.

pub mod apply;
pub mod catch_up;
pub mod fence;
pub mod keyspace;
pub mod listener;
pub mod ops;
pub mod outbox;
pub mod peers;
pub mod recovery;
pub mod server;
pub mod snapshot;

pub use catch_up::ClusterFeed;
pub use ops::SnapshotError;
pub use server::DataServer;
pub use tiercache_wire::Metrics;

use ops::AuxOps;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tiercache_placement::Member;
use tiercache_store::{Store, StoreConfig, SystemClock};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What an auxiliary needs to know.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `NODE_ID`.
    pub node_id: String,
    /// `INTERNAL_TOKEN`.
    pub token: String,
    /// Max entries.
    pub cache_size: usize,
    /// Max bytes of keys and values.
    pub cache_max_bytes: u64,
    /// Snapshot directory.
    pub backup_dir: PathBuf,
    /// Snapshot period in seconds, 0 = off.
    pub backup_interval_secs: u64,
    /// Restore the newest snapshot at start.
    pub restore: bool,
}

/// Snapshots and transfers of the auxiliary `settings` describes.
fn ops_for(
    settings: &Settings,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    outbox: outbox::Outbox,
    peers: Arc<dyn peers::Peers>,
) -> Arc<AuxOps> {
    Arc::new(AuxOps {
        store,
        backup_dir: settings.backup_dir.clone(),
        node_id: settings.node_id.clone(),
        metrics,
        peers,
        rt: tokio::runtime::Handle::current(),
        snapshot_lock: Arc::new(tokio::sync::Mutex::new(())),
        ownership: parking_lot::Mutex::new(None),
        outbox: parking_lot::Mutex::new(outbox),
        ownership_frozen: Default::default(),
    })
}

/// One running auxiliary.
pub struct Auxiliary {
    /// The data.
    pub store: Arc<Store>,
    /// The internal-protocol server.
    pub server: Arc<DataServer>,
    /// Its metrics.
    pub metrics: Arc<Metrics>,
    /// Where the data server listens.
    pub data_addr: SocketAddr,
    ops: Arc<AuxOps>,
    settings: Settings,
    stop_data: watch::Sender<bool>,
    /// Dropped with the auxiliary: ends the data thread.
    _data_thread: watch::Sender<()>,
    background: parking_lot::Mutex<Vec<JoinHandle<()>>>,
}

impl Auxiliary {
    /// Restores the newest snapshot and serves on `listener`; with `recovering`, reads are
    /// answered as recovering from the first connection on, until a catch-up ends it.
    pub async fn start(
        settings: Settings,
        listener: tokio::net::TcpListener,
        metrics: Arc<Metrics>,
        recovering: bool,
    ) -> std::io::Result<Auxiliary> {
        let config = StoreConfig {
            max_entries: settings.cache_size,
            max_bytes: settings.cache_max_bytes,
            ..StoreConfig::default()
        };
        let store = Arc::new(Store::new(config, Arc::new(SystemClock)));
        if settings.restore && (settings.backup_interval_secs > 0 || settings.backup_dir.exists()) {
            snapshot::remove_temp_snapshots(&settings.backup_dir);
            let (s, dir) = (store.clone(), settings.backup_dir.clone());
            let restored = tokio::task::spawn_blocking(move || snapshot::restore_newest(&s, &dir)).await.ok().flatten();
            match restored {
                Some((file, n, took)) => {
                    tracing::info!(file = %file.display(), entries = n, ms = took.as_millis() as u64, "restored snapshot")
                }
                None => tracing::info!(dir = %settings.backup_dir.display(), "no snapshot to restore; starting empty"),
            }
        }
        let outbox = match outbox::Ownership::read(&settings.backup_dir) {
            Some(o) if store.stats().keys > 0 => {
                let aside = outbox::set_aside(&store, &settings.node_id, o);
                if !aside.entries.is_empty() {
                    tracing::info!(
                        entries = aside.entries.len(),
                        "restored copies of keys other nodes owned set aside: sent to their owners, never served"
                    );
                }
                aside
            }
            _ => outbox::Outbox::default(),
        };
        let peers = Arc::new(peers::WirePeers { token: settings.token.clone(), rt: tokio::runtime::Handle::current() });
        let ops = ops_for(&settings, store.clone(), metrics.clone(), outbox, peers);
        let data_addr = listener.local_addr()?;
        let (stop_data, stop_rx) = watch::channel(false);
        let server =
            Arc::new(DataServer::new(store.clone(), settings.token.clone(), metrics.clone(), ops.clone(), recovering));
        let (data_thread, gone) = watch::channel(());
        listener::spawn_data_thread(listener, server.clone(), stop_rx, gone)?;
        let mut background = vec![tokio::spawn(active_expiry(store.clone()))];
        if settings.backup_interval_secs > 0 {
            background.push(tokio::spawn(periodic_snapshots(ops.clone(), settings.backup_interval_secs)));
        }
        Ok(Auxiliary {
            store,
            server,
            metrics,
            data_addr,
            ops,
            settings,
            stop_data,
            _data_thread: data_thread,
            background: background.into(),
        })
    }

    /// A data server for `node_id` with no socket, thread or background task, over an empty
    /// store of the default size, that reaches its peers through `peers`: master and auxiliary
    /// logic run against it in tests (see [`peers::MemPeers`]). A snapshot asked of it goes to
    /// a directory of its own under the system's temporary directory.
    pub fn in_memory(
        node_id: &str,
        metrics: Arc<Metrics>,
        peers: Arc<dyn peers::Peers>,
        recovering: bool,
    ) -> Arc<DataServer> {
        let config = StoreConfig::default();
        let settings = Settings {
            node_id: node_id.to_string(),
            token: String::new(),
            cache_size: config.max_entries,
            cache_max_bytes: config.max_bytes,
            backup_dir: std::env::temp_dir().join(format!("tiercache-in-memory-{node_id}")),
            backup_interval_secs: 0,
            restore: false,
        };
        let store = Arc::new(Store::new(config, Arc::new(SystemClock)));
        let ops = ops_for(&settings, store.clone(), metrics.clone(), outbox::Outbox::default(), peers);
        Arc::new(DataServer::new(store, settings.token.clone(), metrics, ops, recovering))
    }

    /// Follows the cluster: recovery on a stall or a lost session, and the catch-up.
    pub fn follow_cluster(&self, feed: ClusterFeed) {
        self.background.lock().extend(catch_up::start(&self.server, &self.ops, feed));
    }

    /// Ends the recovery of a start when the store is still empty: for a cluster that has
    /// acknowledged no write (the caller checked), there is nothing to catch up on. True
    /// when it ended.
    pub fn start_fresh(&self) -> bool {
        // Only the start's own recovery: a stall or a lost session since is another reason.
        self.store.stats().keys == 0 && self.server.start_epoch.is_some_and(|e| self.server.recovery.finish(e))
    }

    /// An auxiliary that started empty, in a cluster that has recorded no write, has missed
    /// nothing: it serves as a full replica at once. Checked once `registered`, so that a
    /// master recording the first write afterwards lists this node and routes that write here
    /// too; `has_written` asks the cluster (ZooKeeper's record of the first write), again
    /// every 200 ms while it cannot tell.
    pub async fn start_fresh_if_nothing_written<F, E>(
        &self,
        mut registered: watch::Receiver<bool>,
        has_written: impl Fn() -> F,
    ) where
        F: std::future::Future<Output = Result<bool, E>>,
        E: std::fmt::Display,
    {
        if self.store.stats().keys > 0 {
            return;
        }
        loop {
            if registered.wait_for(|r| *r).await.is_err() {
                return;
            }
            match has_written().await {
                Ok(true) => return,
                Ok(false) => {
                    if self.start_fresh() {
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

    /// Why this node is catching up, while it is.
    pub fn recovering(&self) -> Option<&'static str> {
        self.server.recovery.recovering().then(|| self.server.recovery.reason())
    }

    /// `/health` of an auxiliary.
    pub fn health(&self, zookeeper: &str) -> serde_json::Value {
        let s = self.store.stats();
        serde_json::json!({
            "status": "ok",
            "role": "auxiliary",
            "id": self.settings.node_id,
            "zookeeper": zookeeper,
            "recovering": self.recovering(),
            // The peers whose keys this node still waits for; the rest it serves already.
            "catching_up_from": self.server.recovery.waiting_for(),
            "keys": s.keys,
            "bytes": s.bytes,
        })
    }

    /// `/metrics` of an auxiliary, refreshed from the store.
    pub fn render_metrics(&self, zookeeper_connected: bool) -> String {
        let s = self.store.stats();
        let m = &self.metrics;
        m.sync_store(s.keys, s.bytes, s.evictions, s.expired);
        m.zookeeper_connected.set(zookeeper_connected as i64);
        m.recovering.set(self.recovering().is_some() as i64);
        m.render()
    }

    /// Hands every key to its owners among `remaining` (the auxiliaries that stay), so
    /// scale-in loses nothing even with one replica. Two passes: the first moves the bulk at
    /// once; masters take a moment to drop this node from their placement, so the second
    /// catches writes that landed meanwhile. Writes close before the second: a master still
    /// routing here then finds this node unreachable instead of getting an acknowledgement
    /// that no pass would carry.
    pub async fn hand_off(&self, mut remaining: Vec<Member>, placement: tiercache_placement::Settings) {
        // What this node hands off from now on are copies for others: the final snapshot must
        // tell them apart by the placement before the stop.
        self.ops.freeze_ownership();
        if remaining.is_empty() {
            return;
        }
        for (pass, wait) in [(1, Duration::from_millis(200)), (2, Duration::from_millis(2500))] {
            tokio::time::sleep(wait).await;
            if pass == 2 {
                self.server.close_writes();
            }
            self.hand_off_pass(&mut remaining, placement, pass).await;
        }
    }

    /// One pass of the hand-off. A target that fails is most likely leaving too (a scale-in by
    /// several nodes, each with a view that still held the others): the pass is done again
    /// without it, so its share goes to owners that stay. The coordinator's rebalance later
    /// moves keys to their owners in the final placement.
    async fn hand_off_pass(&self, remaining: &mut Vec<Member>, settings: tiercache_placement::Settings, pass: u32) {
        loop {
            let e = match self.ops.transfer(remaining, settings, false, &[]).await {
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
            remaining.retain(|m| m.id != e.target);
        }
    }

    /// Stops: refuses writes, closes the data port, takes the final snapshot (when snapshots
    /// are on) and ends the background tasks. The final snapshot must hold every write this
    /// node acknowledged (the last node of a cluster, or one whose hand-off failed, keeps its
    /// keys only there); its failure is returned so the process can exit non-zero.
    pub async fn stop(&self) -> Result<(), ops::SnapshotError> {
        self.server.close_writes();
        let _ = self.stop_data.send(true);
        let mut result = Ok(());
        if self.settings.backup_interval_secs > 0 {
            match self.ops.snapshot_now().await {
                Ok(s) => tracing::info!(entries = s.entries, "final snapshot written"),
                Err(e) => result = Err(e),
            }
        }
        for t in self.background.lock().drain(..) {
            t.abort();
        }
        result
    }
}

/// A sixteenth of the shards every 250 ms: every expired entry is reclaimed within about 4 s,
/// without one long burst of lock holding.
async fn active_expiry(store: Arc<Store>) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tick.tick().await;
        let s = store.clone();
        let step = s.shard_count().div_ceil(16);
        let _ = tokio::task::spawn_blocking(move || s.purge_expired_step(step)).await;
    }
}

async fn periodic_snapshots(ops: Arc<AuxOps>, every_secs: u64) {
    let every = Duration::from_secs(every_secs);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tick.tick().await;
        // snapshot_now logs a failure itself.
        let _ = ops.snapshot_now().await;
    }
}
