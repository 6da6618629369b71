//! The sharded, size-bounded LRU: eviction by entries and bytes, lazy and active expiry,
//! last-write-wins on every write, tombstones for deletes.

use crate::entry::{expired, unpack, Entry, Packed};
use crate::lru::SlabLru;
use crate::{Clock, StoreError};
use bytes::Bytes;
use parking_lot::{Mutex, MutexGuard};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tiercache_protocol::last_write_wins;

/// Limits of a store.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Maximum number of entries (tombstones included).
    pub max_entries: usize,
    /// Maximum bytes of keys plus values.
    pub max_bytes: u64,
    /// How long a delete marker is kept to stop older writes from resurrecting the key.
    pub tombstone_ttl_ms: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig { max_entries: 1_000_000, max_bytes: 1 << 30, tombstone_ttl_ms: 300_000 }
    }
}

/// Totals of a store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Live keys (tombstones excluded).
    pub keys: u64,
    /// Bytes of keys plus values.
    pub bytes: u64,
    /// Delete markers held.
    pub tombstones: u64,
    /// Entries evicted by the LRU bound since start.
    pub evictions: u64,
    /// Entries removed because their TTL passed, since start.
    pub expired: u64,
}

struct Shard {
    /// Packed entry to its version.
    lru: SlabLru<Packed>,
    bytes: u64,
    /// Entries with an expiry: active expiry skips shards without any (the common case of a
    /// cache used without TTLs costs no scan).
    expiring: usize,
}

/// The sharded LRU.
pub struct Store {
    shards: Box<[Mutex<Shard>]>,
    shard_max_entries: usize,
    shard_max_bytes: u64,
    tombstone_ttl_ms: u64,
    keys: AtomicU64,
    bytes: AtomicU64,
    tombstones: AtomicU64,
    evictions: AtomicU64,
    expired: AtomicU64,
    purge_cursor: std::sync::atomic::AtomicUsize,
    clock: Arc<dyn Clock>,
}

/// Outcome of a delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeleteOutcome {
    /// A live value was there before.
    pub existed: bool,
    /// The tombstone was newer than what was stored and took its place.
    pub applied: bool,
}

impl Store {
    /// A store with the given limits and clock. Small stores get one shard so their LRU order
    /// is exact; large ones up to 64 shards so cores do not contend.
    pub fn new(config: StoreConfig, clock: Arc<dyn Clock>) -> Self {
        let by_entries = (config.max_entries / 4096).max(1);
        let by_bytes = (config.max_bytes / (4 << 20)).max(1) as usize;
        let n = by_entries.min(by_bytes).min(64);
        let n = if n.is_power_of_two() { n } else { n.next_power_of_two() / 2 };
        let shards = (0..n)
            .map(|_| Mutex::new(Shard { lru: SlabLru::new(), bytes: 0, expiring: 0 }))
            .collect::<Vec<_>>()
            .into_boxed_slice();
        Store {
            shards,
            shard_max_entries: (config.max_entries / n).max(1),
            shard_max_bytes: (config.max_bytes / n as u64).max(1),
            tombstone_ttl_ms: config.tombstone_ttl_ms,
            keys: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            tombstones: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            expired: AtomicU64::new(0),
            purge_cursor: std::sync::atomic::AtomicUsize::new(0),
            clock,
        }
    }

    /// The store's clock reading.
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Number of shards (each locked on its own).
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    fn shard_index(&self, key: &[u8]) -> usize {
        // Low bits: the ring places keys by position on the hash circle (high bits), so low
        // bits stay uniform within one auxiliary's keys.
        (xxhash_rust::xxh3::xxh3_64(key) as usize) & (self.shards.len() - 1)
    }

