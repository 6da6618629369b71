//! The auxiliary's slow operations: snapshots to `BACKUP_DIR`, restore at start, and
//! rebalance transfers to new owners.

use bytes::Bytes;
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tiercache_cluster::{AuxClient, Metrics, SlowOps};
use tiercache_placement::Ring;
use tiercache_protocol::{Request, Response, SnapshotReply, WireEntry};
use tiercache_store::{decode_snapshot_with, encode_snapshot, SnapshotEntry, Store};
use tokio::runtime::Handle;

const BATCH: usize = 1000;
const SNAPSHOTS_KEPT: usize = 2;

/// Snapshot and transfer logic of one auxiliary.
pub struct AuxOps {
    /// The data.
    pub store: Arc<Store>,
    /// Where snapshots go.
    pub backup_dir: PathBuf,
    /// This node's id (to know what it owns).
    pub node_id: String,
    /// Shared secret for peer connections.
    pub token: String,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Runtime for peer connections.
    pub rt: Handle,
    /// Serialises snapshots so two never write at once.
    pub snapshot_lock: Arc<tokio::sync::Mutex<()>>,
}

fn snapshot_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("snapshot-") && n.ends_with(".bin"))
                })
                .collect()
        })
        .unwrap_or_default();
    // Names carry a zero-padded timestamp: lexical order is time order. Newest first.
    files.sort();
    files.reverse();
    files
}

fn is_temp_snapshot(name: &str) -> bool {
    name.starts_with(".snapshot-") && name.ends_with(".tmp")
}

/// Removes temporary files left by snapshots that failed or were cut short by a crash: they
/// are never restored, and on a full disk they keep every later snapshot from fitting.
pub fn remove_temp_snapshots(dir: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else { return 0 };
    rd.filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(is_temp_snapshot))
        .filter(|p| match std::fs::remove_file(p) {
            Ok(()) => {
                tracing::warn!(file = %p.display(), "removed the temporary file of an unfinished snapshot");
                true
            }
            Err(e) => {
                tracing::error!(file = %p.display(), error = %e, "cannot remove an unfinished snapshot");
                false
            }
        })
        .count()
}

/// Writes a snapshot of `store` into `dir`: temporary file, fsync, rename, fsync of the
/// directory; older snapshots beyond the newest two are removed only afterwards. On any
/// failure the temporary file is removed, so a full disk does not stay full.
pub fn write_snapshot(store: &Store, dir: &Path) -> std::io::Result<SnapshotReply> {
    let started = Instant::now();
    std::fs::create_dir_all(dir)?;
    let now = store.now_ms();
    let name = format!("snapshot-{now:015}.bin");
    let tmp = dir.join(format!(".{name}.tmp"));
    let written = write_snapshot_file(store, &tmp);
    let (count, bytes) = match written {
        Ok(x) => x,
        Err(e) => {
            if let Err(rm) = std::fs::remove_file(&tmp) {
                if rm.kind() != std::io::ErrorKind::NotFound {
                    tracing::error!(file = %tmp.display(), error = %rm, "cannot remove the failed snapshot's file");
                }
            }
            return Err(e);
        }
    };
    let dest = dir.join(&name);
    std::fs::rename(&tmp, &dest)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    for old in snapshot_files(dir).into_iter().skip(SNAPSHOTS_KEPT) {
        let _ = std::fs::remove_file(old);
    }
    Ok(SnapshotReply {
        entries: count,
        bytes,
        file: dest.display().to_string(),
        duration_ms: started.elapsed().as_millis() as u64,
    })
}

fn write_snapshot_file(store: &Store, path: &Path) -> std::io::Result<(u64, u64)> {
    let file = std::fs::File::create(path)?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    let entries = (0..store.shard_count()).flat_map(|i| {
        store.shard_entries(i).into_iter().map(|(key, e)| SnapshotEntry {
            key,
            value: e.value,
            version: e.version,
            expires_at_ms: e.expires_at_ms,
        })
    });
    let written = encode_snapshot(&mut w, entries).map_err(std::io::Error::other)?;
    let file = w.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok(written)
}

