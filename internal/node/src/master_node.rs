//! A master: its router and front ends, following the cluster configuration and the
//! membership from ZooKeeper (adopting, checking and re-replicating), and its stop in the
//! written order.

use super::*;

/// Runs a master until `shutdown` resolves.
pub async fn run_master(cfg: MasterConfig, build: Build, shutdown: impl Future<Output = ()>) -> Result<(), NodeError> {
    let metrics = Arc::new(Metrics::for_master(prometheus::Registry::new())?);
    metrics.build_info(build.version, build.commit)?;
    let router = router_for(&cfg, metrics.clone());
    let http_addr = SocketAddr::new(cfg.common.bind_addr, cfg.common.port);
    let listener = bind_std("PORT", http_addr)?;
    // A new cluster has nothing to re-replicate, and groups keys by their hash tags.
    let publish = ClusterConfig {
        replicas: cfg.replicas,
        virtual_nodes: cfg.virtual_nodes,
        replicated_for: cfg.replicas,
        key_hash: KeyHash::Tagged,
    };
    let discovery = start_discovery(&cfg.common, Role::Master, String::new(), Some(publish));
    let info = Arc::new(ZkInfo {
        status: Some(discovery.status()),
        membership: Some(discovery.membership()),
        static_masters: vec![],
        me: cfg.common.node_id.clone(),
        config: Some((discovery.cluster_config(), discovery.config_writer())),
        local: publish,
    });
    router.set_write_record(Arc::new(ZkWriteRecord(discovery.config_writer())));
    let members = derived(discovery.membership(), aux_addrs);
    let coordinator = info.clone();
    let is_coordinator: Arc<dyn Fn() -> bool + Send + Sync> = Arc::new(move || coordinator.is_coordinator());
    let (fatal_tx, fatal) = tokio::sync::oneshot::channel();
    let follow = tokio::spawn(follow_cluster_config(
        cfg.clone(),
        discovery.cluster_config(),
        discovery.config_writer(),
        router.clone(),
        members,
        is_coordinator,
        fatal_tx,
    ));
    let state = Arc::new(master_state(&cfg, router, metrics, info));
    // The HTTP workers are the data threads the RESP connections are served on.
    let server = tiercache_http::start_master(state.clone(), listener, cfg.data_threads).map_err(NodeError::Http)?;
    let resp = start_resp(&cfg, &state)?;
    tracing::info!(
        version = build.version,
        commit = build.commit,
        http = %http_addr,
        redis = %resp_addr(&cfg),
        id = cfg.common.node_id,
        zk = cfg.common.zk_servers,
        "master serving (it holds no data)"
    );
    warn_if_admin_open(&cfg, http_addr);
    let mut unsupported = discovery.fatal();
    let fatal = tokio::select! {
        _ = shutdown => None,
        Ok(e) = fatal => Some(e),
        Ok(why) = unsupported.wait_for(Option::is_some) => why.clone().map(NodeError::Unsupported),
    };
    // The written order: stop accepting (RESP here, HTTP below), leave ZooKeeper, drain.
    let resp = resp.map(|(stop, task)| {
        let _ = stop.send(true);
        task
    });
    tracing::info!("shutting down: leaving ZooKeeper");
    follow.abort();
    discovery.leave(Duration::from_secs(3)).await;
    tracing::info!("shutting down: draining HTTP requests and RESP connections");
    server.stop().await;
    if let Some(task) = resp {
        let _ = task.await;
    }
    tracing::info!("master stopped");
    fatal.map_or(Ok(()), Err)
}

