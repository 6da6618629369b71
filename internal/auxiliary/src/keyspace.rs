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

/// The live keys of `shard` whose first owner on `ring` is `me`, matching `pattern`.
pub fn scan_shard(store: &Store, shard: usize, me: &str, ring: &Ring, pattern: Option<&[u8]>) -> Vec<bytes::Bytes> {
    if shard >= store.shard_count() {
        return Vec::new();
    }
    store
        .shard_entries(shard)
        .into_iter()
        .filter(|(key, e)| e.value.is_some() && ring.owners(key, 1).first().is_some_and(|o| *o == me))
        .filter(|(key, _)| pattern.is_none_or(|p| glob(p, key)))
        .map(|(key, _)| key)
        .collect()
}

/// Redis's glob: `*`, `?`, `[abc]`, `[^a-z]`, and `\\` to escape. Iterative, backtracking only
/// to the last `*`: linear in the key times the pattern, whatever a client sends in `MATCH`.
pub fn glob(pattern: &[u8], s: &[u8]) -> bool {
    let (mut p, mut i) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            p += 1;
            star = Some((p, i));
            continue;
        }
        if let Some(len) = one(&pattern[p..], s[i]) {
            p += len;
            i += 1;
            continue;
        }
        match star {
            // Let the last `*` take one more byte and try again from there.
            Some((sp, si)) => {
                p = sp;
                i = si + 1;
                star = Some((sp, si + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|b| *b == b'*')
}

/// Whether the pattern's first token (not `*`) matches byte `c`; the token's length if so.
fn one(pattern: &[u8], c: u8) -> Option<usize> {
    match pattern {
        [] => None,
        [b'?', ..] => Some(1),
        [b'\\', x, ..] => (*x == c).then_some(2),
        [b'[', rest @ ..] => {
            let (negate, start) = if rest.first() == Some(&b'^') { (true, 2) } else { (false, 1) };
            let mut k = start;
            let mut matched = false;
            loop {
                match &pattern[k..] {
                    [] => return None,
                    [b']', ..] => return (matched != negate).then_some(k + 1),
                    [b'\\', x, ..] => {
                        matched |= *x == c;
                        k += 2;
                    }
                    [lo, b'-', hi, ..] if *hi != b']' => {
                        matched |= (*lo.min(hi)..=*lo.max(hi)).contains(&c);
                        k += 3;
                    }
                    [x, ..] => {
                        matched |= *x == c;
                        k += 1;
                    }
                }
            }
        }
        [x, ..] => (*x == c).then_some(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::sync::Arc;
    use tiercache_store::{ManualClock, StoreConfig};

    #[test]
    fn globs_match_like_redis() {
        for (p, s, want) in [
            ("*", "anything", true),
            ("user:*", "user:42", true),
            ("user:*", "session:1", false),
            ("h?llo", "hello", true),
            ("h?llo", "hllo", false),
            ("h[ae]llo", "hallo", true),
            ("h[^e]llo", "hello", false),
            ("h[a-c]llo", "hbllo", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "axb", false),
            ("*:*:x", "a:b:x", true),
            ("", "", true),
            ("", "a", false),
            ("a*", "a", true),
            ("*a", "ba", true),
            ("[", "a", false),
        ] {
            assert_eq!(glob(p.as_bytes(), s.as_bytes()), want, "{p} ~ {s}");
        }
    }

    #[test]
    fn a_hostile_pattern_is_not_exponential() {
        let pattern = [b"*a".repeat(30), b"*b".to_vec()].concat();
        let key = vec![b'a'; 1024];
        let started = std::time::Instant::now();
        assert!(!glob(&pattern, &key));
        assert!(started.elapsed() < std::time::Duration::from_millis(500), "{:?}", started.elapsed());
    }

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
