//! The master's client API: `/cache` in its query and path forms, `/health`, `/metrics`,
//! `/nodes`, plus the admin routes of [`crate::admin`].

use crate::error::{not_found_route, ApiError};
use actix_web::http::header::{HeaderValue, CONTENT_TYPE};
use actix_web::{http::Method, web, HttpRequest, HttpResponse};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use percent_encoding::percent_decode_str;
use std::borrow::Cow;
use std::cell::RefCell;
use std::time::{Duration, Instant};
use tiercache_master::protocol::{Request, Response};
use tiercache_master::{MasterState, ReadResult, ZkState};

const OCTET_STREAM: HeaderValue = HeaderValue::from_static("application/octet-stream");

/// Routes of a master's HTTP server.
pub fn master_app_config(state: web::Data<MasterState>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(state)
            .app_data(KeyBuffer::new())
            // `/cache` and everything under it first, matched by prefix: actix tries the
            // routes in order, and each route tried before costs a GET about 150
            // instructions; a `{tail:.*}` route would run a regex on every request (5% of a
            // GET's CPU in a profile).
            .service(web::scope("/cache").default_service(web::to(cache)))
            .route("/health", web::get().to(health))
            .route("/metrics", web::get().to(metrics))
            .route("/nodes", web::get().to(nodes))
            .route("/backup", web::post().to(crate::admin::backup))
            .route("/rebalance", web::post().to(crate::admin::rebalance))
            .route("/config", web::put().to(crate::admin::put_config))
            .route("/config", web::get().to(config))
            .route("/flush", web::post().to(crate::admin::flush))
            .default_service(web::to(not_found_route));
    }
}

/// The query's parameters as they came, still percent-encoded: each is decoded only when used,
/// a GET's key straight into the worker's [`KeyBuffer`].
struct Params<'q> {
    key: Option<&'q str>,
    value: Option<&'q str>,
    ttl: Option<&'q str>,
}

fn query_params(query: &str) -> Params<'_> {
    let mut p = Params { key: None, value: None, ttl: None };
    for part in query.split('&').filter(|s| !s.is_empty()) {
        let (name, raw) = part.split_once('=').unwrap_or((part, ""));
        match name {
            "key" => p.key = Some(raw),
            "value" => p.value = Some(raw),
            "ttl" => p.ttl = Some(raw),
            _ => {}
        }
    }
    p
}

/// A query parameter with its `+`s made spaces, as in a form (before percent-decoding, so an
/// encoded `%2B` stays a `+`); borrowed when it has none.
fn plus_as_space(raw: &str) -> Cow<'_, str> {
    if raw.contains('+') {
        Cow::Owned(raw.replace('+', " "))
    } else {
        Cow::Borrowed(raw)
    }
}

/// Percent-decodes a query parameter as bytes (binary-safe), `+` being a space.
fn query_decoded(raw: &str) -> Vec<u8> {
    percent_decode_str(&plus_as_space(raw)).collect()
}

/// A data thread's buffer for the keys of its requests. Each key is decoded into it and
/// split off: a key costs no allocation of its own (one per 64 KiB of keys), and the
/// router's clones of it are reference counts, where a key of its own `Vec` took three
/// allocations per GET. One per actix worker (its app data), so never shared between threads.
pub(crate) struct KeyBuffer(RefCell<BytesMut>);

impl KeyBuffer {
    const CHUNK: usize = 64 * 1024;

    pub(crate) fn new() -> KeyBuffer {
        KeyBuffer(RefCell::new(BytesMut::with_capacity(Self::CHUNK)))
    }

    /// `raw` percent-decoded (`+` a space where `plus_is_space`, as in a query).
    fn decode(&self, raw: &str, plus_is_space: bool) -> Bytes {
        let mut buf = self.0.borrow_mut();
        // A decoded key is never longer than its encoding; a new chunk is taken (or the old
        // one reused, once every key cut from it is dropped) when this one is used up.
        buf.reserve(raw.len().max(1));
        let raw = if plus_is_space { plus_as_space(raw) } else { Cow::Borrowed(raw) };
        buf.extend(percent_decode_str(&raw));
        buf.split().freeze()
    }
}

fn op_name(m: &Method) -> &'static str {
    match *m {
        Method::GET | Method::HEAD => "get",
        Method::DELETE => "delete",
        _ => "put",
    }
}

