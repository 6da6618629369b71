//! The HTTP side of tiercache (the only crate that imports actix-web): the master's client and
//! admin API over [`tiercache_master::MasterState`], the auxiliary's `/health` and
//! `/metrics`, and the mapping of every error to a JSON body and a status code in one
//! `match`. Its sibling front end, RESP, is the `tiercache-resp` crate.

mod admin;
mod api;
mod error;

pub use api::master_app_config;
pub use error::ApiError;

use actix_web::{web, HttpResponse};
use std::sync::Arc;
use tiercache_master::MasterState;

/// What an auxiliary's HTTP server needs: its answers, supplied by the auxiliary itself.
#[derive(Clone)]
pub struct AuxState {
    /// The `/health` body.
    pub health: Arc<dyn Fn() -> serde_json::Value + Send + Sync>,
    /// Whether the auxiliary has restored, caught up and read the cluster configuration: the
    /// answer of `/health?ready=1` (a Kubernetes readiness probe).
    pub ready: Arc<dyn Fn() -> bool + Send + Sync>,
    /// The `/metrics` text.
    pub metrics: Arc<dyn Fn() -> String + Send + Sync>,
}

/// The probe a `/health` query asks for: `?ready=1` (serve traffic?) or `?live=1` (is the
/// process alive?); plain `/health` is each role's own status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Probe {
    Status,
    Ready,
    Live,
}

impl Probe {
    pub(crate) fn of(req: &actix_web::HttpRequest) -> Probe {
        let asked = |name: &str| req.query_string().split('&').any(|p| p.split_once('=').map_or(p, |(k, _)| k) == name);
        if asked("live") {
            Probe::Live
        } else if asked("ready") {
            Probe::Ready
        } else {
            Probe::Status
        }
    }
}

async fn aux_health(req: actix_web::HttpRequest, state: web::Data<AuxState>) -> Result<HttpResponse, ApiError> {
    let mut body = (state.health)();
    let ready = (state.ready)();
    body["ready"] = ready.into();
    match Probe::of(&req) {
        Probe::Ready if !ready => Err(ApiError::NotReady(body)),
        _ => Ok(HttpResponse::Ok().json(body)),
    }
}

async fn aux_metrics(state: web::Data<AuxState>) -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body((state.metrics)())
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
/// node's business, not actix's). Each worker is one of the master's data threads: it
/// registers its runtime in [`MasterState::data_threads`] as it starts, so the RESP front end
/// serves its connections there too.
pub fn start_master(
    state: Arc<MasterState>,
    listener: std::net::TcpListener,
    workers: usize,
) -> std::io::Result<RunningServer> {
    let state = web::Data::from(state);
    let server = actix_web::HttpServer::new(move || {
        state.data_threads.register_current();
        actix_web::App::new().configure(master_app_config(state.clone()))
    })
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