/// Checks this master's environment against the stored cluster configuration, adopts it, then
/// follows the membership (rebalancing as the coordinator) and later changes of the
/// configuration (`PUT /config`: the coordinator re-replicates).
async fn follow_cluster_config(
    cfg: MasterConfig,
    mut config: watch::Receiver<Option<ClusterConfig>>,
    writer: ConfigWriter,
    router: Arc<Router>,
    members: watch::Receiver<Vec<Member>>,
    is_coordinator: Arc<dyn Fn() -> bool + Send + Sync>,
    fatal: tokio::sync::oneshot::Sender<NodeError>,
) {
    let path = format!("{}/config", cfg.common.zk_root);
    let Ok(first) = config.wait_for(Option::is_some).await.map(|c| *c) else { return };
    let Some(first) = first else { return };
    if let Err(e) = check_environment(&cfg, &first, &path) {
        let _ = fatal.send(e);
        return;
    }
    router.set_placement(first.settings());
    let current = Arc::new(parking_lot::Mutex::new(first));
    let changes = async {
        while config.changed().await.is_ok() {
            let Some(next) = *config.borrow_and_update() else { continue };
            let mut cur = current.lock();
            if next.virtual_nodes != cur.virtual_nodes {
                // Every key would move with no rebalance to follow it: keep routing as before.
                tracing::error!(
                    stored = next.virtual_nodes,
                    running = cur.virtual_nodes,
                    "VIRTUAL_NODES changed in ZooKeeper; ignored (it cannot change on a running cluster)"
                );
                continue;
            }
            router.set_placement(next.settings());
            *cur = next;
        }
    };
    // The coordinator re-replicates whenever the stored REPLICAS is ahead of the last one every
    // key was copied for: right after a PUT /config, and again on the next coordinator when
    // the one that should have done it stopped first.
    let rereplicate = async {
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        loop {
            tick.tick().await;
            let c = *current.lock();
            if c.replicated_for == c.replicas || !is_coordinator() {
                continue;
            }
            tracing::info!(from = c.replicated_for, to = c.replicas, "REPLICAS changed: re-replicating");
            if master::rebalance_with_retries(router.clone(), vec![]).await {
                // Recorded only if REPLICAS did not change again meanwhile.
                let done = writer
                    .update(|stored| {
                        stored
                            .filter(|s| s.replicas == c.replicas)
                            .map(|s| ClusterConfig { replicated_for: c.replicas, ..s })
                    })
                    .await;
                if let Err(e) = done {
                    tracing::warn!(error = %e, "could not record the re-replication; it will run again");
                }
            }
        }
    };
    tokio::select! {
        _ = master::follow(members, router.clone(), is_coordinator.clone()) => {}
        _ = changes => {}
        _ = rereplicate => {}
    }
}

fn check_environment(cfg: &MasterConfig, stored: &ClusterConfig, path: &str) -> Result<(), NodeError> {
    let mismatch = |var, env: String, stored: String| NodeError::ClusterConfig { var, env, stored, path: path.into() };
    if cfg.replicas_from_env && cfg.replicas != stored.replicas {
        return Err(mismatch("REPLICAS", cfg.replicas.to_string(), stored.replicas.to_string()));
    }
    if cfg.virtual_nodes_from_env && cfg.virtual_nodes != stored.virtual_nodes {
        return Err(mismatch("VIRTUAL_NODES", cfg.virtual_nodes.to_string(), stored.virtual_nodes.to_string()));
    }
    for (var, quorum) in [("WRITE_QUORUM", cfg.write_quorum), ("READ_QUORUM", cfg.read_quorum)] {
        if quorum > stored.replicas {
            return Err(NodeError::QuorumAboveReplicas { var, quorum, replicas: stored.replicas, path: path.into() });
        }
    }
    Ok(())
}

/// The `written` znode as the master's [`master::WriteRecord`].
struct ZkWriteRecord(ConfigWriter);

impl master::WriteRecord for ZkWriteRecord {
    fn record(&self) -> futures::future::BoxFuture<'static, Result<Vec<String>, String>> {
        let writer = self.0.clone();
        Box::pin(async move {
            let members = writer.record_written().await.map_err(|e| e.to_string())?;
            Ok(members.into_iter().map(|m| m.id).collect())
        })
    }
}
