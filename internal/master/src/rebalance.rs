//! Rebalance coordination: following the membership (with a short debounce), and, on the
//! elected coordinator, starting the transfer of keys whose owners changed and, once the
//! membership has settled, the sweep of copies on non-owners.

use crate::peer::Connect;
use crate::router::{Answers, Router};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tiercache_placement::Member;
use tiercache_protocol::{Request, Response};
use tokio::sync::watch;

/// How long the membership must stay unchanged before the ownership sweep.
pub const SWEEP_SETTLE: Duration = Duration::from_secs(5);

/// Progress of rebalance transfers, as `/nodes` shows it.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RebalanceStatus {
    /// A transfer is running now.
    pub running: bool,
    /// Transfers completed since start.
    pub runs: u64,
    /// Keys moved by the last transfer.
    pub last_moved: u64,
    /// Duration of the last transfer in ms.
    pub last_duration_ms: u64,
    /// Errors of the last transfer, if any.
    pub last_errors: Vec<String>,
}

impl<C: Connect> Router<C> {
    /// Current rebalance progress.
    pub fn rebalance_status(&self) -> RebalanceStatus {
        self.rebalance.lock().clone()
    }

    /// Asks every auxiliary of the current view to send its keys to their owners under this
    /// view (only to owners that are new relative to `previous`, or to all when it is empty)
    /// and to drop what it no longer owns. Returns the answers per auxiliary.
    pub async fn rebalance(&self, previous: Vec<String>) -> Answers<C::Peer> {
        let started = Instant::now();
        let view = self.view();
        let mut members: Vec<(String, String)> =
            view.nodes.values().map(|n| (n.addr.id.clone(), n.addr.data_addr.clone())).collect();
        members.sort();
        self.rebalance.lock().running = true;
        let req = Request::Rebalance {
            members,
            virtual_nodes: self.virtual_nodes(),
            replicas: self.replicas() as u32,
            drop_unowned: true,
            previous,
        }
        .placed(self.key_hash());
        let results = self.call_all(req, Duration::from_secs(600)).await;
        let mut moved = 0;
        let mut errors = Vec::new();
        for (node, r) in &results {
            match r {
                Ok(Response::Rebalanced { moved: m, .. }) => moved += m,
                // The words of `WireError::Unexpected`, without copying the answer into one.
                Ok(other) => errors.push(format!("auxiliary {}: unexpected answer {other:?}", node.addr.id)),
                Err(e) => errors.push(e.to_string()),
            }
        }
        self.metrics.rebalance_keys_moved.inc_by(moved);
        let ms = started.elapsed().as_millis() as u64;
        tracing::info!(moved, ms, errors = errors.len(), "rebalance finished");
        let mut s = self.rebalance.lock();
        s.running = false;
        s.runs += 1;
        s.last_moved = moved;
        s.last_duration_ms = ms;
        s.last_errors = errors;
        drop(s);
        results
    }
}

/// Applies membership changes to the router; when `is_coordinator` says so, starts the
/// transfer of keys whose owners changed and, once settled, the ownership sweep.
pub async fn follow<C: Connect>(
    mut rx: watch::Receiver<Vec<Member>>,
    router: Arc<Router<C>>,
    is_coordinator: Arc<dyn Fn() -> bool + Send + Sync>,
) {
    let mut applied: Vec<Member> = Vec::new();
    // Bumped on every applied change: a sweep scheduled before it finds it moved and skips.
    let changes = Arc::new(AtomicU64::new(0));
    loop {
        let mut next = rx.borrow_and_update().clone();
        if applied.iter().any(|a| !next.contains(a)) {
            // A node re-registering after a session change shows up as a removal and an
            // addition; a short wait keeps such a blip from reshuffling the placement. Requests
            // to a node that really died are routed around meanwhile (suspect marking).
            tokio::time::sleep(Duration::from_millis(1500)).await;
            next = rx.borrow_and_update().clone();
        }
        if next != applied {
            // Discovery keeps the last membership while ZooKeeper is unreachable, so an empty
            // list here means the cluster really has no auxiliary.
            router.set_members(&next);
            let previous: Vec<String> = applied.iter().map(|a| a.id.clone()).collect();
            let start_transfer = !applied.is_empty() && !next.is_empty() && is_coordinator();
            let change = changes.fetch_add(1, Ordering::Relaxed) + 1;
            if !next.is_empty() {
                let (r, c, changes) = (router.clone(), is_coordinator.clone(), changes.clone());
                tokio::spawn(async move { sweep_when_settled(r, c, changes, change).await });
            }
            applied = next;
            if start_transfer {
                let router = router.clone();
                tokio::spawn(async move { rebalance_with_retries(router, previous).await });
            }
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// Runs [`Router::rebalance`] after a moment for every master's view to catch up, again (with
/// back-off, up to 5 times) until every auxiliary has done its part. True when one run
/// succeeded on every auxiliary.
pub async fn rebalance_with_retries<C: Connect>(router: Arc<Router<C>>, previous: Vec<String>) -> bool {
    // Let every master's view catch up before moving keys.
    tokio::time::sleep(Duration::from_secs(1)).await;
    // A transfer that failed part-way (a target restarting, a timeout) is run again: until it
    // succeeds some keys may have fewer than REPLICAS copies.
    let mut backoff = Duration::from_secs(2);
    for attempt in 1..=5 {
        let results = router.rebalance(previous.clone()).await;
        if results.iter().all(|(_, res)| res.is_ok()) {
            return true;
        }
        tracing::warn!(attempt, "rebalance incomplete; retrying in {backoff:?}");
        tokio::time::sleep(backoff).await;
        backoff *= 2;
    }
    false
}

/// Once the membership has settled (a start from an empty view included: a whole-cluster
/// restart runs no transfer), the coordinator has every auxiliary send the copies it does not
/// own to their owners and drop them, so copies converge to keys × REPLICAS and a later loss
/// of an owner cannot expose an old copy. Cheap when there is nothing to move: one scan.
async fn sweep_when_settled<C: Connect>(
    router: Arc<Router<C>>,
    is_coordinator: Arc<dyn Fn() -> bool + Send + Sync>,
    changes: Arc<AtomicU64>,
    change: u64,
) {
    tokio::time::sleep(SWEEP_SETTLE).await;
    if changes.load(Ordering::Relaxed) != change || !is_coordinator() {
        return;
    }
    let current: Vec<String> = router.view().ring.nodes().to_vec();
    tracing::info!("membership settled: sweeping copies on non-owners");
    router.rebalance(current).await;
}