/// Loads the newest valid snapshot of `dir` into `store`, skipping expired entries. Corrupt
/// files are renamed `*.corrupt` and the next older one is tried; never fails the start.
pub fn restore_newest(store: &Store, dir: &Path) -> Option<(PathBuf, u64, Duration)> {
    for path in snapshot_files(dir) {
        let started = Instant::now();
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(file = %path.display(), error = %e, "cannot read snapshot; trying an older one");
                continue;
            }
        };
        let mut loaded = 0;
        let result = decode_snapshot_with(&data, |key, value, version, expires_at_ms| {
            if store.apply_raw(key, value, version, expires_at_ms).unwrap_or(false) {
                loaded += 1;
            }
        });
        match result {
            Ok(_) => return Some((path, loaded, started.elapsed())),
            Err(e) => {
                let aside = path.with_extension("corrupt");
                tracing::error!(file = %path.display(), error = %e, moved_to = %aside.display(), "snapshot is corrupt; set aside, trying an older one");
                let _ = std::fs::rename(&path, &aside);
            }
        }
    }
    None
}

/// Why a transfer stopped part-way.
#[derive(Debug)]
pub struct TransferError {
    /// The auxiliary that did not take its batch.
    pub target: String,
    /// What it answered, or how the call failed.
    pub message: String,
}

impl std::fmt::Display for TransferError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "transfer to {} failed: {}", self.target, self.message)
    }
}

impl AuxOps {
    /// Takes a snapshot now (one at a time), recording metrics.
    pub async fn snapshot_now(&self) -> Result<SnapshotReply, String> {
        let _guard = self.snapshot_lock.lock().await;
        let (store, dir) = (self.store.clone(), self.backup_dir.clone());
        let r = tokio::task::spawn_blocking(move || write_snapshot(&store, &dir))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| format!("snapshot to {}: {e}", self.backup_dir.display())));
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
            Err(e) => tracing::error!(error = e, "snapshot failed"),
        }
        r
    }

    /// Catch-up after a start, a stall or a lost session: asks every peer in `members` to send
    /// this node every entry it owns (last-write-wins on arrival). Returns the entries applied.
    pub async fn pull_from_peers(
        &self,
        members: &[(String, String)],
        virtual_nodes: u32,
        replicas: usize,
    ) -> Result<u64, TransferError> {
        // Under a previous view without this node, this node is the only new owner of its keys:
        // each peer's transfer then sends to it alone.
        let previous: Vec<String> =
            members.iter().filter(|(id, _)| *id != self.node_id).map(|(id, _)| id.clone()).collect();
        let req = Request::Rebalance {
            members: members.to_vec(),
            virtual_nodes,
            replicas: replicas as u32,
            drop_unowned: false,
            previous,
        };
        let calls = members.iter().filter(|(id, _)| *id != self.node_id).map(|(id, addr)| {
            let req = &req;
            async move {
                let client = AuxClient::new(&self.rt, id, addr, &self.token, 1, Duration::from_secs(30));
                let r = client.call_with_timeout(req, Duration::from_secs(600)).await;
                (id, r)
            }
        });
        let mut received = 0;
        for (id, r) in futures::future::join_all(calls).await {
            match r {
                Ok(Response::Rebalanced { moved, .. }) => received += moved,
                Ok(other) => {
                    return Err(TransferError { target: id.clone(), message: format!("unexpected answer {other:?}") })
                }
                Err(e) => return Err(TransferError { target: id.clone(), message: e.to_string() }),
            }
        }
        Ok(received)
    }

    /// Sends every entry this node holds to its other owners under `members`, then (when
    /// `drop_unowned`) removes the entries it no longer owns, unless they changed meanwhile.
    pub async fn transfer(
        &self,
        members: &[(String, String)],
        virtual_nodes: u32,
        replicas: usize,
        drop_unowned: bool,
        previous: &[String],
    ) -> Result<(u64, u64), TransferError> {
        let ids: Vec<&str> = members.iter().map(|(id, _)| id.as_str()).collect();
        let ring = Ring::new(&ids, virtual_nodes);
        let old_ring = (!previous.is_empty()).then(|| Ring::new(previous, virtual_nodes));
        let addrs: HashMap<&str, &str> = members.iter().map(|(i, a)| (i.as_str(), a.as_str())).collect();
        let mut peers: HashMap<String, AuxClient> = HashMap::new();
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
                    });
                }
            }
            for (target, entries) in batches {
                let client = peers.entry(target.clone()).or_insert_with(|| {
                    AuxClient::new(
                        &self.rt,
                        &target,
                        addrs.get(target.as_str()).copied().unwrap_or(""),
                        &self.token,
                        1,
                        Duration::from_secs(30),
                    )
                });
                for chunk in entries.chunks(BATCH) {
                    match client.call(&Request::PutBatch { entries: chunk.to_vec() }).await {
                        Ok(Response::Applied(n)) => {
                            moved += n;
                            self.metrics.rebalance_keys_moved.inc_by(n);
                        }
                        Ok(other) => {
                            return Err(TransferError { target, message: format!("unexpected answer {other:?}") })
                        }
                        Err(e) => return Err(TransferError { target, message: e.to_string() }),
                    }
                }
            }
        }
        let mut dropped = 0;
        if drop_unowned {
            for (key, version) in unowned {
                if self.store.remove_if_version(&key, version) {
                    dropped += 1;
                }
            }
        }
        Ok((moved, dropped))
    }
}

