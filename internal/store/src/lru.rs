//! A least-recently-used list kept in one slab, for the memory of a cache shard.
//!
//! The `lru` crate allocates one node per entry (a 48-byte malloc chunk for our 40-byte node)
//! and keeps a table of 16-byte buckets; at a million entries that was 84 bytes per entry
//! beside the entry's own block, more than Redis spends. Here the nodes live in one `Vec`
//! linked by 32-bit indices (32 bytes each, no malloc header), and the hash table holds only a
//! 4-byte index per bucket, comparing keys through the slab. Removal swaps the last node into
//! the hole, so the slab stays dense and its untouched tail costs no resident memory.

use hashbrown::{DefaultHashBuilder, HashTable};
use std::hash::BuildHasher;

/// No node: the end of the list.
const NIL: u32 = u32::MAX;

/// An item the list can find by key.
pub(crate) trait Keyed {
    /// The bytes the item is looked up by.
    fn key(&self) -> &[u8];
}

struct Node<T> {
    item: T,
    version: u64,
    /// Towards the most recently used end.
    prev: u32,
    /// Towards the least recently used end.
    next: u32,
}

/// Items with a version, in recency order, found by key.
pub(crate) struct SlabLru<T> {
    nodes: Vec<Node<T>>,
    /// Indices into `nodes`, hashed by the key of the node they point at.
    table: HashTable<u32>,
    hasher: DefaultHashBuilder,
    /// Most recently used.
    head: u32,
    /// Least recently used.
    tail: u32,
}

impl<T: Keyed> SlabLru<T> {
    /// An empty list.
    pub(crate) fn new() -> Self {
        SlabLru {
            nodes: Vec::new(),
            table: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
            head: NIL,
            tail: NIL,
        }
    }

    /// Number of items.
    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    fn index_of(&self, key: &[u8]) -> Option<u32> {
        let nodes = &self.nodes;
        self.table.find(self.hasher.hash_one(key), |&i| nodes[i as usize].item.key() == key).copied()
    }

    /// The item and its version, without touching the recency order.
    pub(crate) fn peek(&self, key: &[u8]) -> Option<(&T, u64)> {
        let n = &self.nodes[self.index_of(key)? as usize];
        Some((&n.item, n.version))
    }

    /// The item and its version, made the most recently used.
    pub(crate) fn get(&mut self, key: &[u8]) -> Option<(&T, u64)> {
        let i = self.index_of(key)?;
        self.touch(i);
        let n = &self.nodes[i as usize];
        Some((&n.item, n.version))
    }

    /// Stores `item` as the most recently used and returns what it replaced under its key. A
    /// replacement stays in its slot: one lookup, and the table is not touched.
    pub(crate) fn insert(&mut self, item: T, version: u64) -> Option<(T, u64)> {
        let Some(i) = self.index_of(item.key()) else {
            self.push_new(item, version);
            return None;
        };
        let n = &mut self.nodes[i as usize];
        let old = (std::mem::replace(&mut n.item, item), std::mem::replace(&mut n.version, version));
        self.touch(i);
        Some(old)
    }

    /// Takes the item out.
    pub(crate) fn remove(&mut self, key: &[u8]) -> Option<(T, u64)> {
        let i = self.index_of(key)?;
        Some(self.remove_at(i))
    }

    /// Adds an item whose key is not in the list (the caller removed any older one) as the most
    /// recently used.
    pub(crate) fn push_new(&mut self, item: T, version: u64) {
        debug_assert!(self.index_of(item.key()).is_none(), "push_new with a key already present");
        let i = u32::try_from(self.nodes.len()).ok().filter(|&i| i != NIL).expect("at most 2^32 - 1 items per shard");
        let hash = self.hasher.hash_one(item.key());
        self.nodes.push(Node { item, version, prev: NIL, next: NIL });
        self.link_front(i);
        let (nodes, hasher) = (&self.nodes, &self.hasher);
        self.table.insert_unique(hash, i, |&j| hasher.hash_one(nodes[j as usize].item.key()));
    }

