//! Copies of other nodes' keys after a restart. A node that hands its keys off while its peers
//! are leaving too (a whole-cluster stop) ends with copies of keys it does not own in its
//! final snapshot; if they were restored into its store, the loss of a key's owner would make
//! this node the owner and serve the copy, although the key was overwritten since. So each
//! snapshot has the placement the node last saw settle written beside it (`owners.json`), and
//! on restore the entries that placement gave to other nodes go to the outbox instead: reads
//! never consult it and it is never merged into the store; the next transfer sends it to the
//! owners (last-write-wins there), and the ownership sweep drops it.

use serde::{Deserialize, Serialize};
use std::path::Path;
use tiercache_placement::Ring;
use tiercache_protocol::WireEntry;
use tiercache_store::Store;

/// A placement: who owned what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ownership {
    /// Every auxiliary's id.
    pub members: Vec<String>,
    /// Virtual nodes per auxiliary.
    pub virtual_nodes: u32,
    /// Copies per key.
    pub replicas: usize,
}

const FILE: &str = "owners.json";

impl Ownership {
    /// Writes it beside the snapshots (temporary file, fsync, rename).
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let tmp = dir.join(format!(".{FILE}.tmp"));
        let data = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&data)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, dir.join(FILE))
    }

    /// The one written beside the snapshots, if any (an unreadable one counts as none: every
    /// restored entry then stays, as before this file existed).
    pub fn read(dir: &Path) -> Option<Ownership> {
        let data = std::fs::read(dir.join(FILE)).ok()?;
        serde_json::from_slice::<Ownership>(&data).ok().filter(|o| !o.members.is_empty() && o.virtual_nodes > 0)
    }
}

/// Moves the entries of `store` that `ownership` gives to other nodes out of it; returns them.
pub fn set_aside(store: &Store, node_id: &str, ownership: &Ownership) -> Vec<WireEntry> {
    if !ownership.members.iter().any(|m| m == node_id) {
        // Not a member then (a renamed node?): nothing to tell apart.
        return Vec::new();
    }
    let ring = Ring::new(&ownership.members, ownership.virtual_nodes);
    let now = store.now_ms();
    let mut out = Vec::new();
    for shard in 0..store.shard_count() {
        for (key, e) in store.shard_entries(shard) {
            if ring.owners(&key, ownership.replicas).contains(&node_id) {
                continue;
            }
            if store.remove_if_version(&key, e.version) {
                out.push(WireEntry { ttl_ms: e.remaining_ttl_ms(now), key, value: e.value, version: e.version });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::sync::Arc;
    use tiercache_store::{ManualClock, StoreConfig};

    #[test]
    fn restored_copies_of_other_nodes_keys_leave_the_store() {
        let store = Store::new(StoreConfig::default(), Arc::new(ManualClock::new(1_000_000)));
        for i in 0..300 {
            store.put(Bytes::from(format!("k{i}")), Bytes::from_static(b"v"), 1, 0).unwrap();
        }
        let o = Ownership { members: vec!["a".into(), "b".into(), "c".into()], virtual_nodes: 64, replicas: 1 };
        let dir = tempfile::tempdir().unwrap();
        o.write(dir.path()).unwrap();
        let back = Ownership::read(dir.path()).unwrap();
        assert_eq!(back, o);
        let aside = set_aside(&store, "a", &back);
        let ring = Ring::new(&o.members, 64);
        assert!(!aside.is_empty() && aside.len() < 300, "{} set aside", aside.len());
        assert!(aside.iter().all(|e| ring.owners(&e.key, 1) != ["a"]));
        assert_eq!(store.stats().keys as usize + aside.len(), 300);
        for i in 0..300 {
            let k = format!("k{i}");
            assert_eq!(store.get(k.as_bytes()).is_some(), ring.owners(k.as_bytes(), 1) == ["a"], "{k}");
        }
    }
}