/// Adapter giving the data server access to the slow operations.
pub struct SlowAdapter(pub Arc<AuxOps>);

impl SlowOps for SlowAdapter {
    fn snapshot(&self) -> BoxFuture<'static, Response> {
        let ops = self.0.clone();
        Box::pin(async move {
            match ops.snapshot_now().await {
                Ok(s) => Response::Snapshot(s),
                Err(e) => Response::Error(e),
            }
        })
    }

    fn rebalance(&self, req: Request) -> BoxFuture<'static, Response> {
        let ops = self.0.clone();
        Box::pin(async move {
            let Request::Rebalance { members, virtual_nodes, replicas, drop_unowned, previous } = req else {
                return Response::Error("not a rebalance request".into());
            };
            let started = Instant::now();
            match ops.transfer(&members, virtual_nodes, replicas as usize, drop_unowned, &previous).await {
                Ok((moved, dropped)) => {
                    tracing::info!(
                        moved,
                        dropped,
                        ms = started.elapsed().as_millis() as u64,
                        "rebalance transfer done"
                    );
                    Response::Rebalanced { moved, dropped }
                }
                Err(e) => Response::Error(e.to_string()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tiercache_store::{ManualClock, StoreConfig};

    #[test]
    fn snapshot_restore_skips_expired_and_survives_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(1_000_000));
        let store = Store::new(StoreConfig::default(), clock.clone());
        for i in 0..1000u32 {
            let ttl = if i % 10 == 0 { 5_000 } else { 0 };
            store.put(Bytes::from(format!("k{i}")), Bytes::from(vec![1u8; 100]), 1, ttl).unwrap();
        }
        let first = write_snapshot(&store, dir.path()).unwrap();
        assert_eq!(first.entries, 1000);
        clock.advance(10);
        store.put(Bytes::from_static(b"late"), Bytes::from_static(b"v"), 2, 0).unwrap();
        let second = write_snapshot(&store, dir.path()).unwrap();
        assert_eq!(second.entries, 1001);

        clock.advance(10_000);
        let fresh = Store::new(StoreConfig::default(), clock.clone());
        let (file, loaded, _) = restore_newest(&fresh, dir.path()).unwrap();
        assert_eq!(file.display().to_string(), second.file);
        assert_eq!(loaded, 901, "expired entries skipped");

        // Corrupt the newest: the older one is used and the bad one set aside.
        let data = std::fs::read(&second.file).unwrap();
        std::fs::write(&second.file, &data[..data.len() / 2]).unwrap();
        let fresh = Store::new(StoreConfig::default(), clock.clone());
        let (file, loaded, _) = restore_newest(&fresh, dir.path()).unwrap();
        assert_eq!(file.display().to_string(), first.file);
        assert_eq!(loaded, 900);
        assert!(Path::new(&second.file).with_extension("corrupt").exists());
    }
}
