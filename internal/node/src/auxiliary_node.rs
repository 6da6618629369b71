//! An auxiliary: its store, data thread and HTTP server, registration and catch-up through
//! ZooKeeper, and its stop in the written order (leave, hand off, drain, final snapshot).

use super::*;

/// Runs an auxiliary until `shutdown` resolves.
pub async fn run_auxiliary(
    cfg: AuxiliaryConfig,
    build: Build,
    shutdown: impl Future<Output = ()>,
) -> Result<(), NodeError> {
    let metrics = Arc::new(Metrics::for_auxiliary(prometheus::Registry::new())?);
    metrics.build_info(build.version, build.commit)?;
    let data_addr = SocketAddr::new(cfg.common.bind_addr, cfg.data_port);
    let data_listener = bind_tcp("DATA_PORT", data_addr)?;
    let aux = Auxiliary::start(settings_for(&cfg), data_listener, metrics, true)
        .await
        .map_err(|source| NodeError::Bind { var: "DATA_PORT", addr: data_addr, source })?;
    let http_addr = SocketAddr::new(cfg.common.bind_addr, cfg.common.port);
    let listener = bind_std("PORT", http_addr)?;
    for var in &cfg.ignored {
        tracing::warn!(var, "ignored: an auxiliary takes placement from the cluster configuration in ZooKeeper");
    }
    let discovery =
        start_discovery(&cfg.common, Role::Auxiliary, format!("{}:{}", cfg.common.advertise_host, cfg.data_port), None);
    let placement = derived(discovery.cluster_config(), |c| c.map(|c| c.settings()));
    let mut status = discovery.status();
    let (registered_tx, registered) = watch::channel(false);
    tokio::spawn(async move {
        loop {
            registered_tx.send_replace(*status.borrow_and_update() == ZkState::Connected);
            if status.changed().await.is_err() {
                return;
            }
        }
    });
    aux.follow_cluster(ClusterFeed {
        members: derived(discovery.membership(), |m| m.auxiliaries.clone()),
        registered: registered.clone(),
        placement: placement.clone(),
    });
    let aux = Arc::new(aux);
    let writer = discovery.config_writer();
    let (fresh, has_written) = (aux.clone(), move || {
        let writer = writer.clone();
        async move { writer.has_written().await }
    });
    tokio::spawn(async move { fresh.start_fresh_if_nothing_written(registered, has_written).await });
    let status = discovery.status();
    let state = AuxState {
        health: {
            let (aux, status) = (aux.clone(), status.clone());
            Arc::new(move || aux.health(status.borrow().as_str()))
        },
        ready: {
            let (aux, placement) = (aux.clone(), placement.clone());
            Arc::new(move || aux.recovering().is_none() && placement.borrow().is_some())
        },
        metrics: {
            let aux = aux.clone();
            Arc::new(move || aux.render_metrics(*status.borrow() == ZkState::Connected))
        },
    };
    let server = tiercache_http::start_auxiliary(state, listener).map_err(NodeError::Http)?;
    tracing::info!(
        version = build.version,
        commit = build.commit,
        http = %http_addr,
        data = %aux.data_addr,
        id = cfg.common.node_id,
        snapshots = %snapshots_where(&cfg),
        "auxiliary serving"
    );
    let mut unsupported = discovery.fatal();
    let fatal = tokio::select! {
        _ = shutdown => None,
        Ok(why) = unsupported.wait_for(Option::is_some) => why.clone(),
    };

    tracing::info!("shutting down: leaving ZooKeeper");
    let last_view = discovery.membership().borrow().clone();
    discovery.leave(Duration::from_secs(3)).await;
    // Masters have dropped us from the placement by now or will within moments; the data port
    // stays open meanwhile for reads still in flight.
    let remaining: Vec<Member> = last_view.auxiliaries.iter().filter(|m| m.id != cfg.common.node_id).cloned().collect();
    let placement = *placement.borrow();
    match placement {
        Some(p) => aux.hand_off(remaining, p).await,
        None => tracing::warn!("no cluster configuration read: nothing handed off; the final snapshot keeps the keys"),
    }
    aux.server.close_writes();
    tracing::info!("shutting down: draining");
    server.stop().await;
    let result = aux.stop().await.map_err(NodeError::FinalSnapshot);
    tracing::info!("auxiliary stopped");
    match fatal {
        Some(why) => Err(NodeError::Unsupported(why)),
        None => result,
    }
}