    /// Takes out the least recently used item.
    pub(crate) fn pop_lru(&mut self) -> Option<(T, u64)> {
        (self.tail != NIL).then(|| self.remove_at(self.tail))
    }

    /// Takes out every item that `dead` picks, in no particular order.
    pub(crate) fn remove_where(&mut self, mut dead: impl FnMut(&T) -> bool) -> Vec<(T, u64)> {
        let mut out = Vec::new();
        let mut i = 0;
        // A removal moves the last node into slot `i`, which is then looked at in turn.
        while i < self.nodes.len() {
            if dead(&self.nodes[i].item) {
                out.push(self.remove_at(i as u32));
            } else {
                i += 1;
            }
        }
        out
    }

    /// Items from the least to the most recently used.
    pub(crate) fn iter_lru_first(&self) -> impl Iterator<Item = (&T, u64)> + '_ {
        let mut at = self.tail;
        std::iter::from_fn(move || {
            let n = self.nodes.get(at as usize)?;
            at = n.prev;
            Some((&n.item, n.version))
        })
    }

    /// Points the link after `prev` (the head when `prev` is NIL) at `to`.
    fn set_next(&mut self, prev: u32, to: u32) {
        match prev {
            NIL => self.head = to,
            p => self.nodes[p as usize].next = to,
        }
    }

    /// Points the link before `next` (the tail when `next` is NIL) at `to`.
    fn set_prev(&mut self, next: u32, to: u32) {
        match next {
            NIL => self.tail = to,
            n => self.nodes[n as usize].prev = to,
        }
    }

    /// Makes node `i` the most recently used.
    fn touch(&mut self, i: u32) {
        if self.head != i {
            self.unlink(i);
            self.link_front(i);
        }
    }

    fn unlink(&mut self, i: u32) {
        let (prev, next) = (self.nodes[i as usize].prev, self.nodes[i as usize].next);
        self.set_next(prev, next);
        self.set_prev(next, prev);
    }

    fn link_front(&mut self, i: u32) {
        let old = self.head;
        let n = &mut self.nodes[i as usize];
        n.prev = NIL;
        n.next = old;
        self.set_prev(old, i);
        self.head = i;
    }

    /// Unlinks node `i` and fills its slot with the last node, so the slab stays dense.
    fn remove_at(&mut self, i: u32) -> (T, u64) {
        self.unlink(i);
        let hash = self.hasher.hash_one(self.nodes[i as usize].item.key());
        let found = self.table.find_entry(hash, |&j| j == i).map(|slot| slot.remove()).is_ok();
        debug_assert!(found, "slab node {i} missing from the table");
        let last = (self.nodes.len() - 1) as u32;
        if i != last {
            let moved = &self.nodes[last as usize];
            let (prev, next) = (moved.prev, moved.next);
            let hash = self.hasher.hash_one(moved.item.key());
            let found = self.table.find_mut(hash, |&j| j == last).map(|slot| *slot = i).is_some();
            debug_assert!(found, "slab node {last} missing from the table");
            self.set_next(prev, i);
            self.set_prev(next, i);
        }
        let n = self.nodes.swap_remove(i as usize);
        self.shrink_when_mostly_empty();
        (n.item, n.version)
    }

    /// Gives memory back after mass removals (expiry of a large batch, a hand-off), keeping
    /// twice the items in room so a shard near the threshold does not shrink and grow in turn.
    fn shrink_when_mostly_empty(&mut self) {
        let len = self.nodes.len();
        if self.nodes.capacity() > 1024 && len < self.nodes.capacity() / 4 {
            self.nodes.shrink_to(len * 2);
            let (nodes, hasher) = (&self.nodes, &self.hasher);
            self.table.shrink_to(len * 2, |&j| hasher.hash_one(nodes[j as usize].item.key()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    impl Keyed for Vec<u8> {
        fn key(&self) -> &[u8] {
            self
        }
    }

    /// The same operations on a plain list (front = most recently used) must give the same
    /// answers and the same order.
    #[test]
    fn matches_a_plain_list_under_random_operations() {
        let mut lru: SlabLru<Vec<u8>> = SlabLru::new();
        let mut model: VecDeque<(Vec<u8>, u64)> = VecDeque::new();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for step in 0..200_000u64 {
            let r = next();
            let key = format!("k{}", r % 500).into_bytes();
            let at = model.iter().position(|(k, _)| *k == key);
            match (r >> 32) % 7 {
                0 => {
                    if let Some(at) = at {
                        model.remove(at);
                        assert!(lru.remove(&key).is_some());
                    }
                    lru.push_new(key.clone(), step);
                    model.push_front((key, step));
                }
                1 => {
                    let old = at.and_then(|at| model.remove(at));
                    assert_eq!(lru.insert(key.clone(), step), old);
                    model.push_front((key, step));
                }
                6 if step % 50 == 0 => {
                    // Every key ending in the step's last digit.
                    let digit = b'0' + (step / 50 % 10) as u8;
                    let mut removed = lru.remove_where(|k| k.last() == Some(&digit));
                    let mut want: Vec<(Vec<u8>, u64)> =
                        model.iter().filter(|(k, _)| k.last() == Some(&digit)).cloned().collect();
                    model.retain(|(k, _)| k.last() != Some(&digit));
                    removed.sort();
                    want.sort();
                    assert_eq!(removed, want);
                }
                6 => {}
                2 => {
                    let want = at.map(|at| model[at].1);
                    assert_eq!(lru.get(&key).map(|(_, v)| v), want);
                    if let Some(at) = at {
                        let e = model.remove(at).unwrap();
                        model.push_front(e);
                    }
                }
                3 => assert_eq!(lru.peek(&key).map(|(_, v)| v), at.map(|at| model[at].1)),
                4 => assert_eq!(lru.remove(&key), at.and_then(|at| model.remove(at))),
                _ => assert_eq!(lru.pop_lru(), model.pop_back()),
            }
            assert_eq!(lru.len(), model.len());
            if step % 997 == 0 {
                let order: Vec<(Vec<u8>, u64)> = lru.iter_lru_first().map(|(k, v)| (k.clone(), v)).collect();
                let want: Vec<(Vec<u8>, u64)> = model.iter().rev().cloned().collect();
                assert_eq!(order, want, "order after step {step}");
            }
        }
    }

    #[test]
    fn empties_and_refills() {
        let mut lru: SlabLru<Vec<u8>> = SlabLru::new();
        assert_eq!(lru.pop_lru(), None);
        for round in 0..3u64 {
            for i in 0..1000u64 {
                lru.push_new(i.to_le_bytes().to_vec(), round);
            }
            for i in 0..1000u64 {
                assert_eq!(lru.pop_lru(), Some((i.to_le_bytes().to_vec(), round)));
            }
            assert_eq!(lru.len(), 0);
            assert_eq!(lru.iter_lru_first().count(), 0);
        }
    }

    #[test]
    fn mass_removal_gives_memory_back() {
        let mut lru: SlabLru<Vec<u8>> = SlabLru::new();
        for i in 0..100_000u64 {
            lru.push_new(i.to_le_bytes().to_vec(), i);
        }
        let full = (lru.nodes.capacity(), lru.table.capacity());
        for i in 0..99_900u64 {
            assert_eq!(lru.remove(&i.to_le_bytes()), Some((i.to_le_bytes().to_vec(), i)));
        }
        assert!(lru.nodes.capacity() < full.0 / 20, "slab kept {} of {}", lru.nodes.capacity(), full.0);
        assert!(lru.table.capacity() < full.1 / 20, "table kept {} of {}", lru.table.capacity(), full.1);
        for i in 99_900..100_000u64 {
            assert_eq!(lru.peek(&i.to_le_bytes()), Some((&i.to_le_bytes().to_vec(), i)));
        }
        let order: Vec<u64> = lru.iter_lru_first().map(|(_, v)| v).collect();
        assert_eq!(order, (99_900..100_000u64).collect::<Vec<_>>());
    }

    #[test]
    fn node_is_32_bytes() {
        assert_eq!(std::mem::size_of::<Node<Box<[u8]>>>(), 32);
    }
}
