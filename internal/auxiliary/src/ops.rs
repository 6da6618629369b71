//! The auxiliary's slow operations: snapshots on demand, rebalance transfers to new owners,
//! and the catch-up pull from peers.

use crate::outbox::{Outbox, Ownership};
use crate::peers::{PeerLink, Peers};
use crate::snapshot::write_snapshot;
use bytes::Bytes;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tiercache_placement::{KeyHash, Member, Settings};
use tiercache_protocol::{RemoteError, Request, Response, SnapshotReply, WireEntry};
use tiercache_store::Store;
use tiercache_wire::{Metrics, WireError};

const BATCH: usize = 1000;
/// How long one batch of a transfer may take.
const BATCH_TIMEOUT: Duration = Duration::from_secs(30);

/// Snapshot and transfer logic of one auxiliary.
pub struct AuxOps {
    /// The data.
    pub store: Arc<Store>,
    /// Where snapshots go.
    pub backup_dir: PathBuf,
    /// This node's id (to know what it owns).
    pub node_id: String,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// How this node reaches its peers.
    pub peers: Arc<dyn Peers>,
    /// The node's runtime, off the data thread: slow requests run there.
    pub rt: tokio::runtime::Handle,
    /// Serialises snapshots so two never write at once.
    pub snapshot_lock: Arc<tokio::sync::Mutex<()>>,
    /// The placement this node last saw settle; written beside each snapshot (see
    /// [`crate::outbox`]).
    pub ownership: parking_lot::Mutex<Option<Ownership>>,
    /// Restored copies of keys that other nodes owned (see [`crate::outbox`]).
    pub outbox: parking_lot::Mutex<Outbox>,
    /// Set once a stop began: `ownership` no longer changes.
    pub ownership_frozen: std::sync::atomic::AtomicBool,
}

/// Why a transfer stopped part-way.
#[derive(Debug)]
pub struct TransferError {
    /// The auxiliary that did not take its batch.
    pub target: String,
    /// How the call failed, or what it answered instead.
    pub cause: WireError,
}

impl std::fmt::Display for TransferError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "transfer to {} failed: {}", self.target, self.cause)
    }
}

/// Why a snapshot was not written.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Writing the file (or the placement beside it) failed.
    #[error("snapshot to {dir}: {source}")]
    Io {
        /// `BACKUP_DIR`.
        dir: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The task writing it did not finish (it panicked or the runtime is stopping).
    #[error("snapshot task: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl AuxOps {
    /// Takes a snapshot now (one at a time), recording metrics.
    pub async fn snapshot_now(&self) -> Result<SnapshotReply, SnapshotError> {
        let _guard = self.snapshot_lock.lock().await;
        let (store, dir) = (self.store.clone(), self.backup_dir.clone());
        let ownership = self.ownership.lock().clone();
        let r = tokio::task::spawn_blocking(move || {
            let r = write_snapshot(&store, &dir)?;
            if let Some(o) = ownership {
                o.write(&dir)?;
            }
            Ok::<_, std::io::Error>(r)
        })
        .await
        .map_err(SnapshotError::from)
        .and_then(|r| r.map_err(|source| SnapshotError::Io { dir: self.backup_dir.clone(), source }));
        match &r {
            Ok(s) => {
                self.metrics.backup_duration.observe(s.duration_ms as f64 / 1000.0);
                self.metrics.backup_last_success.set(self.store.now_ms() as f64 / 1000.0);
                tracing::info!(
                    entries = s.entries,
                    bytes = s.bytes,
                    file = s.file,
                    ms = s.duration_ms,
                    "snapshot written"
                );
            }
            Err(e) => tracing::error!(error = %e, "snapshot failed"),
        }
        r
    }

    /// Catch-up after a start, a stall or a lost session: asks `peer` (one of `members`) to
    /// send this node every entry it owns (last-write-wins on arrival). Returns the entries
    /// applied.
    pub async fn pull_from(&self, members: &[Member], settings: Settings, peer: &Member) -> Result<u64, TransferError> {
        let id = &peer.id;
        // Under a previous view without this node, this node is the only new owner of its keys:
        // the peer's transfer then sends to it alone.
        let previous: Vec<String> = members.iter().filter(|m| m.id != self.node_id).map(|m| m.id.clone()).collect();
        let req = Request::Rebalance {
            members: members.iter().map(|m| (m.id.clone(), m.data_addr.clone())).collect(),
            virtual_nodes: settings.virtual_nodes,
            replicas: settings.replicas as u32,
            drop_unowned: false,
            previous,
        }
        .placed(settings.key_hash);
        match self.peers.connect(id, &peer.data_addr).call(&req, Duration::from_secs(600)).await {
            Ok(Response::Rebalanced { moved, .. }) => Ok(moved),
            Ok(other) => {
                Err(TransferError { target: id.clone(), cause: WireError::Unexpected(id.clone(), Box::new(other)) })
            }
            Err(cause) => Err(TransferError { target: id.clone(), cause }),
        }
    }

    /// Sends every entry this node holds to its other owners under `members`, then (when
    /// `drop_unowned`) removes the entries it no longer owns, unless they changed meanwhile.
    pub async fn transfer(
        &self,
        members: &[Member],
        settings: Settings,
        drop_unowned: bool,
        previous: &[String],
    ) -> Result<(u64, u64), TransferError> {
        let replicas = settings.replicas;
        let ids: Vec<&str> = members.iter().map(|m| m.id.as_str()).collect();
        let ring = settings.ring(&ids);
        let old_ring = (!previous.is_empty()).then(|| settings.ring(previous));
        let addrs: HashMap<&str, &str> = members.iter().map(|m| (m.id.as_str(), m.data_addr.as_str())).collect();
        let mut peers: HashMap<String, Box<dyn PeerLink>> = HashMap::new();
        let mut moved = 0u64;
        let mut unowned: Vec<(Bytes, u64)> = Vec::new();
        for shard in 0..self.store.shard_count() {
            let now = self.store.now_ms();
            let mut batches: HashMap<String, Vec<WireEntry>> = HashMap::new();
            for (key, e) in self.store.shard_entries(shard) {
                let owners = ring.owners(&key, replicas);
                // A copy about to be dropped goes to every owner first: an owner that lacks it
                // (or holds an older version) must not depend on the previous view being right.
                let dropping = drop_unowned && !owners.contains(&self.node_id.as_str());
                if dropping {
                    unowned.push((key.clone(), e.version));
                }
                let old_owners = old_ring.as_ref().map(|r| r.owners(&key, replicas)).unwrap_or_default();
                for o in owners.into_iter().filter(|o| *o != self.node_id && (dropping || !old_owners.contains(o))) {
                    batches.entry(o.to_string()).or_default().push(WireEntry {
                        key: key.clone(),
                        value: e.value.clone(),
                        version: e.version,
                        ttl_ms: e.remaining_ttl_ms(now),
                        expiry_seq: e.expiry_seq,
                    });
                }
            }
            moved += self.send(batches, &mut peers, &addrs).await?;
        }
        // Restored copies of other nodes' keys go to the owners they were held for, never to
        // this node's own store (see `crate::outbox`).
        let (sent_out, batches) = {
            let outbox = self.outbox.lock();
            (outbox.entries.len() as u64, outbox.batches(&ring, replicas, &self.node_id))
        };
        if !batches.is_empty() {
            moved += self.send(batches, &mut peers, &addrs).await?;
        }
        let mut dropped = 0;
        if drop_unowned {
            // The outbox is filled only at the start, so what was sent is all of it.
            self.outbox.lock().entries.clear();
            dropped += sent_out;
            for (key, version) in unowned {
                if self.store.remove_if_version(&key, version) {
                    dropped += 1;
                }
            }
        }
        Ok((moved, dropped))
    }
}

