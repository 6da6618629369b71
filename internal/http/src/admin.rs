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
    if state.router.view().nodes.is_empty() {
        return Err(ApiError::Unavailable("no auxiliary to rebalance".into()));
    }
    let results = state.router.rebalance(vec![]).await;
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
    let body = serde_json::json!({ "moved": total, "nodes": out });
    if failed == 0 {
        Ok(HttpResponse::Ok().json(body))
    } else {
        Ok(HttpResponse::ServiceUnavailable().json(body))
    }
}
