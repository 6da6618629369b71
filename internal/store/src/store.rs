//! The sharded, size-bounded LRU: eviction by entries and bytes, lazy and active expiry,
//! last-write-wins on every write, tombstones for deletes.

use crate::entry::{expired, unpack, view, Entry, Packed};
use crate::lru::SlabLru;
use crate::{Clock, StoreError};
use bytes::Bytes;
use parking_lot::{Mutex, MutexGuard};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tiercache_protocol::inplace::EntryView;
use tiercache_protocol::Stamp;

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
        StoreConfig {
            max_entries: 1_000_000,
            max_bytes: 1 << 30,
            tombstone_ttl_ms: tiercache_protocol::step::TOMBSTONE_TTL_MS,
        }
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
        self.read(key, |found, _| found.map(|(p, v)| unpack(p, v)))
    }

    /// Like [`Store::get`], with the entry borrowed under its shard's lock instead of copied
    /// out (its ttl is the remaining one): the data thread encodes a GET's answer straight
    /// from it. `f` runs under the lock, so it must be short.
    pub fn get_with<R>(&self, key: &[u8], f: impl FnOnce(Option<EntryView<'_>>) -> R) -> R {
        self.read(key, |found, now| f(found.map(|(p, v)| view(p, v, now))))
    }

    /// The one read of a key under its shard's lock: `f` sees the live entry (promoted in the
    /// LRU) or nothing, and the time it was read at; an entry found expired is taken out.
    fn read<R>(&self, key: &[u8], f: impl FnOnce(Option<(&Packed, u64)>, u64) -> R) -> R {
        let now = self.clock.now_ms();
        let i = self.shard_index(key);
        let mut shard = self.lock(i);
        match shard.lru.get(key) {
            None => return f(None, now),
            Some((p, v)) if !p.is_expired(now) => return f(Some((p, v)), now),
            Some(_) => {}
        }
        if let Some((p, _)) = shard.lru.remove(key) {
            self.account_remove(&p, &mut shard);
            if !p.is_tombstone() {
                self.expired.fetch_add(1, Ordering::Relaxed);
            }
        }
        f(None, now)
    }

    /// Stores a value written at `version`, living `ttl_ms` (0 = forever). Returns whether it
    /// was applied (false when a newer version is already stored).
    pub fn put(&self, key: Bytes, value: Bytes, version: u64, ttl_ms: u64) -> Result<bool, StoreError> {
        self.apply_raw(&key, Some(&value), version, self.expires_at(ttl_ms), 0)
    }

    /// Deletes by writing a tombstone at `version` (one shard lock for the check and the write).
    pub fn delete(&self, key: Bytes, version: u64) -> DeleteOutcome {
        let expires = self.tombstone_expires_at();
        let (applied, existed) = self.apply_inner(&key, None, version, expires, 0).unwrap_or((false, false));
        DeleteOutcome { existed, applied }
    }

    /// Inserts an entry if it supersedes what is stored (last-write-wins), then evicts least
    /// recently used entries of the shard until it is within its bounds.
    pub fn apply(&self, key: Bytes, entry: Entry) -> Result<bool, StoreError> {
        self.apply_raw(&key, entry.value.as_deref(), entry.version, entry.expires_at_ms, entry.expiry_seq)
    }

    /// [`Store::apply`] from borrowed parts (restore copies straight from the snapshot bytes).
    pub fn apply_raw(
        &self,
        key: &[u8],
        value: Option<&[u8]>,
        version: u64,
        expires_at_ms: u64,
        expiry_seq: u32,
    ) -> Result<bool, StoreError> {
        self.apply_inner(key, value, version, expires_at_ms, expiry_seq).map(|(applied, _)| applied)
    }

    /// Applies under one shard lock; also says whether a live value was there before.
    fn apply_inner(
        &self,
        key: &[u8],
        value: Option<&[u8]>,
        version: u64,
        expires_at_ms: u64,
        expiry_seq: u32,
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
        Ok(self.apply_locked(&mut shard, key, value, (version, expires_at_ms, expiry_seq), now))
    }

    /// Writes into a locked shard if the entry supersedes the stored one (last-write-wins);
    /// also says whether a live value was there before. The entry fits (checked by the caller).
    fn apply_locked(
        &self,
        shard: &mut Shard,
        key: &[u8],
        value: Option<&[u8]>,
        (version, expires_at_ms, expiry_seq): (u64, u64, u32),
        now: u64,
    ) -> (bool, bool) {
        let mut existed = false;
        if let Some((p, v)) = shard.lru.peek(key) {
            if !p.is_expired(now) {
                existed = !p.is_tombstone();
                if !(Stamp { version, value, expiry_seq }).supersedes(&p.stamp(v)) {
                    return (false, existed);
                }
            }
        }
        self.insert_locked(shard, key, Packed::new(key, value, expires_at_ms, expiry_seq), version, now);
        (true, existed)
    }

    /// Inserts into a locked shard, then evicts least recently used entries until the shard is
    /// within its bounds (the new entry fits: checked by the caller).
    fn insert_locked(&self, shard: &mut Shard, key: &[u8], packed: Packed, version: u64, now: u64) {
        self.account_add(&packed, shard);
        if let Some((old, _)) = shard.lru.insert(packed, version) {
            self.account_remove(&old, shard);
        }
        while shard.lru.len() > self.shard_max_entries || shard.bytes > self.shard_max_bytes {
            match shard.lru.pop_lru() {
                Some((p, v)) if p.key() == key => {
                    // Only the new entry is left; it fits (checked above), put it back.
                    shard.lru.push_new(p, v);
                    break;
                }
                Some((p, _)) => {
                    self.account_remove(&p, shard);
                    if !p.is_tombstone() {
                        let counter = if p.is_expired(now) { &self.expired } else { &self.evictions };
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                }
                None => break,
            }
        }
    }

    /// A read-modify-write as one step under the key's shard lock: `f` sees the stored entry
    /// (tombstones included, expired ones not) and returns the entry to write, if any, and its
    /// answer. The entry is written only if it supersedes the stored one (last-write-wins).
    pub fn update<T>(&self, key: &[u8], f: impl FnOnce(Option<Entry>) -> (Option<Entry>, T)) -> Result<T, StoreError> {
        let now = self.clock.now_ms();
        let i = self.shard_index(key);
        let mut shard = self.lock(i);
        let current = shard.lru.peek(key).filter(|(p, _)| !p.is_expired(now)).map(|(p, v)| unpack(p, v));
        let (write, answer) = f(current.clone());
        if let Some(e) = write {
            let size = (key.len() + e.value.as_ref().map_or(0, Bytes::len)) as u64;
            if size > self.shard_max_bytes {
                return Err(StoreError::TooLarge { size, limit: self.shard_max_bytes });
            }
            if current.as_ref().is_none_or(|c| e.supersedes(c)) && !expired(e.expires_at_ms, now) {
                let packed = Packed::new(key, e.value.as_deref(), e.expires_at_ms, e.expiry_seq);
                self.insert_locked(&mut shard, key, packed, e.version, now);
            }
        }
        Ok(answer)
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
#[path = "store_tests.rs"]
mod tests;

#[path = "expiry.rs"]
mod expiry;
#[path = "locked.rs"]
mod locked;
pub use locked::Locked;
