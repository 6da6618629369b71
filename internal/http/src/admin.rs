//! Admin routes of a master: `POST /backup`, `POST /rebalance`, `POST /flush` and
//! `PUT /config`, guarded by `ADMIN_TOKEN` when one is set.

use crate::error::ApiError;
use actix_web::{web, HttpRequest, HttpResponse};
use std::time::Duration;
use tiercache_master::protocol::{Request, Response};
use tiercache_master::router::Answers;
use tiercache_master::WirePeer;
use tiercache_master::{same_secret, ConfigChangeError, KeyHash, MasterState, MAX_REPLICAS};

/// The `Authorization: Bearer …` token of a request.
pub(crate) fn bearer(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
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

/// `POST /rebalance[?key_hash=whole|tagged]`: moves every key to its owners now; with
/// `key_hash`, first switches how the cluster places keys (refused while a member's release
/// does not know the rule), so the keys then move to their owners under the new rule.
pub(crate) async fn rebalance(req: HttpRequest, state: web::Data<MasterState>) -> Result<HttpResponse, ApiError> {
    authorize(&req, &state)?;
    let mut key_hash = None;
    for part in req.query_string().split('&').filter(|p| !p.is_empty()) {
        match part.split_once('=').unwrap_or((part, "")) {
            ("key_hash", name) => {
                key_hash = Some(
                    KeyHash::parse(name)
                        .ok_or_else(|| ApiError::BadRequest(format!("key_hash={name:?}: expected whole or tagged")))?,
                )
            }
            (other, _) => {
                return Err(ApiError::BadRequest(format!(
                    "unknown parameter {other:?}; POST /rebalance[?key_hash=whole|tagged]"
                )))
            }
        }
    }
    if state.router.view().nodes.is_empty() {
        return Err(ApiError::Unavailable("no auxiliary to rebalance".into()));
    }
    if let Some(key_hash) = key_hash.filter(|k| *k != state.router.key_hash()) {
        state.cluster.set_key_hash(key_hash).await.map_err(config_error)?;
        adopted(|| state.router.key_hash() == key_hash).await?;
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
    let body = serde_json::json!({ "moved": total, "key_hash": state.router.key_hash().as_str(), "nodes": out });
    if failed == 0 {
        Ok(HttpResponse::Ok().json(body))
    } else {
        Err(ApiError::Partial { message: format!("{failed} auxiliaries failed to rebalance"), body })
    }
}

/// `PUT /config?replicas=N`: changes `REPLICAS` for the running cluster. Every node follows
/// the stored value; the coordinator then copies keys to their new owners (or drops the
/// copies no longer owned), as `POST /rebalance` does.
pub(crate) async fn put_config(req: HttpRequest, state: web::Data<MasterState>) -> Result<HttpResponse, ApiError> {
    authorize(&req, &state)?;
    let mut replicas = None;
    for part in req.query_string().split('&').filter(|p| !p.is_empty()) {
        let (name, value) = part.split_once('=').unwrap_or((part, ""));
        match name.to_ascii_lowercase().as_str() {
            "replicas" => replicas = Some(value.to_string()),
            "virtual_nodes" => {
                return Err(ApiError::BadRequest(
                    "VIRTUAL_NODES cannot change on a running cluster: every key would move".into(),
                ))
            }
            other => return Err(ApiError::BadRequest(format!("unknown setting {other:?}; PUT /config?replicas=N"))),
        }
    }
    let Some(raw) = replicas else {
        return Err(ApiError::BadRequest("nothing to change; PUT /config?replicas=N".into()));
    };
    let n: usize = raw.parse().ok().filter(|n| (1..=MAX_REPLICAS).contains(n)).ok_or_else(|| {
        ApiError::BadRequest(format!("replicas={raw:?}: expected an integer from 1 to {MAX_REPLICAS}"))
    })?;
    let cfg = state.router.config();
    for (var, quorum) in [("WRITE_QUORUM", cfg.write_quorum), ("READ_QUORUM", cfg.read_quorum)] {
        if quorum > n {
            return Err(ApiError::BadRequest(format!(
                "replicas={n} is below this master's {var}={quorum}: lower {var} first"
            )));
        }
    }
    let before = state.cluster.placement();
    state.cluster.set_replicas(n).await.map_err(config_error)?;
    // The answer shows what the cluster now runs with, or says it is not there yet.
    let _ = adopted(|| state.router.replicas() == n).await;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "previous": before,
        "config": state.cluster.placement(),
        "rebalance": format!("started by the coordinator ({}); see GET /nodes", state.cluster.coordinator().unwrap_or_default()),
    })))
}

/// Why the cluster configuration could not be changed, as a status.
fn config_error(e: ConfigChangeError) -> ApiError {
    match e {
        ConfigChangeError::NoZooKeeper => ApiError::BadRequest(e.to_string()),
        ConfigChangeError::Store(_) => ApiError::Unavailable(e.to_string()),
        ConfigChangeError::Unsupported { .. } => ApiError::Conflict(e.to_string()),
    }
}

/// Waits (up to 5 s) until this master runs with a stored change: it comes back through its
/// own watch of the configuration.
async fn adopted(done: impl Fn() -> bool) -> Result<(), ApiError> {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !done() {
        if std::time::Instant::now() >= deadline {
            return Err(ApiError::Unavailable("stored, but this master has not adopted it yet; try again".into()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}
