//! Hybrid logical clock: versions that follow wall time but never repeat or go backwards in
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
        let wall = crate::now_ms() << 16;
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
        assert!((prev >> 16).abs_diff(crate::now_ms()) < 5_000);
        h.observe(prev + 1_000_000);
        assert!(h.next() > prev + 1_000_000);
    }
}
