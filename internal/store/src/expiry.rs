//! Expiry: absolute expiry times, an expiry change without a new version (`EXPIRE` and its
//! replicas), and active expiry that reclaims expired entries a slice of shards at a time.

use super::Store;
use crate::entry::{unpack, Entry, Packed};
use std::sync::atomic::Ordering;

impl Store {
    /// Absolute expiry for a time to live given in ms (0 = never expires).
    pub fn expires_at(&self, ttl_ms: u64) -> u64 {
        if ttl_ms == 0 {
            0
        } else {
            self.clock.now_ms().saturating_add(ttl_ms)
        }
    }

    /// Sets the expiry of a live value to `ttl_ms` from now (0: removes it) without a new
    /// version, so that a concurrent write with a newer version still wins over it everywhere
    /// (`EXPIRE` must never bring an overwritten value back); the expiry sequence goes up
    /// instead, so copies of this version order by it. The primary passes `follow: None` and
    /// bumps the sequence; a replica passes the primary's `(version, expiry_seq)` and applies
    /// the change only to that version and only over an older sequence. Returns the entry as
    /// it is now and whether its expiry changed; `None` when there is no live value.
    pub fn set_expiry(&self, key: &[u8], ttl_ms: u64, follow: Option<(u64, u32)>) -> Option<(Entry, bool)> {
        let now = self.clock.now_ms();
        let i = self.shard_index(key);
        let mut shard = self.lock(i);
        let current = shard.lru.peek(key).filter(|(p, _)| !p.is_expired(now)).map(|(p, v)| unpack(p, v))?;
        let value = current.value.clone()?;
        let expires_at_ms = self.expires_at(ttl_ms);
        let expiry_seq = match follow {
            Some((version, seq)) if version != current.version || seq <= current.expiry_seq => {
                return Some((current, false));
            }
            Some((_, seq)) => seq,
            None if expires_at_ms == current.expires_at_ms => return Some((current, false)),
            None => current.expiry_seq.saturating_add(1),
        };
        let packed = Packed::new(key, Some(&value), expires_at_ms, expiry_seq);
        self.insert_locked(&mut shard, key, packed, current.version, now);
        Some((Entry { value: Some(value), version: current.version, expires_at_ms, expiry_seq }, true))
    }

    /// The expiry a delete marker written now gets.
    pub fn tombstone_expires_at(&self) -> u64 {
        self.clock.now_ms().saturating_add(self.tombstone_ttl_ms)
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
}
