//! Snapshot files in `BACKUP_DIR`: written to a temporary file, fsynced and renamed (the two
//! newest kept); the newest valid one restored at start; corrupt ones set aside; temporary
//! files of failed or interrupted snapshots removed.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tiercache_protocol::SnapshotReply;
use tiercache_store::{decode_snapshot_with, encode_snapshot, SnapshotEntry, Store};

const SNAPSHOTS_KEPT: usize = 2;

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
    if let Err(e) = std::fs::rename(&tmp, &dest) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
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
            expiry_seq: e.expiry_seq,
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
        let result = decode_snapshot_with(&data, |e| {
            if store.apply_raw(e.key, e.value, e.version, e.expires_at_ms, e.expiry_seq).unwrap_or(false) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::sync::Arc;
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
