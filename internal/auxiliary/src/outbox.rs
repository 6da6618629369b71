//! Copies of other nodes' keys after a restart. A node that hands its keys off while its peers
//! are leaving too (a whole-cluster stop) ends with copies of keys it does not own in its
//! final snapshot; if they were restored into its store, the loss of a key's owner would make
//! this node the owner and serve the copy, although the key was overwritten since. So each
//! snapshot has the placement the node last saw settle written beside it (`owners.json`), and
//! on restore the entries that placement gave to other nodes go to the outbox instead: reads
//! never consult it and it is never merged into the store; the next transfer sends each copy
//! to the owners it was held for, if they still own the key (last-write-wins there: an owner
//! that took newer writes keeps them), and the ownership sweep drops it. A copy is never sent
//! to a new owner: the owner it was held for may have taken writes since and died with them,
//! and the copy would bring back the overwritten value.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use tiercache_placement::{Ring, Settings};
use tiercache_protocol::WireEntry;
use tiercache_store::Store;

/// A placement: who owned what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ownership {
    /// Every auxiliary's id.
    pub members: Vec<String>,
    /// The placement settings (files written before `key_hash` existed read as whole-key).
    #[serde(flatten)]
    pub settings: Settings,
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
        serde_json::from_slice::<Ownership>(&data)
            .ok()
            .filter(|o| !o.members.is_empty() && o.settings.virtual_nodes > 0)
    }
}

/// Restored copies of other nodes' keys, and the placement that gave those keys to them.
#[derive(Debug, Default)]
pub struct Outbox {
    /// The copies.
    pub entries: Vec<WireEntry>,
    /// The placement written beside the snapshot they came from.
    pub placed_by: Option<Ownership>,
}

impl Outbox {
    /// The copies to send under the current placement (`ring`, `replicas`), by target: each to
    /// those of its owners then that still own it now, never to this node.
    pub fn batches(&self, ring: &Ring, replicas: usize, node_id: &str) -> HashMap<String, Vec<WireEntry>> {
        let mut batches: HashMap<String, Vec<WireEntry>> = HashMap::new();
        let Some(placed) = &self.placed_by else { return batches };
        let then = placed.settings.ring(&placed.members);
        for e in &self.entries {
            let held_for = then.owners(&e.key, placed.settings.replicas);
            for o in ring.owners(&e.key, replicas) {
                if o != node_id && held_for.contains(&o) {
                    batches.entry(o.to_string()).or_default().push(e.clone());
                }
            }
        }
        batches
    }
}

/// Moves the entries of `store` that `ownership` gives to other nodes out of it.
pub fn set_aside(store: &Store, node_id: &str, ownership: Ownership) -> Outbox {
    if !ownership.members.iter().any(|m| m == node_id) {
        // Not a member then (a renamed node?): nothing to tell apart.
        return Outbox::default();
    }
    let ring = ownership.settings.ring(&ownership.members);
    let now = store.now_ms();
    let mut out = Vec::new();
    for shard in 0..store.shard_count() {
        for (key, e) in store.shard_entries(shard) {
            if ring.owners(&key, ownership.settings.replicas).contains(&node_id) {
                continue;
            }
            if store.remove_if_version(&key, e.version) {
                out.push(WireEntry {
                    ttl_ms: e.remaining_ttl_ms(now),
                    key,
                    value: e.value,
                    version: e.version,
                    expiry_seq: e.expiry_seq,
                });
            }
        }
    }
    Outbox { entries: out, placed_by: Some(ownership) }
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
        let settings = Settings { virtual_nodes: 64, replicas: 1, key_hash: Default::default() };
        let o = Ownership { members: vec!["a".into(), "b".into(), "c".into()], settings };
        let dir = tempfile::tempdir().unwrap();
        o.write(dir.path()).unwrap();
        let back = Ownership::read(dir.path()).unwrap();
        assert_eq!(back, o);
        let aside = set_aside(&store, "a", back);
        let ring = Ring::new(&o.members, 64);
        let n = aside.entries.len();
        assert!(n > 0 && n < 300, "{n} set aside");
        assert!(aside.entries.iter().all(|e| ring.owners(&e.key, 1) != ["a"]));
        assert_eq!(store.stats().keys as usize + n, 300);
        // Under the same placement each copy goes back to the node it was held for.
        let sent: usize = aside.batches(&ring, 1, "a").values().map(Vec::len).sum();
        assert_eq!(sent, n);
        // "c" is gone: its keys now belong to "a" or "b", which must not get the old copies.
        let without_c = Ring::new(&["a", "b"], 64);
        let batches = aside.batches(&without_c, 1, "a");
        assert!(batches.keys().all(|t| t == "b"));
        let to_b = batches.get("b").map_or(0, Vec::len);
        let held_for_b = aside.entries.iter().filter(|e| ring.owners(&e.key, 1) == ["b"]).count();
        assert_eq!(to_b, held_for_b, "only the copies held for b, which still owns them");
        for i in 0..300 {
            let k = format!("k{i}");
            assert_eq!(store.get(k.as_bytes()).is_some(), ring.owners(k.as_bytes(), 1) == ["a"], "{k}");
        }
    }
}
