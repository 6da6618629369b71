//! Admin routes of a master: `POST /backup` and `POST /rebalance`, guarded by `ADMIN_TOKEN`
//! when one is set.

use crate::{error::ApiError, MasterState};
use actix_web::{web, HttpRequest, HttpResponse};
use std::time::Duration;
use tiercache_protocol::{Request, Response};

fn authorize(req: &HttpRequest, state: &MasterState) -> Result<(), ApiError> {
    let Some(token) = &state.admin_token else { return Ok(()) };
    let given =
        req.headers().get("authorization").and_then(|h| h.to_str().ok()).and_then(|h| h.strip_prefix("Bearer "));
    if given.is_some_and(|g| g.trim() == token) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}

pub(crate) async fn backup(req: HttpRequest, state: web::Data<MasterState>) -> Result<HttpResponse, ApiError> {
    authorize(&req, &state)?;
    let results = state.router.call_all(Request::Snapshot, Duration::from_secs(300)).await;
    if results.is_empty() {
        return Err(ApiError::Unavailable("no auxiliary to back up".into()));
    }
    let mut failed = 0;
    let out: Vec<_> = results
        .into_iter()
        .map(|(node, r)| match r {
            Ok(Response::Snapshot(s)) => serde_json::json!({
                "id": node.addr.id, "ok": true, "entries": s.entries, "bytes": s.bytes,
                "file": s.file, "duration_ms": s.duration_ms,
            }),
            Ok(other) => {
                failed += 1;
                serde_json::json!({"id": node.addr.id, "ok": false, "error": format!("unexpected answer {other:?}")})
            }
            Err(e) => {
                failed += 1;
                serde_json::json!({"id": node.addr.id, "ok": false, "error": e.to_string()})
            }
        })
        .collect();
    if failed == 0 {
        Ok(HttpResponse::Ok().json(serde_json::json!({ "backups": out })))
    } else {
        Ok(HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({ "error": format!("{failed} auxiliaries failed to back up"), "backups": out })))
    }
}

pub(crate) async fn rebalance(req: HttpRequest, state: web::Data<MasterState>) -> Result<HttpResponse, ApiError> {
    authorize(&req, &state)?;
    let view = state.router.view();
    let cfg = state.router.config();
    let mut members: Vec<(String, String)> =
        view.nodes.values().map(|n| (n.addr.id.clone(), n.addr.data_addr.clone())).collect();
    members.sort();
    if members.is_empty() {
        return Err(ApiError::Unavailable("no auxiliary to rebalance".into()));
    }
    let req = Request::Rebalance {
        members,
        virtual_nodes: cfg.virtual_nodes,
        replicas: cfg.replicas as u32,
        drop_unowned: true,
    };
    let results = state.router.call_all(req, Duration::from_secs(600)).await;
    let mut total = 0u64;
    let mut failed = 0;
    let out: Vec<_> = results
        .into_iter()
        .map(|(node, r)| match r {
            Ok(Response::Rebalanced { moved, dropped }) => {
                total += moved;
                serde_json::json!({"id": node.addr.id, "ok": true, "moved": moved, "dropped": dropped})
            }
            Ok(other) => {
                failed += 1;
                serde_json::json!({"id": node.addr.id, "ok": false, "error": format!("unexpected answer {other:?}")})
            }
            Err(e) => {
                failed += 1;
                serde_json::json!({"id": node.addr.id, "ok": false, "error": e.to_string()})
            }
        })
        .collect();
    state.metrics.rebalance_keys_moved.inc_by(total);
    let body = serde_json::json!({ "moved": total, "nodes": out });
    if failed == 0 {
        Ok(HttpResponse::Ok().json(body))
    } else {
        Ok(HttpResponse::ServiceUnavailable().json(body))
    }
}
