//! How commands reach the cluster: the limits a key and a value must keep, and reads, writes,
//! steps and deletes through the master's router (or, inside a transaction, its overlay),
//! counted in the metrics and noting the connection's read floors.

use super::{cluster_error, err, tx_error, Ctx, Reply};
use bytes::Bytes;
use std::time::Instant;

/// Refuses a key over `KEY_MAX_BYTES`.
pub(crate) fn check_key(ctx: &Ctx<'_>, key: &[u8]) -> Result<(), Reply> {
    let max = ctx.state.limits.key_max_bytes;
    if key.len() > max {
        return Err(err(format!("key of {} bytes exceeds KEY_MAX_BYTES ({max})", key.len())));
    }
    Ok(())
}

/// Checks the key-value pairs of `MSET` and `MSETNX` (`args[0]` is the command's name).
pub(crate) fn check_pairs(ctx: &Ctx<'_>, args: &[Bytes]) -> Result<(), Reply> {
    if args.len() % 2 != 1 {
        let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
        return Err(err(format!("wrong number of arguments for '{name}' command")));
    }
    args[1..].chunks(2).try_for_each(|pair| check_key(ctx, &pair[0]).and_then(|()| check_value(ctx, &pair[1])))
}

/// Refuses a value over `VALUE_MAX_BYTES`.
pub(crate) fn check_value(ctx: &Ctx<'_>, value: &[u8]) -> Result<(), Reply> {
    let max = ctx.state.limits.value_max_bytes;
    if value.len() > max {
        return Err(err(format!("value of {} bytes exceeds VALUE_MAX_BYTES ({max})", value.len())));
    }
    Ok(())
}

/// Counts an operation in `cache_operations_total` and `cache_request_duration_seconds`.
pub(crate) fn observe(ctx: &Ctx<'_>, operation: &str, result: &str, started: Instant) {
    ctx.state.metrics.observe(operation, result, started);
}

/// The value and remaining ttl (ms, 0 = none) of a key, or a reply to send instead.
pub(crate) async fn read(ctx: &Ctx<'_>, key: &Bytes) -> Result<Option<(Bytes, u64)>, Reply> {
    if let Some(tx) = &ctx.session.tx {
        return tx.lock().get(key).map_err(tx_error);
    }
    let started = Instant::now();
    let floor = ctx.session.floors.lock().floor(key);
    match ctx.state.router.read_at_least(key.clone(), floor).await {
        Ok(found) => {
            let hit = found.and_then(|f| Some((f.value?, f.ttl_ms)));
            observe(ctx, "get", if hit.is_some() { "hit" } else { "miss" }, started);
            Ok(hit)
        }
        Err(e) => {
            observe(ctx, "get", "error", started);
            Err(cluster_error(e))
        }
    }
}

/// Writes a value with a ttl in ms (0 = none).
pub(crate) async fn write(ctx: &Ctx<'_>, key: &Bytes, value: Bytes, ttl_ms: u64) -> Result<(), Reply> {
    if let Some(tx) = &ctx.session.tx {
        return tx.lock().put(key, value, ttl_ms).map_err(tx_error);
    }
    let started = Instant::now();
    let r = ctx.state.router.put(key.clone(), value, ttl_ms).await;
    observe(ctx, "put", if r.is_ok() { "ok" } else { "error" }, started);
    let version = r.map_err(cluster_error)?;
    ctx.session.floors.lock().note(key, version);
    Ok(())
}

/// Runs a read-modify-write on the key's primary owner: the value before and the one written.
pub(crate) async fn apply(
    ctx: &Ctx<'_>,
    key: &Bytes,
    op: tiercache_master::protocol::Op,
) -> Result<(Option<Bytes>, Option<Bytes>), Reply> {
    if let Some(tx) = &ctx.session.tx {
        return tx.lock().apply(key, &op).map_err(tx_error);
    }
    let started = Instant::now();
    let r = ctx.state.router.apply(key.clone(), op).await;
    observe(ctx, "put", if r.is_ok() { "ok" } else { "error" }, started);
    match r {
        Ok((previous, written)) => {
            if let Some(w) = &written {
                ctx.session.floors.lock().note(key, w.version);
            }
            Ok((previous, written.and_then(|w| w.value)))
        }
        Err(e) => Err(cluster_error(e)),
    }
}

/// Deletes; true when a live value was there.
pub(crate) async fn delete(ctx: &Ctx<'_>, key: &Bytes) -> Result<bool, Reply> {
    if let Some(tx) = &ctx.session.tx {
        return tx.lock().delete(key).map_err(tx_error);
    }
    let started = Instant::now();
    match ctx.state.router.delete_versioned(key.clone()).await {
        Ok((existed, version)) => {
            ctx.session.floors.lock().note(key, version);
            observe(ctx, "delete", if existed { "hit" } else { "miss" }, started);
            Ok(existed)
        }
        Err(e) => {
            observe(ctx, "delete", "error", started);
            Err(cluster_error(e))
        }
    }
}

/// The TTL a write without one gets (`DEFAULT_TTL`), in ms.
pub(crate) fn default_ttl_ms(ctx: &Ctx<'_>) -> u64 {
    ctx.state.limits.default_ttl_secs * 1000
}

/// Wall-clock milliseconds.
pub(crate) fn now_ms() -> u64 {
    tiercache_master::protocol::version::now_ms()
}