async fn cache(req: HttpRequest, body: web::Payload, state: web::Data<MasterState>) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let op = op_name(req.method());
    let r = cache_inner(&req, body, &state).await;
    let result = match &r {
        Ok((_, res)) => *res,
        Err(ApiError::NotFound(_)) => "miss",
        Err(_) => "error",
    };
    state.metrics.observe(op, result, started);
    // Operators see why requests fail without turning on per-request logging: cluster-side
    // failures (503) at warn, client mistakes at debug, every request at trace.
    match &r {
        Err(e @ ApiError::Unavailable(_)) => {
            tracing::warn!(method = %req.method(), path = req.path(), error = %e, "request failed")
        }
        Err(e) => tracing::debug!(method = %req.method(), path = req.path(), error = %e, "request refused"),
        Ok(_) => tracing::trace!(method = %req.method(), path = req.path(), result, "request served"),
    }
    r.map(|(resp, _)| resp)
}

async fn cache_inner(
    req: &HttpRequest,
    body: web::Payload,
    state: &MasterState,
) -> Result<(HttpResponse, &'static str), ApiError> {
    if let Some(password) = &state.client_password {
        if !crate::admin::bearer(req).is_some_and(|g| tiercache_master::same_secret(g, password)) {
            return Err(ApiError::ClientUnauthorized);
        }
    }
    let params = query_params(req.query_string());
    let tail = req.uri().path().strip_prefix("/cache").unwrap_or("");
    let tail = tail.strip_prefix('/').unwrap_or(tail);
    let path_form = !tail.is_empty();
    let keys = req.app_data::<KeyBuffer>().expect("the master's app data holds a key buffer");
    let key = if path_form {
        keys.decode(tail, false)
    } else {
        let raw =
            params.key.ok_or_else(|| ApiError::BadRequest("missing key: use /cache/?key=K or /cache/{key}".into()))?;
        keys.decode(raw, true)
    };
    if key.is_empty() {
        return Err(ApiError::BadRequest("empty key".into()));
    }
    if key.len() > state.limits.key_max_bytes {
        return Err(ApiError::TooLarge(format!(
            "key of {} bytes exceeds KEY_MAX_BYTES={}",
            key.len(),
            state.limits.key_max_bytes
        )));
    }
    match *req.method() {
        Method::GET | Method::HEAD => match state.router.get(key).await? {
            // A static header value: `content_type("…")` would parse and allocate it per reply.
            ReadResult::Hit(v) => Ok((HttpResponse::Ok().insert_header((CONTENT_TYPE, OCTET_STREAM)).body(v), "hit")),
            ReadResult::Miss => Err(ApiError::NotFound("key not found".into())),
        },
        Method::DELETE => {
            if state.router.delete(key).await? {
                Ok((HttpResponse::Ok().json(serde_json::json!({"deleted": true})), "hit"))
            } else {
                Err(ApiError::NotFound("key not found".into()))
            }
        }
        Method::PUT | Method::POST => {
            let ttl = params.ttl.map(|t| String::from_utf8_lossy(&query_decoded(t)).into_owned());
            let ttl_secs = match ttl.as_deref() {
                None => state.limits.default_ttl_secs,
                Some(t) => match t.trim().parse::<u64>() {
                    Ok(n) if (1..=10 * 365 * 86_400).contains(&n) => n,
                    _ => return Err(ApiError::BadRequest(format!("invalid ttl {t:?}: expected whole seconds >= 1"))),
                },
            };
            let value = match (path_form, params.value.map(query_decoded)) {
                (false, Some(v)) => {
                    check_value_len(v.len(), state.limits.value_max_bytes)?;
                    Bytes::from(v)
                }
                (false, None) => {
                    let v = read_body(req, body, state.limits.value_max_bytes).await?;
                    if v.is_empty() {
                        return Err(ApiError::BadRequest(
                            "missing value: use &value=V or PUT /cache/{key} with a body".into(),
                        ));
                    }
                    v
                }
                (true, _) => read_body(req, body, state.limits.value_max_bytes).await?,
            };
            let len = value.len();
            state.router.put(key.clone(), value, ttl_secs * 1000).await?;
            Ok((
                HttpResponse::Ok().json(serde_json::json!({
                    "key": String::from_utf8_lossy(&key),
                    "stored": true,
                    "bytes": len,
                    "ttl": if ttl_secs == 0 { None } else { Some(ttl_secs) },
                })),
                "ok",
            ))
        }
        _ => Err(ApiError::MethodNotAllowed),
    }
}

fn check_value_len(len: usize, max: usize) -> Result<(), ApiError> {
    if len > max {
        return Err(ApiError::TooLarge(format!("value of {len} bytes exceeds VALUE_MAX_BYTES={max}")));
    }
    Ok(())
}

/// Reads the body, refusing before reading it when Content-Length is over the limit and as
/// soon as a chunked body passes it.
async fn read_body(req: &HttpRequest, mut body: web::Payload, max: usize) -> Result<Bytes, ApiError> {
    if let Some(len) = req.headers().get("content-length") {
        let len: usize = len
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| ApiError::BadRequest("invalid Content-Length".into()))?;
        check_value_len(len, max)?;
    }
    let mut buf = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| ApiError::BadRequest(format!("could not read body: {e}")))?;
        check_value_len(buf.len() + chunk.len(), max)?;
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

