//! The HTTP side of tiercache (the only crate that imports actix-web): the master's client and
//! admin API, the auxiliary's `/health` and `/metrics`, and the mapping of every error to a
//! JSON body and a status code in one `match`.

mod admin;
mod error;
mod master;

pub use error::ApiError;
pub use master::{master_app_config, ClusterInfo, Limits, MasterInfo, MasterState};

use actix_web::{web, HttpResponse};
use std::sync::Arc;
use tiercache_cluster::Metrics;
use tiercache_store::Store;

/// What an auxiliary's HTTP server needs.
pub struct AuxState {
    /// `NODE_ID`.
    pub node_id: String,
    /// The data.
    pub store: Arc<Store>,
    /// Its metrics.
    pub metrics: Arc<Metrics>,
    /// ZooKeeper state word ("connected", ...).
    pub zookeeper: Arc<dyn Fn() -> &'static str + Send + Sync>,
    /// Why this auxiliary is catching up, while it is (its reads do not count toward quorums).
    pub recovering: Arc<dyn Fn() -> Option<&'static str> + Send + Sync>,
}

impl AuxState {
    fn refresh_metrics(&self) {
        let s = self.store.stats();
        self.metrics.size.set(s.keys as i64);
        self.metrics.bytes.set(s.bytes as i64);
        Metrics::sync_counter(&self.metrics.evictions, s.evictions);
        Metrics::sync_counter(&self.metrics.expired, s.expired);
        self.metrics.zookeeper_connected.set(((self.zookeeper)() == "connected") as i64);
        self.metrics.recovering.set((self.recovering)().is_some() as i64);
    }
}

async fn aux_health(state: web::Data<AuxState>) -> HttpResponse {
    let s = state.store.stats();
    HttpResponse::Ok().json(serde_json::json!({
        "status": "ok",
        "role": "auxiliary",
        "id": state.node_id,
        "zookeeper": (state.zookeeper)(),
        "recovering": (state.recovering)(),
        "keys": s.keys,
        "bytes": s.bytes,
    }))
}

async fn aux_metrics(state: web::Data<AuxState>) -> HttpResponse {
    state.refresh_metrics();
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(state.metrics.render())
}

/// Routes of an auxiliary's HTTP server.
pub fn aux_app_config(state: web::Data<AuxState>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(state)
            .route("/health", web::get().to(aux_health))
            .route("/metrics", web::get().to(aux_metrics))
            .default_service(web::to(error::not_found_route));
    }
}

/// A running HTTP server (master or auxiliary), owned by the node that started it.
pub struct RunningServer {
    handle: actix_web::dev::ServerHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    /// Stops accepting, waits for in-flight requests (up to the shutdown timeout), and
    /// returns once the server is down.
    pub async fn stop(self) {
        self.handle.stop(true).await;
        let _ = self.task.await;
    }
}

fn run(server: actix_web::dev::Server) -> RunningServer {
    let handle = server.handle();
    RunningServer { handle, task: tokio::spawn(server) }
}

/// Serves the master's API on `listener` with `workers` actix workers (signals are the
/// node's business, not actix's).
pub fn start_master(
    state: MasterState,
    listener: std::net::TcpListener,
    workers: usize,
) -> std::io::Result<RunningServer> {
    let state = web::Data::new(state);
    let server = actix_web::HttpServer::new(move || actix_web::App::new().configure(master_app_config(state.clone())))
        .workers(workers)
        .backlog(4096)
        .disable_signals()
        .shutdown_timeout(10)
        .listen(listener)?
        .run();
    Ok(run(server))
}

/// Serves an auxiliary's `/health` and `/metrics` on `listener`.
pub fn start_auxiliary(state: AuxState, listener: std::net::TcpListener) -> std::io::Result<RunningServer> {
    let state = web::Data::new(state);
    let server = actix_web::HttpServer::new(move || actix_web::App::new().configure(aux_app_config(state.clone())))
        .workers(1)
        .disable_signals()
        .shutdown_timeout(5)
        .listen(listener)?
        .run();
    Ok(run(server))
}
