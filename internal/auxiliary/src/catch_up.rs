//! An auxiliary's way back after it may have missed writes: the reasons to recover (start,
//! stall, lost ZooKeeper session) and the catch-up that ends it. While recovering, its reads
//! are answered as such and masters do not count them (see [`crate::recovery`]).
//!
//! Catch-up waits until this node is registered and then [`SETTLE`] more, so that every master
//! has it back in its placement and has stopped routing writes around it (a suspect mark lasts
//! 3 s, a re-registration takes up to 1.5 s to apply); then it pulls every entry it owns from
//! its peers. Writes acknowledged before the pull are in it; writes after reach this node.
//! Each peer's answer ends the recovery of the keys it shares with this node; a peer that
//! fails is asked again every second, until it answers or the membership changes.

use crate::ops::AuxOps;
use crate::server::DataServer;
use futures::stream::{FuturesUnordered, StreamExt};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tiercache_placement::{Member, Settings};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Time after registration before the pull starts (see the module comment).
pub const SETTLE: Duration = Duration::from_secs(5);

const HEARTBEAT: Duration = Duration::from_millis(100);

/// What the auxiliary learns from the membership service.
pub struct ClusterFeed {
    /// Every auxiliary registered.
    pub members: watch::Receiver<Vec<Member>>,
    /// True while this node's session is live and registered.
    pub registered: watch::Receiver<bool>,
    /// Placement settings from the cluster configuration; `None` until a master has
    /// published them.
    pub placement: watch::Receiver<Option<Settings>>,
}

/// Starts the heartbeat, the session watcher and the catch-up loop.
pub fn start(server: &Arc<DataServer>, ops: &Arc<AuxOps>, feed: ClusterFeed) -> Vec<JoinHandle<()>> {
    let s = server.clone();
    let heartbeat = tokio::spawn(async move {
        let mut tick = tokio::time::interval(HEARTBEAT);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            s.recovery.heartbeat();
        }
    });
    let (s, mut registered) = (server.clone(), feed.registered.clone());
    let session = tokio::spawn(async move {
        let mut once = false;
        while registered.changed().await.is_ok() {
            let now = *registered.borrow_and_update();
            // Cut off from ZooKeeper is most likely cut off from the masters too.
            if !now && once {
                s.recovery.begin("ZooKeeper connection lost");
            }
            once |= now;
        }
    });
    let settle = tokio::spawn(follow_settled(ops.clone(), feed.members.clone(), feed.placement.clone()));
    let fence = tokio::spawn(follow_fence(
        server.clone(),
        feed.members.clone(),
        feed.placement.clone(),
        feed.registered.clone(),
    ));
    let catch_up = tokio::spawn(catch_up_loop(server.clone(), ops.clone(), feed));
    vec![heartbeat, session, settle, fence, catch_up]
}

/// Keeps the fence (see [`crate::fence`]) on the membership ZooKeeper reports.
async fn follow_fence(
    server: Arc<DataServer>,
    mut members: watch::Receiver<Vec<Member>>,
    mut placement: watch::Receiver<Option<Settings>>,
    mut registered: watch::Receiver<bool>,
) {
    loop {
        let ids: Vec<String> = members.borrow_and_update().iter().map(|m| m.id.clone()).collect();
        let is_registered = *registered.borrow_and_update();
        if let Some(settings) = *placement.borrow_and_update() {
            server.fence.update(&ids, settings, is_registered);
        }
        tokio::select! {
            r = members.changed() => if r.is_err() { return },
            r = placement.changed() => if r.is_err() { return },
            r = registered.changed() => if r.is_err() { return },
        }
    }
}

