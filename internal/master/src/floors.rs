//! Read your writes on one client connection. A write is acknowledged once the key's primary
//! and `WRITE_QUORUM` owners hold it; the other owners may get it a moment later. A read that
//! an owner without it answers first (the primary is asked last while it is recovering) would
//! miss the client's own write, so the connection remembers the version of its recent writes
//! and its reads do not count answers older than that (see [`crate::Router::read_at_least`]).
//!
//! A floor matters only while the write may still be on its way to an owner (an owner that
//! failed to take it is marked as having missed writes, and its reads do not count until it
//! caught up), so a small table of the latest writes is enough: direct-mapped by the key's
//! hash, one allocation per connection that writes, no key kept (a kept `Bytes` would pin the
//! connection's input buffer), nothing allocated per write.

use tiercache_placement::key_hash;

/// Slots: the last writes of a connection, one per slot its keys hash to.
const SLOTS: usize = 1024;

/// The versions of one connection's recent writes.
#[derive(Debug, Default)]
pub struct WriteFloors {
    /// (key hash, version); allocated on the first write.
    slots: Option<Box<[(u64, u64)]>>,
}

impl WriteFloors {
    /// Remembers that this connection wrote `key` at `version` (a later write of another key
    /// to the same slot forgets it: that costs only the guarantee for the older key).
    pub fn note(&mut self, key: &[u8], version: u64) {
        let h = key_hash(key);
        let slots = self.slots.get_or_insert_with(|| vec![(0, 0); SLOTS].into_boxed_slice());
        let slot = &mut slots[h as usize % SLOTS];
        if slot.0 == h {
            slot.1 = slot.1.max(version);
        } else {
            *slot = (h, version);
        }
    }

    /// The version a read of `key` must see (0: none).
    pub fn floor(&self, key: &[u8]) -> u64 {
        let Some(slots) = &self.slots else { return 0 };
        let h = key_hash(key);
        match slots[h as usize % SLOTS] {
            (k, v) if k == h => v,
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floors_are_per_key_rise_only_and_stay_bounded() {
        let mut f = WriteFloors::default();
        assert_eq!(f.floor(b"k"), 0);
        f.note(b"k", 5 << 16);
        f.note(b"k", 3 << 16);
        assert_eq!(f.floor(b"k"), 5 << 16);
        assert_eq!(f.floor(b"other"), 0);
        for i in 0..SLOTS as u64 * 4 {
            f.note(format!("k{i}").as_bytes(), (1_000_000 + i) << 16);
        }
        assert_eq!(f.slots.as_ref().map(|s| s.len()), Some(SLOTS), "bounded");
        let last = SLOTS as u64 * 4 - 1;
        assert_eq!(f.floor(format!("k{last}").as_bytes()), (1_000_000 + last) << 16, "the latest write is kept");
    }
}
