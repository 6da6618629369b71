//! Whether an auxiliary may have missed writes. After a start (its snapshot is older than the
//! last writes), a stall (SIGSTOP, a VM pause: masters acknowledged writes without it) or a
//! lost ZooKeeper session (a network cut), its answers to reads are marked so masters do not
//! count them toward a read quorum, until a catch-up pull from its peers has completed.
//!
//! Every reason to recover bumps an epoch; a catch-up only ends recovery if no new reason came
//! while it ran, so a stall during a catch-up starts another one.
//!
//! Catch-up is per key range: a key is caught up once every other owner of it has sent this
//! node its copies ([`Recovery::peer_caught_up`]), so one dead peer holds back only the keys
//! it shares with this node, not all of them.

use parking_lot::{Mutex, RwLock};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;
use tiercache_placement::Ring;
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
    /// The catch-up under way, once it knows the placement it pulls for.
    ranges: RwLock<Option<Ranges>>,
}

/// A catch-up's progress: the peers that have not sent their copies yet.
struct Ranges {
    epoch: u64,
    ring: Ring,
    replicas: usize,
    node_id: String,
    waiting_for: HashSet<String>,
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
            ranges: RwLock::new(None),
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

    /// A catch-up for `epoch` pulls the keys this node owns on `ring` from `peers`; until one
    /// of them has answered, the keys it shares with this node stay recovering.
    pub fn pulling(&self, epoch: u64, ring: Ring, replicas: usize, node_id: &str, peers: HashSet<String>) {
        *self.ranges.write() = Some(Ranges { epoch, ring, replicas, node_id: node_id.to_string(), waiting_for: peers });
    }

    /// `peer` sent every copy this node owns, for the catch-up of `epoch`.
    pub fn peer_caught_up(&self, epoch: u64, peer: &str) {
        if let Some(r) = self.ranges.write().as_mut().filter(|r| r.epoch == epoch) {
            r.waiting_for.remove(peer);
        }
    }

    /// The peers the running catch-up still waits for (empty when none runs).
    pub fn waiting_for(&self) -> Vec<String> {
        let epoch = self.epoch();
        let mut v: Vec<String> = match &*self.ranges.read() {
            Some(r) if r.epoch == epoch && self.recovering() => r.waiting_for.iter().cloned().collect(),
            _ => Vec::new(),
        };
        v.sort();
        v
    }

    /// Like [`Recovery::recovering_now`], for one key: false once every other owner of the key
    /// has answered this node's catch-up. A key this node does not own on the catch-up's ring
    /// stays recovering until the whole catch-up ends.
    pub fn recovering_for(&self, key: &[u8]) -> bool {
        if !self.recovering_now() {
            return false;
        }
        let epoch = self.epoch();
        let ranges = self.ranges.read();
        let Some(r) = ranges.as_ref().filter(|r| r.epoch == epoch) else { return true };
        let owners = r.ring.owners(key, r.replicas);
        if !owners.contains(&r.node_id.as_str()) {
            return true;
        }
        // Read again: a reason that came after the check above makes the progress stale.
        owners.iter().any(|o| r.waiting_for.contains(*o)) || self.epoch() != epoch
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
    fn a_peer_that_answered_ends_recovery_of_the_keys_it_shares() {
        let r = Recovery::default();
        let e = r.begin("start");
        let ids = ["a", "b", "c"];
        let ring = Ring::new(&ids, 64);
        r.pulling(e, ring.clone(), 2, "a", ["b".to_string(), "c".to_string()].into());
        let keys: Vec<String> = (0..2000).map(|i| format!("k{i}")).collect();
        let shared_with = |k: &str, peer: &str| {
            let o = ring.owners(k.as_bytes(), 2);
            o.contains(&"a") && o.contains(&peer)
        };
        assert!(keys.iter().all(|k| r.recovering_for(k.as_bytes())), "nobody answered yet");
        r.peer_caught_up(e, "b");
        assert_eq!(r.waiting_for(), vec!["c".to_string()]);
        let (mut done, mut held) = (0, 0);
        for k in &keys {
            let expect = !shared_with(k, "b");
            assert_eq!(r.recovering_for(k.as_bytes()), expect, "{k}");
            if expect {
                held += 1
            } else {
                done += 1
            }
        }
        assert!(done > 300 && held > 300, "both kinds of key were checked: {done} done, {held} held");
        // A new reason makes the progress stale.
        r.begin("stalled");
        assert!(keys.iter().all(|k| r.recovering_for(k.as_bytes())));
        r.peer_caught_up(e, "c");
        assert!(keys.iter().all(|k| r.recovering_for(k.as_bytes())), "an old epoch's answer does not count");
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
