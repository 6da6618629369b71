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
}

impl AuxState {
    fn refresh_metrics(&self) {
        let s = self.store.stats();
        self.metrics.size.set(s.keys as i64);
        self.metrics.bytes.set(s.bytes as i64);
        Metrics::sync_counter(&self.metrics.evictions, s.evictions);
        Metrics::sync_counter(&self.metrics.expired, s.expired);
        self.metrics.zookeeper_connected.set(((self.zookeeper)() == "connected") as i64);
    }
}

async fn aux_health(state: web::Data<AuxState>) -> HttpResponse {
    let s = state.store.stats();
    HttpResponse::Ok().json(serde_json::json!({
        "status": "ok",
        "role": "auxiliary",
        "id": state.node_id,
        "zookeeper": (state.zookeeper)(),
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
