//! An auxiliary's way back after it may have missed writes: the reasons to recover (start,
//! stall, lost ZooKeeper connection) and the catch-up that ends it. While recovering, its reads
//! are answered as such and masters do not count them (see `tiercache_cluster::Recovery`).
//!
//! Catch-up waits until this node is registered and then [`SETTLE`] more, so that every master
//! has it back in its placement and has stopped routing writes around it (a suspect mark lasts
//! 3 s, a re-registration takes up to 1.5 s to apply); then it pulls every entry it owns from
//! its peers. Writes acknowledged before the pull are in it; writes after reach this node.

use crate::AuxRuntime;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tiercache_cluster::DataServer;
use tiercache_config::AuxiliaryConfig;
use tiercache_discovery::{Discovery, Membership, ZkStatus};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::aux_ops::AuxOps;

/// Time after registration before the pull starts (see the module comment).
pub const SETTLE: Duration = Duration::from_secs(5);

const HEARTBEAT: Duration = Duration::from_millis(100);

/// Starts the heartbeat, the ZooKeeper watcher and the catch-up loop.
pub fn start(cfg: &AuxiliaryConfig, data: &AuxRuntime, discovery: &Discovery) -> Vec<JoinHandle<()>> {
    let server = data.server.clone();
    let heartbeat = tokio::spawn(async move {
        let mut tick = tokio::time::interval(HEARTBEAT);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            server.recovery.heartbeat();
        }
    });
    let (server, mut status) = (data.server.clone(), discovery.status());
    let session = tokio::spawn(async move {
        let mut connected_once = false;
        while status.changed().await.is_ok() {
            let now = *status.borrow_and_update();
            match now {
                ZkStatus::Connected => connected_once = true,
                // Cut off from ZooKeeper is most likely cut off from the masters too.
                ZkStatus::Disconnected if connected_once => {
                    server.recovery.begin("ZooKeeper connection lost");
                }
                _ => {}
            }
        }
    });
    let catch_up = tokio::spawn(catch_up_loop(
        data.server.clone(),
        data.ops.clone(),
        discovery.membership(),
        discovery.status(),
        (cfg.virtual_nodes, cfg.replicas),
    ));
    vec![heartbeat, session, catch_up]
}

async fn catch_up_loop(
    server: Arc<DataServer>,
    ops: Arc<AuxOps>,
    mut membership: watch::Receiver<Arc<Membership>>,
    mut status: watch::Receiver<ZkStatus>,
    (virtual_nodes, replicas): (u32, usize),
) {
    loop {
        server.recovery.needed().await;
        let epoch = server.recovery.epoch();
        let started = Instant::now();
        if status.wait_for(|s| *s == ZkStatus::Connected).await.is_err() {
            return;
        }
        tokio::time::sleep(SETTLE).await;
        if server.recovery.epoch() != epoch {
            continue;
        }
        let members: Vec<(String, String)> = {
            let m = membership.borrow_and_update();
            m.auxiliaries.iter().map(|a| (a.id.clone(), a.data_addr.clone())).collect()
        };
        if !members.iter().any(|(id, _)| *id == ops.node_id) {
            // Registered but not listed yet: look again shortly.
            let _ = tokio::time::timeout(Duration::from_secs(1), membership.changed()).await;
            continue;
        }
        match ops.pull_from_peers(&members, virtual_nodes, replicas).await {
            Ok(received) => {
                if server.recovery.finish(epoch) {
                    tracing::info!(
                        received,
                        peers = members.len() - 1,
                        ms = started.elapsed().as_millis() as u64,
                        "caught up: serving reads as a full replica"
                    );
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "catch-up incomplete; trying again");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
