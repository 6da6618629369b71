//! Whether an auxiliary may have missed writes. After a start (its snapshot is older than the
//! last writes), a stall (SIGSTOP, a VM pause: masters acknowledged writes without it) or a
//! lost ZooKeeper session (a network cut), its answers to reads are marked so masters do not
//! count them toward a read quorum, until a catch-up pull from its peers has completed.
//!
//! Every reason to recover bumps an epoch; a catch-up only ends recovery if no new reason came
//! while it ran, so a stall during a catch-up starts another one.

use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;
use tokio::sync::Notify;

/// A gap between heartbeats (every 100 ms) longer than this means the process was stopped or
/// starved. Below the masters' request timeout (1 s by default): a pause long enough for a
/// master to time out and write around this node is always noticed.
pub const STALL_MS: u64 = 400;

/// Recovery state of one auxiliary.
pub struct Recovery {
    recovering: AtomicBool,
    epoch: AtomicU64,
    /// Milliseconds since `base` of the last heartbeat; 0 while stall detection is off.
    last_beat: AtomicU64,
    base: Instant,
    reason: Mutex<&'static str>,
    wake: Notify,
}

impl Default for Recovery {
    fn default() -> Self {
        Recovery {
            recovering: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
            last_beat: AtomicU64::new(0),
            base: Instant::now(),
            reason: Mutex::new(""),
            wake: Notify::new(),
        }
    }
}

impl Recovery {
    /// True while answers may miss acknowledged writes.
    pub fn recovering(&self) -> bool {
        self.recovering.load(Ordering::Acquire)
    }

    /// Why the current (or last) recovery started.
    pub fn reason(&self) -> &'static str {
        *self.reason.lock()
    }

    /// Enters recovery (or restarts a running one); returns the new epoch.
    pub fn begin(&self, reason: &'static str) -> u64 {
        *self.reason.lock() = reason;
        let epoch = self.epoch.fetch_add(1, Ordering::AcqRel) + 1;
        if !self.recovering.swap(true, Ordering::AcqRel) {
            tracing::warn!(reason, "may have missed writes: reads answered as recovering until caught up");
        }
        self.wake.notify_one();
        epoch
    }

    /// The epoch a catch-up starting now works for.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Ends recovery if nothing new happened since `epoch` was read; true when it ended.
    pub fn finish(&self, epoch: u64) -> bool {
        if self.epoch.load(Ordering::Acquire) != epoch {
            return false;
        }
        self.recovering.store(false, Ordering::Release);
        // A reason that arrived between the check and the store wins.
        if self.epoch.load(Ordering::Acquire) != epoch {
            self.recovering.store(true, Ordering::Release);
            return false;
        }
        true
    }

    /// Resolves when recovery is needed (at once if it already is).
    pub async fn needed(&self) {
        loop {
            let notified = self.wake.notified();
            if self.recovering() {
                return;
            }
            notified.await;
        }
    }

    fn now(&self) -> u64 {
        // +1 so that a beat at the base instant is not "off".
        self.base.elapsed().as_millis() as u64 + 1
    }

    /// Called every ~100 ms by the node; a late beat means the process was not running.
    pub fn heartbeat(&self) {
        let now = self.now();
        let last = self.last_beat.load(Ordering::Acquire);
        // Recovery begins before the fresh beat is published: a read that sees the new beat
        // also sees the node recovering.
        if last != 0 && now.saturating_sub(last) > STALL_MS {
            self.begin("stalled (frozen or starved)");
        }
        self.last_beat.fetch_max(now, Ordering::AcqRel);
    }

    /// Like [`Recovery::recovering`], for a request being answered: after a stall the requests
    /// that queued while the process was stopped run before the heartbeat task does, and
    /// must already see it recovering.
    pub fn recovering_now(&self) -> bool {
        self.check_stall();
        self.recovering()
    }

    /// Starts recovery if the last heartbeat is older than a stall.
    pub fn check_stall(&self) {
        let last = self.last_beat.load(Ordering::Acquire);
        if last != 0 && self.now().saturating_sub(last) > STALL_MS {
            self.heartbeat();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_reason_during_a_catch_up_keeps_recovering() {
        let r = Recovery::default();
        assert!(!r.recovering());
        let e = r.begin("start");
        assert!(r.recovering());
        r.begin("stalled");
        assert!(!r.finish(e), "a newer reason came");
        assert!(r.recovering());
        assert!(r.finish(r.epoch()));
        assert!(!r.recovering());
    }

    #[test]
    fn a_late_heartbeat_or_read_starts_recovery() {
        let r = Recovery::default();
        r.check_stall();
        assert!(!r.recovering(), "stall detection is off until the first beat");
        r.heartbeat();
        r.heartbeat();
        assert!(!r.recovering());
        std::thread::sleep(Duration::from_millis(STALL_MS + 100));
        r.check_stall();
        assert!(r.recovering(), "a read after a gap sees it");
        assert_eq!(r.reason(), "stalled (frozen or starved)");
    }
}