impl AuxOps {
    /// Remembers a settled placement, to be written beside the next snapshots (unless frozen).
    pub fn settled(&self, o: Ownership) {
        if !self.ownership_frozen.load(std::sync::atomic::Ordering::Acquire) {
            *self.ownership.lock() = Some(o);
        }
    }

    /// Keeps the placement as it is now (a stop is under way: members leaving are no reason to
    /// count the copies handed to this node as its own).
    pub fn freeze_ownership(&self) {
        self.ownership_frozen.store(true, std::sync::atomic::Ordering::Release);
    }

    /// Sends each target its entries in batches; the entries applied.
    async fn send(
        &self,
        batches: HashMap<String, Vec<WireEntry>>,
        peers: &mut HashMap<String, Box<dyn PeerLink>>,
        addrs: &HashMap<&str, &str>,
    ) -> Result<u64, TransferError> {
        let mut moved = 0;
        for (target, entries) in batches {
            let client = peers
                .entry(target.clone())
                .or_insert_with(|| self.peers.connect(&target, addrs.get(target.as_str()).copied().unwrap_or("")));
            for chunk in entries.chunks(BATCH) {
                match client.call(&Request::PutBatch { entries: chunk.to_vec() }, BATCH_TIMEOUT).await {
                    Ok(Response::Applied(n)) => {
                        moved += n;
                        self.metrics.rebalance_keys_moved.inc_by(n);
                    }
                    Ok(other) => {
                        let cause = WireError::Unexpected(target.clone(), Box::new(other));
                        return Err(TransferError { target, cause });
                    }
                    Err(cause) => return Err(TransferError { target, cause }),
                }
            }
        }
        Ok(moved)
    }

    /// A snapshot, as the data server answers it.
    pub async fn snapshot_answer(&self) -> Response {
        match self.snapshot_now().await {
            Ok(s) => Response::Snapshot(s),
            Err(e) => Response::Error(RemoteError::Snapshot(e.to_string())),
        }
    }

    /// A rebalance transfer, placing keys by `key_hash`, as the data server answers it.
    pub async fn rebalance_answer(&self, req: Request, key_hash: KeyHash) -> Response {
        let Request::Rebalance { members, virtual_nodes, replicas, drop_unowned, previous } = req else {
            return Response::Error(RemoteError::NotSupported);
        };
        let settings = Settings { virtual_nodes, replicas: replicas as usize, key_hash };
        let started = Instant::now();
        let members: Vec<Member> = members.into_iter().map(|(id, addr)| Member::auxiliary(id, addr)).collect();
        match self.transfer(&members, settings, drop_unowned, &previous).await {
            Ok((moved, dropped)) => {
                tracing::info!(moved, dropped, ms = started.elapsed().as_millis() as u64, "rebalance transfer done");
                Response::Rebalanced { moved, dropped }
            }
            Err(e) => Response::Error(RemoteError::Transfer { target: e.target, message: e.cause.to_string() }),
        }
    }
}