    fn lock(&self, i: usize) -> MutexGuard<'_, Shard> {
        self.shards[i].lock()
    }

    fn account_remove(&self, p: &Packed, shard: &mut Shard) {
        let l = p.layout();
        if l.expires_at_ms != 0 {
            shard.expiring -= 1;
        }
        let size = (p.data.len() - l.key_start) as u64;
        shard.bytes -= size;
        self.bytes.fetch_sub(size, Ordering::Relaxed);
        if l.tombstone {
            self.tombstones.fetch_sub(1, Ordering::Relaxed);
        } else {
            self.keys.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn account_add(&self, p: &Packed, shard: &mut Shard) {
        let l = p.layout();
        if l.expires_at_ms != 0 {
            shard.expiring += 1;
        }
        let size = (p.data.len() - l.key_start) as u64;
        shard.bytes += size;
        self.bytes.fetch_add(size, Ordering::Relaxed);
        if l.tombstone {
            self.tombstones.fetch_add(1, Ordering::Relaxed);
        } else {
            self.keys.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Looks a key up, promoting it in the LRU. Returns tombstones too (so replicas can compare
    /// versions); an expired entry is removed and reported as absent.
    pub fn get(&self, key: &[u8]) -> Option<Entry> {
        let now = self.clock.now_ms();
        let i = self.shard_index(key);
        let mut shard = self.lock(i);
        match shard.lru.get(key) {
            None => return None,
            Some((p, v)) if !p.is_expired(now) => return Some(unpack(p, v)),
            Some(_) => {}
        }
        if let Some((p, _)) = shard.lru.remove(key) {
            self.account_remove(&p, &mut shard);
            if !p.is_tombstone() {
                self.expired.fetch_add(1, Ordering::Relaxed);
            }
        }
        None
    }

    /// Stores a value written at `version`, living `ttl_ms` (0 = forever). Returns whether it
    /// was applied (false when a newer version is already stored).
    pub fn put(&self, key: Bytes, value: Bytes, version: u64, ttl_ms: u64) -> Result<bool, StoreError> {
        self.apply_raw(&key, Some(&value), version, self.expires_at(ttl_ms))
    }

    /// Absolute expiry for a time to live given in ms (0 = never expires).
    pub fn expires_at(&self, ttl_ms: u64) -> u64 {
        if ttl_ms == 0 {
            0
        } else {
            self.clock.now_ms().saturating_add(ttl_ms)
        }
    }

    /// Deletes by writing a tombstone at `version` (one shard lock for the check and the write).
    pub fn delete(&self, key: Bytes, version: u64) -> DeleteOutcome {
        let expires = self.clock.now_ms().saturating_add(self.tombstone_ttl_ms);
        let (applied, existed) = self.apply_inner(&key, None, version, expires).unwrap_or((false, false));
        DeleteOutcome { existed, applied }
    }

    /// Inserts an entry if it supersedes what is stored (last-write-wins), then evicts least
    /// recently used entries of the shard until it is within its bounds.
    pub fn apply(&self, key: Bytes, entry: Entry) -> Result<bool, StoreError> {
        self.apply_raw(&key, entry.value.as_deref(), entry.version, entry.expires_at_ms)
    }

    /// [`Store::apply`] from borrowed parts (restore copies straight from the snapshot bytes).
    pub fn apply_raw(
        &self,
        key: &[u8],
        value: Option<&[u8]>,
        version: u64,
        expires_at_ms: u64,
    ) -> Result<bool, StoreError> {
        self.apply_inner(key, value, version, expires_at_ms).map(|(applied, _)| applied)
    }

    /// Applies under one shard lock; also says whether a live value was there before.
    fn apply_inner(
        &self,
        key: &[u8],
        value: Option<&[u8]>,
        version: u64,
        expires_at_ms: u64,
    ) -> Result<(bool, bool), StoreError> {
        let now = self.clock.now_ms();
        if expired(expires_at_ms, now) {
            return Ok((false, false));
        }
        let size = (key.len() + value.map_or(0, <[u8]>::len)) as u64;
        if size > self.shard_max_bytes {
            return Err(StoreError::TooLarge { size, limit: self.shard_max_bytes });
        }
        let i = self.shard_index(key);
        let mut shard = self.lock(i);
        let mut existed = false;
        if let Some((p, v)) = shard.lru.peek(key) {
            if !p.is_expired(now) {
                existed = !p.is_tombstone();
                if !last_write_wins(version, value, v, p.value()) {
                    return Ok((false, existed));
                }
            }
        }
        let packed = Packed::new(key, value, expires_at_ms);
        self.account_add(&packed, &mut shard);
        if let Some((old, _)) = shard.lru.insert(packed, version) {
            self.account_remove(&old, &mut shard);
        }
        while shard.lru.len() > self.shard_max_entries || shard.bytes > self.shard_max_bytes {
            match shard.lru.pop_lru() {
                Some((p, v)) if p.key() == key => {
                    // Only the new entry is left; it fits (checked above), put it back.
                    shard.lru.push_new(p, v);
                    break;
                }
                Some((p, _)) => {
                    self.account_remove(&p, &mut shard);
                    if !p.is_tombstone() {
                        let counter = if p.is_expired(now) { &self.expired } else { &self.evictions };
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                }
                None => break,
            }
        }
        Ok((true, existed))
    }

    /// Removes the key only if its stored version is still `version`: used after a transfer so a
    /// write that raced it is not lost.
    pub fn remove_if_version(&self, key: &[u8], version: u64) -> bool {
        let i = self.shard_index(key);
        let mut shard = self.lock(i);
        if shard.lru.peek(key).is_some_and(|(_, v)| v == version) {
            if let Some((p, _)) = shard.lru.remove(key) {
                self.account_remove(&p, &mut shard);
                return true;
            }
        }
        false
    }

    /// Active expiry: removes every expired entry, one shard lock at a time.
    pub fn purge_expired(&self) -> usize {
        self.purge_expired_in(0..self.shards.len())
    }

    /// Active expiry spread over time: scans the next `shards` shards (round robin), so a
    /// large store with TTLs is reclaimed a slice at a time instead of in one burst.
    pub fn purge_expired_step(&self, shards: usize) -> usize {
        let n = self.shards.len();
        let start = self.purge_cursor.fetch_add(shards, Ordering::Relaxed) % n;
        (0..shards.min(n)).map(|k| self.purge_expired_in([(start + k) % n])).sum()
    }

    fn purge_expired_in(&self, shards: impl IntoIterator<Item = usize>) -> usize {
        let now = self.clock.now_ms();
        let mut removed = 0;
        for i in shards {
            let mut shard = self.lock(i);
            if shard.expiring == 0 {
                continue;
            }
            for (p, _) in shard.lru.remove_where(|p| p.is_expired(now)) {
                self.account_remove(&p, &mut shard);
                if !p.is_tombstone() {
                    self.expired.fetch_add(1, Ordering::Relaxed);
                    removed += 1;
                }
            }
        }
        removed
    }

    /// Copies out one shard's unexpired entries (tombstones included), least recently used
    /// first, holding only that shard's lock.
    pub fn shard_entries(&self, i: usize) -> Vec<(Bytes, Entry)> {
        let now = self.clock.now_ms();
        let shard = self.lock(i);
        shard
            .lru
            .iter_lru_first()
            .filter(|(p, _)| !p.is_expired(now))
            .map(|(p, v)| (Bytes::copy_from_slice(p.key()), unpack(p, v)))
            .collect()
    }

    /// Current totals.
    pub fn stats(&self) -> StoreStats {
        StoreStats {
            keys: self.keys.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            tombstones: self.tombstones.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
            expired: self.expired.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ManualClock;

    fn store(entries: usize, bytes: u64) -> (Store, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(1_000_000));
        let s =
            Store::new(StoreConfig { max_entries: entries, max_bytes: bytes, tombstone_ttl_ms: 10_000 }, clock.clone());
        (s, clock)
    }

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn val(s: &Store, k: &str) -> Option<Bytes> {
        s.get(k.as_bytes()).and_then(|e| e.value)
    }

    #[test]
    fn packed_layout_round_trips_and_keeps_the_node_small() {
        // The slab node holds (Packed, u64) plus two 4-byte links: 32 bytes.
        assert_eq!(std::mem::size_of::<Packed>() + std::mem::size_of::<u64>(), 24);
        for key_len in [0usize, 1, 31, 32, 127, 128, 20_000] {
            let key: Vec<u8> = (0..key_len).map(|i| i as u8).collect();
            for (value, expiry) in [(Some(&b"value"[..]), 0u64), (Some(&[][..]), u64::MAX), (None, 1_234)] {
                let p = Packed::new(&key, value, expiry);
                assert_eq!(p.key(), &key[..], "key of {key_len} bytes");
                assert_eq!(p.value(), value);
                assert_eq!(p.is_tombstone(), value.is_none());
                assert_eq!(p.expires_at_ms(), expiry);
                let l = p.layout();
                assert_eq!((p.data.len() - l.key_start) as u64, (key_len + value.map_or(0, <[u8]>::len)) as u64);
            }
        }
        // 16-byte key, 100-byte value, no TTL: one header byte, 117 bytes, a 128-byte chunk.
        assert_eq!(Packed::new(&[7; 16], Some(&[1; 100]), 0).data.len(), 117);
    }

    #[test]
    fn lru_evicts_least_recently_used() {
        let (s, _) = store(3, 1 << 20);
        for k in ["a", "b", "c"] {
            s.put(b(k), b("v"), 1, 0).unwrap();
        }
        assert!(val(&s, "a").is_some()); // a is now most recent
        s.put(b("d"), b("v"), 1, 0).unwrap();
        assert!(val(&s, "b").is_none(), "b was least recently used");
        assert!(val(&s, "a").is_some() && val(&s, "c").is_some() && val(&s, "d").is_some());
        assert_eq!(s.stats().keys, 3);
        assert_eq!(s.stats().evictions, 1);
    }

    #[test]
    fn byte_bound_counts_keys_and_values() {
        let (s, _) = store(1000, 100);
        for i in 0..10 {
            // 2-byte key + 18-byte value = 20 bytes each
            s.put(b(&format!("k{i}")), Bytes::from(vec![b'x'; 18]), 1, 0).unwrap();
        }
        let st = s.stats();
        assert_eq!(st.bytes, 100);
        assert_eq!(st.keys, 5);
        assert!(val(&s, "k0").is_none() && val(&s, "k9").is_some());
        assert!(matches!(s.put(b("big"), Bytes::from(vec![0; 200]), 1, 0), Err(StoreError::TooLarge { .. })));
        // Overwrites adjust bytes instead of adding.
        s.put(b("k9"), b("x"), 2, 0).unwrap();
        assert_eq!(s.stats().bytes, 100 - 18 + 1);
    }

    #[test]
    fn ttl_lazy_and_active_expiry() {
        let (s, clock) = store(100, 1 << 20);
        s.put(b("short"), b("v"), 1, 1_000).unwrap();
        s.put(b("long"), b("v"), 1, 5_000).unwrap();
        s.put(b("forever"), b("v"), 1, 0).unwrap();
        clock.advance(999);
        assert!(val(&s, "short").is_some());
        clock.advance(1);
        assert!(val(&s, "short").is_none(), "expired at exactly its ttl");
        assert_eq!(s.stats().expired, 1);
        clock.advance(10_000);
        assert_eq!(s.purge_expired(), 1);
        assert_eq!(s.stats().keys, 1);
        assert_eq!(s.stats().bytes, "foreverv".len() as u64);
        assert!(val(&s, "forever").is_some());
    }

    #[test]
    fn last_write_wins_and_tombstones() {
        let (s, clock) = store(100, 1 << 20);
        assert!(s.put(b("k"), b("new"), 10, 0).unwrap());
        assert!(!s.put(b("k"), b("old"), 5, 0).unwrap(), "older version refused");
        assert_eq!(val(&s, "k"), Some(b("new")));
        let d = s.delete(b("k"), 11);
        assert!(d.existed && d.applied);
        assert!(!s.put(b("k"), b("stale"), 9, 0).unwrap(), "delete not undone by older write");
        assert_eq!(val(&s, "k"), None);
        assert!(s.get(b"k").is_some_and(|e| e.is_tombstone()));
        assert!(!s.delete(b("k"), 12).existed);
        assert!(s.put(b("k"), b("again"), 13, 0).unwrap());
        // Equal versions: deterministic by value; an identical copy is not new.
        assert!(!s.put(b("k"), b("again"), 13, 0).unwrap());
        assert!(!s.put(b("k"), b("aaaaa"), 13, 0).unwrap());
        assert!(s.put(b("k"), b("zzz"), 13, 0).unwrap());
        // Tombstones expire after their ttl.
        s.delete(b("k"), 14);
        clock.advance(10_001);
        assert!(s.get(b"k").is_none());
        assert_eq!(s.stats().tombstones, 0);
    }

    #[test]
    fn expiring_count_tracks_entries_with_a_ttl() {
        let (s, clock) = store(1000, 1 << 20);
        let expiring = |s: &Store| (0..s.shard_count()).map(|i| s.lock(i).expiring).sum::<usize>();
        for i in 0..10 {
            s.put(b(&format!("t{i}")), b("v"), 1, 1_000).unwrap();
            s.put(b(&format!("p{i}")), b("v"), 1, 0).unwrap();
        }
        assert_eq!(expiring(&s), 10);
        s.put(b("t0"), b("now forever"), 2, 0).unwrap(); // overwrite drops the ttl
        s.delete(b("p0"), 2); // a tombstone expires
        assert_eq!(expiring(&s), 10);
        clock.advance(2_000);
        assert_eq!(s.purge_expired(), 9);
        assert_eq!(expiring(&s), 1, "the tombstone is still within its own ttl");
        assert_eq!(s.purge_expired_step(s.shard_count()), 0);
        clock.advance(20_000);
        s.purge_expired();
        assert_eq!(expiring(&s), 0);
        assert_eq!(s.stats().keys, 10);
    }

    #[test]
    fn counters_match_contents_under_random_operations() {
        // Accounting is spread over put/delete/evict/expire/purge paths; a random walk over
        // all of them checks that keys, bytes and tombstones always match what is stored.
        let (s, clock) = store(200, 6_000);
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = move |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        for step in 0..20_000u64 {
            let key = b(&format!("k{}", rnd(300)));
            match rnd(10) {
                0..=4 => {
                    let len = rnd(60) as usize;
                    let ttl = if rnd(3) == 0 { 1 + rnd(2_000) } else { 0 };
                    let _ = s.put(key, Bytes::from(vec![b'v'; len]), step, ttl);
                }
                5 => {
                    s.delete(key, step);
                }
                6 => {
                    s.remove_if_version(&key, rnd(step + 1));
                }
                7 => clock.advance(rnd(500)),
                8 => {
                    s.purge_expired_step(1);
                }
                _ => {
                    s.get(&key);
                }
            }
            if step % 97 == 0 {
                let st = s.stats();
                let all: Vec<(Bytes, Entry)> = (0..s.shard_count()).flat_map(|i| s.shard_entries(i)).collect();
                // shard_entries skips expired entries that are still stored, so compare after
                // a full purge.
                s.purge_expired();
                let st2 = s.stats();
                let all2: Vec<(Bytes, Entry)> = (0..s.shard_count()).flat_map(|i| s.shard_entries(i)).collect();
                let live = all2.iter().filter(|(_, e)| !e.is_tombstone()).count() as u64;
                let bytes: u64 =
                    all2.iter().map(|(k, e)| (k.len() + e.value.as_ref().map_or(0, |v| v.len())) as u64).sum();
                assert_eq!(st2.keys, live, "step {step}");
                assert_eq!(st2.tombstones, all2.len() as u64 - live, "step {step}");
                assert_eq!(st2.bytes, bytes, "step {step}");
                assert!(st2.bytes <= 6_000 && all2.len() <= 200, "bounds at step {step}");
                assert!(st.keys >= st2.keys && all.len() >= all2.len());
            }
        }
    }

    #[test]
    fn remove_if_version_keeps_newer_writes() {
        let (s, _) = store(100, 1 << 20);
        s.put(b("k"), b("v1"), 1, 0).unwrap();
        s.put(b("k"), b("v2"), 2, 0).unwrap();
        assert!(!s.remove_if_version(b"k", 1));
        assert!(s.remove_if_version(b"k", 2));
        assert_eq!(s.stats(), StoreStats::default());
    }

    #[test]
    fn many_shards_respect_global_bound() {
        let (s, _) = store(100_000, 1 << 30);
        assert!(s.shard_count() > 1);
        for i in 0..200_000u32 {
            s.put(Bytes::from(i.to_be_bytes().to_vec()), b("v"), 1, 0).unwrap();
        }
        let st = s.stats();
        assert!(st.keys <= 100_000 && st.keys > 95_000, "{st:?}");
        let listed: usize = (0..s.shard_count()).map(|i| s.shard_entries(i).len()).sum();
        assert_eq!(listed as u64, st.keys);
    }
}
