//! Several keys under their shards' locks at once, for a transaction committed on a key
//! group's primary: what it reads and writes is isolated from every other step on those keys,
//! since single-key steps take the same locks. Shards are always locked in ascending order, so
//! two transactions cannot wait on each other.

use super::{Shard, Store};
use crate::entry::{expired, unpack, Entry};
use crate::StoreError;
use parking_lot::MutexGuard;

/// The shards of some keys, locked (see [`Store::locked`]).
pub struct Locked<'a> {
    store: &'a Store,
    shards: Vec<(usize, MutexGuard<'a, Shard>)>,
    now: u64,
}

impl Store {
    /// Locks the shards of `keys` (each once, in ascending order) until the result is dropped.
    pub fn locked<K: AsRef<[u8]>>(&self, keys: &[K]) -> Locked<'_> {
        let mut indices: Vec<usize> = keys.iter().map(|k| self.shard_index(k.as_ref())).collect();
        indices.sort_unstable();
        indices.dedup();
        let shards = indices.into_iter().map(|i| (i, self.lock(i))).collect();
        Locked { store: self, shards, now: self.clock.now_ms() }
    }
}

impl Locked<'_> {
    fn shard(&mut self, key: &[u8]) -> &mut Shard {
        let i = self.store.shard_index(key);
        let at = self.shards.binary_search_by_key(&i, |(j, _)| *j).expect("the key's shard is locked (Store::locked)");
        &mut self.shards[at].1
    }

    /// The stored entry (delete markers included, expired ones not), without promoting it.
    pub fn get(&mut self, key: &[u8]) -> Option<Entry> {
        let now = self.now;
        self.shard(key).lru.peek(key).filter(|(p, _)| !p.is_expired(now)).map(|(p, v)| unpack(p, v))
    }

    /// Whether an entry of this key and value fits in a shard at all (checked by
    /// [`Locked::apply_raw`] too; a transaction checks every write before it writes one).
    pub fn fits(&self, key: &[u8], value: Option<&[u8]>) -> Result<(), StoreError> {
        let size = (key.len() + value.map_or(0, <[u8]>::len)) as u64;
        let limit = self.store.shard_max_bytes;
        if size > limit {
            return Err(StoreError::TooLarge { size, limit });
        }
        Ok(())
    }

    /// [`Store::apply_raw`] under the held lock: written only if it supersedes what is stored.
    pub fn apply_raw(
        &mut self,
        key: &[u8],
        value: Option<&[u8]>,
        version: u64,
        expires_at_ms: u64,
        expiry_seq: u32,
    ) -> Result<bool, StoreError> {
        let (now, store) = (self.now, self.store);
        if expired(expires_at_ms, now) {
            return Ok(false);
        }
        self.fits(key, value)?;
        let shard = self.shard(key);
        Ok(store.apply_locked(shard, key, value, (version, expires_at_ms, expiry_seq), now).0)
    }
}

#[cfg(test)]
mod tests {
    use crate::{ManualClock, Store, StoreConfig};
    use bytes::Bytes;
    use std::sync::Arc;

    #[test]
    fn keys_of_several_shards_are_read_and_written_under_one_hold() {
        let s = Store::new(StoreConfig::default(), Arc::new(ManualClock::new(1_000)));
        assert!(s.shard_count() > 1);
        let keys: Vec<Bytes> = (0..50).map(|i| Bytes::from(format!("k{i}"))).collect();
        s.put(keys[0].clone(), Bytes::from_static(b"old"), 5, 0).unwrap();
        {
            let mut l = s.locked(&keys);
            assert_eq!(l.get(b"k0").map(|e| e.version), Some(5));
            assert!(!l.apply_raw(b"k0", Some(b"older"), 4, 0, 0).unwrap(), "last-write-wins still holds");
            for k in &keys {
                assert!(l.apply_raw(k, Some(b"new"), 9, 0, 0).unwrap());
            }
            assert!(l.apply_raw(b"k1", None, 10, 2_000, 0).unwrap(), "a delete marker");
        }
        assert_eq!(s.get(b"k0").unwrap().value, Some(Bytes::from_static(b"new")));
        assert_eq!(s.get(b"k1").unwrap().value, None);
        assert_eq!(s.get(b"k49").unwrap().version, 9);
    }
}
