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

/// What last-write-wins compares of an entry: its version, its value (to break a tie of
/// versions), and its expiry sequence (bumped by every expiry change, which keeps the version
/// so that a newer write still wins over it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp<'a> {
    /// The version of the write.
    pub version: u64,
    /// The value, `None` for a tombstone.
    pub value: Option<&'a [u8]>,
    /// Expiry changes of this version so far.
    pub expiry_seq: u32,
}

impl Stamp<'_> {
    /// The one last-write-wins rule, shared by the store, replicas and the master's quorum
    /// reads: does `self` replace `other`? Higher version wins; equal versions are broken by
    /// the value bytes (tombstone, `None`, lowest) so every replica picks the same winner,
    /// then by the expiry sequence, so a replica that missed an `EXPIRE` takes it from any
    /// copy; an identical copy does not win.
    pub fn supersedes(&self, other: &Stamp<'_>) -> bool {
        (self.version, self.value, self.expiry_seq) > (other.version, other.value, other.expiry_seq)
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
        let s = |version, value: Option<&'static [u8]>, expiry_seq| Stamp { version, value, expiry_seq };
        assert!(s(2, None, 0).supersedes(&s(1, Some(b"v"), 0)));
        assert!(!s(1, Some(b"v"), 0).supersedes(&s(2, None, 0)));
        assert!(s(1, Some(b"b"), 0).supersedes(&s(1, Some(b"a"), 0)));
        assert!(s(1, Some(b""), 0).supersedes(&s(1, None, 0)), "a tombstone loses a tie");
        assert!(!s(1, Some(b"a"), 0).supersedes(&s(1, Some(b"a"), 0)), "an identical copy does not win");
        assert!(s(1, Some(b"a"), 2).supersedes(&s(1, Some(b"a"), 1)), "a later expiry change wins");
        assert!(!s(1, Some(b"a"), 9).supersedes(&s(2, Some(b"a"), 0)), "never over a newer write");
    }
}
