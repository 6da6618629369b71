//! Read your writes on one client connection. A write is acknowledged once the key's primary
//! and `WRITE_QUORUM` owners hold it; the other owners may get it a moment later. A read that
//! an owner without it answers first (the primary is asked last while it is recovering) would
//! miss the client's own write, so the connection remembers the version of its recent writes
//! and its reads do not count answers older than that (see [`crate::Router::read_at_least`]).

use bytes::Bytes;
use std::collections::HashMap;

/// Keys remembered at most; past that, floors older than [`HORIZON_MS`] are forgotten first.
const CAPACITY: usize = 4096;
/// A floor matters only while the write may still be on its way to an owner: an owner that
/// failed to take it within the request timeout is marked as having missed writes, and its
/// reads do not count until it caught up. Well above any request timeout.
const HORIZON_MS: u64 = 30_000;

/// The versions of one connection's recent writes, by key.
#[derive(Debug, Default)]
pub struct WriteFloors {
    versions: HashMap<Bytes, u64>,
}

impl WriteFloors {
    /// Remembers that this connection wrote `key` at `version`.
    pub fn note(&mut self, key: &Bytes, version: u64) {
        if self.versions.len() >= CAPACITY && !self.versions.contains_key(key) {
            let oldest = (version >> 16).saturating_sub(HORIZON_MS) << 16;
            self.versions.retain(|_, v| *v >= oldest);
            if self.versions.len() >= CAPACITY {
                // All recent: the pipeline that wrote them has read them back long ago or is
                // unusually wide; forgetting costs only the guarantee for those keys.
                self.versions.clear();
            }
        }
        let v = self.versions.entry(key.clone()).or_insert(0);
        *v = (*v).max(version);
    }

    /// The version a read of `key` must see (0: none).
    pub fn floor(&self, key: &[u8]) -> u64 {
        self.versions.get(key).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floors_are_per_key_rise_only_and_stay_bounded() {
        let mut f = WriteFloors::default();
        let k = Bytes::from_static(b"k");
        f.note(&k, 5 << 16);
        f.note(&k, 3 << 16);
        assert_eq!(f.floor(b"k"), 5 << 16);
        assert_eq!(f.floor(b"other"), 0);
        let now = 1_000_000u64;
        for i in 0..CAPACITY as u64 * 2 {
            f.note(&Bytes::from(format!("k{i}")), (now + i) << 16);
        }
        assert!(f.versions.len() <= CAPACITY);
        let last = format!("k{}", CAPACITY * 2 - 1);
        assert_eq!(f.floor(last.as_bytes()), (now + CAPACITY as u64 * 2 - 1) << 16);
    }
}
