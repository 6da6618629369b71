//! A master: its router and front ends wired to ZooKeeper (the cluster configuration as the
//! master's `ConfigStore`, the membership, the record of the first write), and its stop in the
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
    let store: Arc<dyn master::ConfigStore> =
        Arc::new(ZkConfigStore { config: discovery.cluster_config(), writer: discovery.config_writer() });
    let membership = ZkMembership { membership: discovery.membership(), status: discovery.status() };
    let info = Arc::new(master::Cluster::new(cfg.common.node_id.clone(), publish, Arc::new(membership), store.clone()));
    router.set_write_record(Arc::new(ZkWriteRecord(discovery.config_writer())));
    let members = derived(discovery.membership(), |m| m.auxiliaries.clone());
    let coordinator = info.clone();
    let is_coordinator: Arc<dyn Fn() -> bool + Send + Sync> = Arc::new(move || coordinator.is_coordinator());
    let (fatal_tx, fatal) = tokio::sync::oneshot::channel();
    let env = master::Environment {
        replicas: cfg.replicas_from_env.then_some(cfg.replicas),
        virtual_nodes: cfg.virtual_nodes_from_env.then_some(cfg.virtual_nodes),
        write_quorum: cfg.write_quorum,
        read_quorum: cfg.read_quorum,
        path: format!("{}/config", cfg.common.zk_root),
    };
    let follow = tokio::spawn({
        let router = router.clone();
        async move {
            if let Err(e) = master::follow_config(env, store, router, members, is_coordinator).await {
                let _ = fatal_tx.send(NodeError::Disagreement(e));
            }
        }
    });
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

/// The `written` znode as the master's [`master::WriteRecord`].
struct ZkWriteRecord(ConfigWriter);

impl master::WriteRecord for ZkWriteRecord {
    fn record(&self) -> futures::future::BoxFuture<'static, Result<Vec<String>, master::PortError>> {
        let writer = self.0.clone();
        Box::pin(async move {
            let members = writer.record_written().await?;
            Ok(members.into_iter().map(|m| m.id).collect())
        })
    }
}

/// The cluster configuration in ZooKeeper as the master's [`master::ConfigStore`].
pub(crate) struct ZkConfigStore {
    config: watch::Receiver<Option<ClusterConfig>>,
    writer: ConfigWriter,
}

impl master::ConfigStore for ZkConfigStore {
    fn watch(&self) -> watch::Receiver<Option<ClusterConfig>> {
        self.config.clone()
    }

    fn update(
        &self,
        mut rewrite: master::follow_config::Rewrite,
    ) -> futures::future::BoxFuture<'static, Result<Option<ClusterConfig>, master::PortError>> {
        let writer = self.writer.clone();
        Box::pin(async move { Ok(writer.update(&mut rewrite).await?) })
    }
}