async fn health(req: HttpRequest, state: web::Data<MasterState>) -> Result<HttpResponse, ApiError> {
    let view = state.router.view();
    let auxiliaries = view.nodes.len();
    let zk = state.cluster.zookeeper();
    let probe = crate::Probe::of(&req);
    // Readiness also waits for the cluster configuration: until then the placement is a guess.
    let ready = match probe {
        crate::Probe::Live => true,
        crate::Probe::Status => auxiliaries > 0,
        crate::Probe::Ready => auxiliaries > 0 && state.cluster.placement().is_some(),
    };
    let body = serde_json::json!({
        "status": if ready { "ok" } else { "unavailable" },
        "role": "master",
        "id": state.node_id,
        "zookeeper": zk.as_str(),
        "auxiliaries": auxiliaries,
        "coordinator": state.cluster.is_coordinator(),
        "placement": state.cluster.placement(),
    });
    if ready {
        Ok(HttpResponse::Ok().json(body))
    } else {
        Err(ApiError::NotReady(body))
    }
}

async fn metrics(state: web::Data<MasterState>) -> HttpResponse {
    if let Some(refresh) = &state.refresh_metrics {
        refresh(&state.metrics);
    }
    state.metrics.zookeeper_connected.set((state.cluster.zookeeper() == ZkState::Connected) as i64);
    state.metrics.auxiliary_nodes.set(state.router.view().nodes.len() as i64);
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(state.metrics.render())
}

/// `GET /config`: the cluster configuration as stored in ZooKeeper.
async fn config(state: web::Data<MasterState>) -> Result<HttpResponse, ApiError> {
    match state.cluster.placement() {
        Some(p) => Ok(HttpResponse::Ok().json(p)),
        None => Err(ApiError::Unavailable("the cluster configuration has not been read from ZooKeeper yet".into())),
    }
}

async fn nodes(state: web::Data<MasterState>) -> HttpResponse {
    let view = state.router.view();
    let shares = view.ring.shares();
    let stats = state.router.call_all(Request::Stats, Duration::from_secs(1)).await;
    let auxiliaries: Vec<_> = stats
        .into_iter()
        .map(|(node, r)| {
            let (keys, bytes) = match &r {
                Ok(Response::Stats(s)) => (Some(s.keys), Some(s.bytes)),
                _ => (None, None),
            };
            let status = if r.is_err() { "suspect" } else { node.status().as_str() };
            serde_json::json!({
                "id": node.addr.id,
                "address": node.addr.http_addr,
                "data_address": node.addr.data_addr,
                "status": status,
                "keys": keys,
                "bytes": bytes,
                "share": (shares.get(&node.addr.id).copied().unwrap_or(0.0) * 10_000.0).round() / 10_000.0,
            })
        })
        .collect();
    let masters: Vec<_> = state
        .cluster
        .masters()
        .into_iter()
        .map(|m| serde_json::json!({"id": m.id, "address": m.address, "status": "up"}))
        .collect();
    HttpResponse::Ok().json(serde_json::json!({
        "config": state.cluster.placement(),
        "masters": masters,
        "auxiliaries": auxiliaries,
        "coordinator": state.cluster.coordinator(),
        "rebalance": state.router.rebalance_status(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_is_binary_safe_and_decodes_plus() {
        let keys = KeyBuffer::new();
        let p = query_params("key=a%20b%2Fc%E2%9C%93+d&value=x+y%00z%2B&ttl=5&other=1");
        assert_eq!(keys.decode(p.key.unwrap(), true), "a b/c✓ d".as_bytes());
        assert_eq!(query_decoded(p.value.unwrap()), b"x y\0z+");
        assert_eq!(p.ttl, Some("5"));
        let p = query_params("key");
        assert_eq!(keys.decode(p.key.unwrap(), true), &b""[..]);
        assert!(query_params("").key.is_none());
        // In a path, `+` is itself.
        assert_eq!(keys.decode("a+b%2B", false), &b"a+b+"[..]);
    }

    #[test]
    fn keys_cut_from_one_buffer_stay_apart_across_its_chunks() {
        let keys = KeyBuffer::new();
        let long = "k".repeat(KeyBuffer::CHUNK / 3);
        let cut: Vec<Bytes> = (0..10).map(|i| keys.decode(&format!("{long}{i}"), true)).collect();
        for (i, k) in cut.iter().enumerate() {
            assert_eq!(k, format!("{long}{i}").as_bytes());
        }
        // A key longer than a chunk.
        let huge = "x".repeat(3 * KeyBuffer::CHUNK);
        assert_eq!(keys.decode(&huge, true), huge.as_bytes());
    }
}
