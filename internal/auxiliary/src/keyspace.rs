//! Operations over the whole keyspace of one auxiliary: `FLUSHALL`, and the counts and walks
//! behind `DBSIZE` and `SCAN` (each key counted on its first owner only, so the sum over all
//! auxiliaries has each key once).

use tiercache_placement::Ring;
use tiercache_store::Store;

/// Deletes every live key older than `version` (tombstones, so replicas and transfers agree);
/// a write newer than the flush survives. Returns the keys deleted.
pub fn flush(store: &Store, version: u64) -> u64 {
    let mut deleted = 0;
    for shard in 0..store.shard_count() {
        for (key, e) in store.shard_entries(shard) {
            if e.value.is_some() && e.version < version && store.delete(key, version).existed {
                deleted += 1;
            }
        }
    }
    deleted
}

/// Live keys whose first owner on `ring` is `me`: summed over every auxiliary, each key once.
pub fn count_primary(store: &Store, me: &str, ring: &Ring) -> u64 {
    let mut n = 0;
    for shard in 0..store.shard_count() {
        n += store
            .shard_entries(shard)
            .iter()
            .filter(|(key, e)| e.value.is_some() && ring.owners(key, 1).first().is_some_and(|o| *o == me))
            .count() as u64;
    }
    n
}

/// [`count_primary`], with how many of those keys expire and their times to live summed.
pub fn census(store: &Store, me: &str, ring: &Ring) -> tiercache_protocol::Census {
    let mut c = tiercache_protocol::Census::default();
    for shard in 0..store.shard_count() {
        let now = store.now_ms();
        for (key, e) in store.shard_entries(shard) {
            if e.value.is_some() && ring.owners(&key, 1).first().is_some_and(|o| *o == me) {
                c.keys += 1;
                if e.expires_at_ms != 0 {
                    c.expires += 1;
                    c.ttl_ms_sum += e.remaining_ttl_ms(now);
                }
            }
        }
    }
    c
}

/// The live keys of `shard` whose first owner on `ring` is `me`, matching `pattern`.
pub fn scan_shard(store: &Store, shard: usize, me: &str, ring: &Ring, pattern: Option<&[u8]>) -> Vec<bytes::Bytes> {
    if shard >= store.shard_count() {
        return Vec::new();
    }
    store
        .shard_entries(shard)
        .into_iter()
        .filter(|(key, e)| e.value.is_some() && ring.owners(key, 1).first().is_some_and(|o| *o == me))
        .filter(|(key, _)| pattern.is_none_or(|p| tiercache_protocol::glob::matches(p, key)))
        .map(|(key, _)| key)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::sync::Arc;
    use tiercache_store::{ManualClock, StoreConfig};

    #[test]
    fn flush_spares_newer_writes_and_counts_split_keys_once() {
        let s = Store::new(StoreConfig::default(), Arc::new(ManualClock::new(1_000)));
        for i in 0..100 {
            s.put(Bytes::from(format!("k{i}")), Bytes::from_static(b"v"), 5, 0).unwrap();
        }
        s.put(Bytes::from_static(b"late"), Bytes::from_static(b"v"), 20, 0).unwrap();
        let ring = Ring::new(&["a", "b"], 64);
        assert_eq!(count_primary(&s, "a", &ring) + count_primary(&s, "b", &ring), 101);
        assert_eq!(flush(&s, 10), 100);
        assert_eq!(s.get(b"late").and_then(|e| e.value), Some(Bytes::from_static(b"v")));
        assert_eq!(s.get(b"k1").and_then(|e| e.value), None);
    }
}
