//! Admin routes of a master: `POST /backup` and `POST /rebalance`, guarded by `ADMIN_TOKEN`
//! when one is set.

use crate::{error::ApiError, MasterState};
use actix_web::{web, HttpRequest, HttpResponse};
use std::time::Duration;
use tiercache_master::protocol::{Request, Response};
use tiercache_master::router::Answers;
use tiercache_master::WirePeer;

/// The `Authorization: Bearer …` token of a request.
pub(crate) fn bearer(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
}

/// Byte-wise comparison that takes as long whatever the first difference.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn authorize(req: &HttpRequest, state: &MasterState) -> Result<(), ApiError> {
    let Some(token) = &state.admin_token else { return Ok(()) };
    if bearer(req).is_some_and(|g| same_secret(g, token)) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}

/// `POST /flush`: deletes every key of the cluster (admin token required when set).
pub(crate) async fn flush(req: HttpRequest, state: web::Data<MasterState>) -> Result<HttpResponse, ApiError> {
    authorize(&req, &state)?;
    let deleted = state.router.flush().await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "flushed": true, "deleted": deleted })))
}

/// One JSON object per auxiliary: `ok` with the fields `success` extracts from the expected
/// answer, or the error. Returns the objects and how many failed.
fn per_node(
    results: Answers<WirePeer>,
    success: impl Fn(&Response) -> Option<serde_json::Value>,
) -> (Vec<serde_json::Value>, usize) {
    let mut failed = 0;
    let out = results
        .into_iter()
        .map(|(node, r)| {
            let mut obj = match r.as_ref().map(&success) {
                Ok(Some(fields)) => fields,
                Ok(None) => {
                    serde_json::json!({"ok": false, "error": format!("unexpected answer {:?}", r.as_ref().ok())})
                }
                Err(e) => serde_json::json!({"ok": false, "error": e.to_string()}),
            };
            if obj["ok"] != true {
                failed += 1;
            }
            obj["id"] = serde_json::Value::String(node.addr.id.clone());
            obj
        })
        .collect();
    (out, failed)
}

pub(crate) async fn backup(req: HttpRequest, state: web::Data<MasterState>) -> Result<HttpResponse, ApiError> {
    authorize(&req, &state)?;
    let results = state.router.call_all(Request::Snapshot, Duration::from_secs(300)).await;
    if results.is_empty() {
        return Err(ApiError::Unavailable("no auxiliary to back up".into()));
    }
    let (out, failed) = per_node(results, |r| match r {
        Response::Snapshot(s) => Some(serde_json::json!({
            "ok": true, "entries": s.entries, "bytes": s.bytes, "file": s.file, "duration_ms": s.duration_ms,
        })),
        _ => None,
    });
    if failed == 0 {
        Ok(HttpResponse::Ok().json(serde_json::json!({ "backups": out })))
    } else {
        Err(ApiError::Partial {
            message: format!("{failed} auxiliaries failed to back up"),
            body: serde_json::json!({ "backups": out }),
        })
    }
}

pub(crate) async fn rebalance(req: HttpRequest, state: web::Data<MasterState>) -> Result<HttpResponse, ApiError> {
    authorize(&req, &state)?;
    if state.router.view().nodes.is_empty() {
        return Err(ApiError::Unavailable("no auxiliary to rebalance".into()));
    }
    let results = state.router.rebalance(vec![]).await;
    let total: u64 = results
        .iter()
        .filter_map(|(_, r)| match r {
            Ok(Response::Rebalanced { moved, .. }) => Some(*moved),
            _ => None,
        })
        .sum();
    let (out, failed) = per_node(results, |r| match r {
        Response::Rebalanced { moved, dropped } => {
            Some(serde_json::json!({"ok": true, "moved": moved, "dropped": dropped}))
        }
        _ => None,
    });
    let body = serde_json::json!({ "moved": total, "nodes": out });
    if failed == 0 {
        Ok(HttpResponse::Ok().json(body))
    } else {
        Err(ApiError::Partial { message: format!("{failed} auxiliaries failed to rebalance"), body })
    }
}
