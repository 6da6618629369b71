//! Versions and the one last-write-wins rule. A version comes from the writing master's hybrid
//! logical clock: wall-clock milliseconds and a counter, never repeating or going backwards in
//! one process, so last-write-wins matches the order a client saw.

use std::sync::atomic::{AtomicU64, Ordering};

/// Versions are `wall_ms << 16 | counter`.
#[derive(Debug, Default)]
pub struct Hlc {
    last: AtomicU64,
}

impl Hlc {
    /// A new clock.
    pub fn new() -> Self {
        Hlc::default()
    }

    /// The next version: greater than every version this clock gave or observed.
    pub fn next(&self) -> u64 {
        let wall = now_ms() << 16;
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            let v = wall.max(last + 1);
            match self.last.compare_exchange_weak(last, v, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return v,
                Err(cur) => last = cur,
            }
        }
    }

    /// Moves the clock past a version seen elsewhere (another master's write).
    pub fn observe(&self, version: u64) {
        self.last.fetch_max(version, Ordering::Relaxed);
    }
}

/// The one last-write-wins rule, shared by the store, replicas and the master's quorum reads:
/// does (`version`, `value`) replace (`other_version`, `other_value`)? Higher version wins;
/// equal versions are broken by the value bytes (tombstone, `None`, lowest) so every replica
/// picks the same winner; an identical copy does not win.
pub fn last_write_wins(version: u64, value: Option<&[u8]>, other_version: u64, other_value: Option<&[u8]>) -> bool {
    match version.cmp(&other_version) {
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Less => false,
        std::cmp::Ordering::Equal => value > other_value,
    }
}

/// Wall-clock milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strictly_increasing_and_near_wall_time() {
        let h = Hlc::new();
        let mut prev = 0;
        for _ in 0..100_000 {
            let v = h.next();
            assert!(v > prev);
            prev = v;
        }
        assert!((prev >> 16).abs_diff(now_ms()) < 5_000);
        h.observe(prev + 1_000_000);
        assert!(h.next() > prev + 1_000_000);
    }

    #[test]
    fn higher_version_wins_and_ties_break_on_the_value() {
        assert!(last_write_wins(2, None, 1, Some(b"v")));
        assert!(!last_write_wins(1, Some(b"v"), 2, None));
        assert!(last_write_wins(1, Some(b"b"), 1, Some(b"a")));
        assert!(last_write_wins(1, Some(b""), 1, None), "a tombstone loses a tie");
        assert!(!last_write_wins(1, Some(b"a"), 1, Some(b"a")), "an identical copy does not win");
    }
}
