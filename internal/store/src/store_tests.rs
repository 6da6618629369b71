//! Unit tests of the store: bounds, eviction, expiry, versions and tombstones.

use super::*;
use crate::ManualClock;

fn store(entries: usize, bytes: u64) -> (Store, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(1_000_000));
    let s = Store::new(StoreConfig { max_entries: entries, max_bytes: bytes, tombstone_ttl_ms: 10_000 }, clock.clone());
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
    for key_len in [0usize, 1, 15, 16, 31, 32, 127, 128, 2047, 2048, 20_000] {
        let key: Vec<u8> = (0..key_len).map(|i| i as u8).collect();
        let cases =
            [(Some(&b"value"[..]), 0u64, 0u32), (Some(&[][..]), u64::MAX, 7), (None, 1_234, 0), (Some(b"v"), 0, 1)];
        for (value, expiry, seq) in cases {
            let p = Packed::new(&key, value, expiry, seq);
            assert_eq!(p.key(), &key[..], "key of {key_len} bytes");
            assert_eq!(p.value(), value);
            assert_eq!(p.is_tombstone(), value.is_none());
            assert_eq!(p.expires_at_ms(), expiry);
            assert_eq!(p.layout().expiry_seq, seq);
            let l = p.layout();
            assert_eq!((p.data.len() - l.key_start) as u64, (key_len + value.map_or(0, <[u8]>::len)) as u64);
        }
    }
    // 16-byte key, 100-byte value, no TTL: two header bytes, 118 bytes, a 128-byte chunk.
    assert_eq!(Packed::new(&[7; 16], Some(&[1; 100]), 0, 0).data.len(), 118);
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
            let bytes: u64 = all2.iter().map(|(k, e)| (k.len() + e.value.as_ref().map_or(0, |v| v.len())) as u64).sum();
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

#[test]
fn a_read_in_place_sees_what_a_copy_sees_and_drops_what_expired() {
    let (s, clock) = store(100, 1 << 20);
    s.put(b("live"), b("v1"), 5, 0).unwrap();
    s.put(b("brief"), b("v2"), 6, 1_000).unwrap();
    s.delete(b("gone"), 7);
    clock.advance(400);
    for k in ["live", "brief", "gone", "never"] {
        let copy = s.get(k.as_bytes()).map(|e| {
            let ttl = e.remaining_ttl_ms(s.now_ms());
            (e.value, e.version, ttl, e.expiry_seq)
        });
        let seen = s.get_with(k.as_bytes(), |e| {
            e.map(|e| (e.value.map(Bytes::copy_from_slice), e.version, e.ttl_ms, e.expiry_seq))
        });
        assert_eq!(seen, copy, "{k}");
    }
    assert_eq!(s.get_with(b"brief", |e| e.map(|e| e.ttl_ms)), Some(600));
    clock.advance(600);
    assert!(s.get_with(b"brief", |e| e.is_none()));
    assert_eq!(s.stats().expired, 1);
}
