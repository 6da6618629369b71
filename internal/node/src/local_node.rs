//! Local mode: one master and three auxiliaries in one process, static membership, no
//! ZooKeeper; its /metrics carries the in-process auxiliaries' store series.

use super::*;

/// Runs one master and three auxiliaries in this process with static membership and no
/// ZooKeeper, until `shutdown` resolves.
pub async fn run_local(
    master: MasterConfig,
    aux: AuxiliaryConfig,
    build: Build,
    shutdown: impl Future<Output = ()>,
) -> Result<(), NodeError> {
    let metrics = Arc::new(Metrics::for_local(prometheus::Registry::new())?);
    metrics.build_info(build.version, build.commit)?;
    let router = router_for(&master, metrics.clone());
    let mut auxes = Vec::new();
    let mut members = Vec::new();
    for i in 0..3 {
        let mut c = aux.clone();
        c.common.node_id = format!("local-aux-{i}");
        c.backup_dir = aux.backup_dir.join(format!("aux-{i}"));
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        let m = Arc::new(Metrics::for_auxiliary(prometheus::Registry::new())?);
        // Static membership in one process: no node can miss a write, nothing to recover.
        let a = Auxiliary::start(settings_for(&c), bind_tcp("DATA_PORT", addr)?, m, false)
            .await
            .map_err(|source| NodeError::Bind { var: "DATA_PORT", addr, source })?;
        members.push(Member {
            id: c.common.node_id.clone(),
            data_addr: a.data_addr.to_string(),
            // Its /health and /metrics are the master's: it has no HTTP port of its own.
            http_addr: "in-process".to_string(),
            features: Features::THIS_RELEASE,
        });
        auxes.push(a);
    }
    // Nothing of an older release to agree with: keys group by their hash tags.
    let config = ClusterConfig {
        replicas: master.replicas,
        virtual_nodes: master.virtual_nodes,
        key_hash: KeyHash::Tagged,
        replicated_for: master.replicas,
    };
    router.set_placement(config.settings());
    router.set_members(&members);
    let http_addr = SocketAddr::new(master.common.bind_addr, master.common.port);
    let listener = bind_std("PORT", http_addr)?;
    let info = Arc::new(master::Cluster::alone(master.common.node_id.clone(), http_addr.to_string(), config));
    let mut state = master_state(&master, router, metrics, info);
    // /metrics shows the in-process auxiliaries' store series, summed, as one auxiliary's.
    let parts: Vec<_> = auxes.iter().map(|a| (a.store.clone(), a.metrics.clone())).collect();
    state.refresh_metrics = Some(Box::new(move |m: &Metrics| {
        let (mut keys, mut bytes, mut evictions, mut expired, mut backup) = (0, 0, 0, 0, 0f64);
        for (store, own) in &parts {
            let s = store.stats();
            (keys, bytes, evictions, expired) =
                (keys + s.keys, bytes + s.bytes, evictions + s.evictions, expired + s.expired);
            backup = backup.max(own.backup_last_success.get());
        }
        m.sync_store(keys, bytes, evictions, expired);
        m.backup_last_success.set(backup);
    }));
    let state = Arc::new(state);
    let server = tiercache_http::start_master(state.clone(), listener, master.data_threads).map_err(NodeError::Http)?;
    let resp = start_resp(&master, &state)?;
    tracing::info!(
        version = build.version,
        commit = build.commit,
        http = %http_addr,
        redis = %resp_addr(&master),
        snapshots = %snapshots_where(&aux),
        "local mode: one master and three auxiliaries serving"
    );
    warn_if_admin_open(&master, http_addr);
    shutdown.await;
    let resp = resp.map(|(stop, task)| {
        let _ = stop.send(true);
        task
    });
    server.stop().await;
    if let Some(task) = resp {
        let _ = task.await;
    }
    for a in auxes {
        if let Err(e) = a.stop().await {
            tracing::error!(error = %e, "final snapshot failed");
        }
    }
    Ok(())
}