/// Records the placement once it has not changed for [`SETTLE`] (see [`crate::outbox`]):
/// members leaving one by one in a whole-cluster stop never settle.
async fn follow_settled(
    ops: Arc<AuxOps>,
    mut members: watch::Receiver<Vec<Member>>,
    mut placement: watch::Receiver<Option<Settings>>,
) {
    loop {
        let quiet = tokio::select! {
            r = members.changed() => if r.is_err() { return } else { false },
            r = placement.changed() => if r.is_err() { return } else { false },
            _ = tokio::time::sleep(SETTLE) => true,
        };
        if !quiet {
            continue;
        }
        let ids: Vec<String> = members.borrow().iter().map(|m| m.id.clone()).collect();
        if let (Some(settings), false) = (*placement.borrow(), ids.is_empty()) {
            ops.settled(crate::outbox::Ownership { members: ids, settings });
        }
        // Until the next change.
        tokio::select! {
            r = members.changed() => if r.is_err() { return },
            r = placement.changed() => if r.is_err() { return },
        }
    }
}

async fn catch_up_loop(server: Arc<DataServer>, ops: Arc<AuxOps>, mut feed: ClusterFeed) {
    loop {
        server.recovery.needed().await;
        let epoch = server.recovery.epoch();
        let started = Instant::now();
        if feed.registered.wait_for(|r| *r).await.is_err() {
            return;
        }
        if feed.placement.borrow().is_none() {
            tracing::info!("waiting for the cluster configuration (published by the first master) to catch up");
        }
        let Ok(placement) = feed.placement.wait_for(Option::is_some).await.map(|p| *p) else { return };
        let Some(settings) = placement else { continue };
        tokio::time::sleep(SETTLE).await;
        // A new REPLICAS meanwhile (PUT /config) changes what this node owns: look again.
        if server.recovery.epoch() != epoch || *feed.placement.borrow() != Some(settings) {
            continue;
        }
        let members = feed.members.borrow_and_update().clone();
        if !members.iter().any(|m| m.id == ops.node_id) {
            // Registered but not listed yet: look again shortly.
            let _ = tokio::time::timeout(Duration::from_secs(1), feed.members.changed()).await;
            continue;
        }
        let ids: Vec<&str> = members.iter().map(|m| m.id.as_str()).collect();
        let peers: Vec<Member> = members.iter().filter(|m| m.id != ops.node_id).cloned().collect();
        let ring = settings.ring(&ids);
        server.recovery.pulling(
            epoch,
            ring,
            settings.replicas,
            &ops.node_id,
            peers.iter().map(|m| m.id.clone()).collect(),
        );
        tracing::info!(epoch, peers = ?peers.iter().map(|m| &m.id).collect::<Vec<_>>(), "catching up: pulling the keys this node owns from its peers");
        let (mut waiting, mut received) = (peers, 0u64);
        let (ops_ref, members_ref) = (&ops, &members);
        'pull: loop {
            let mut calls: FuturesUnordered<_> = waiting
                .iter()
                .map(|peer| async move { (peer.clone(), ops_ref.pull_from(members_ref, settings, peer).await) })
                .collect();
            let mut failed = Vec::new();
            loop {
                tokio::select! {
                    next = calls.next() => match next {
                        None => break,
                        Some((peer, Ok(n))) => {
                            received += n;
                            server.recovery.peer_caught_up(epoch, &peer.id);
                            tracing::info!(peer = peer.id, received = n, "caught up with one peer: the keys shared with it are served");
                        }
                        Some((peer, Err(e))) => {
                            tracing::warn!(error = %e, "catch-up from one peer incomplete; the keys it shares stay recovering");
                            failed.push(peer);
                        }
                    },
                    // A peer that left (its session expired) no longer owns its keys: pull
                    // again under the new membership instead of waiting for it.
                    r = feed.members.changed() => {
                        if r.is_err() {
                            return;
                        }
                        if *feed.members.borrow() != members {
                            break 'pull;
                        }
                    }
                }
            }
            drop(calls);
            waiting = failed;
            if waiting.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            let changed = *feed.members.borrow() != members || *feed.placement.borrow() != Some(settings);
            if server.recovery.epoch() != epoch || changed {
                break;
            }
        }
        if waiting.is_empty() && server.recovery.finish(epoch) {
            tracing::info!(
                received,
                peers = members.len() - 1,
                ms = started.elapsed().as_millis() as u64,
                "caught up: serving reads as a full replica"
            );
        }
    }
}
