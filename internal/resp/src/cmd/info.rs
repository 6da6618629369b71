//! INFO [section]: Redis's section and field names, filled from this master and the cluster.

use super::{bulk, Ctx, Reply};
use bytes::Bytes;
use std::time::Duration;
use tiercache_master::protocol::{Request, Response};

/// The Redis version clients are told (the command set follows Redis 7's words).
pub(super) const REDIS_VERSION: &str = "7.2.0";

pub(super) async fn run(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let wanted: Vec<String> = args[1..].iter().map(|a| String::from_utf8_lossy(a).to_lowercase()).collect();
    let want = |s: &str| wanted.is_empty() || wanted.iter().any(|w| w == s || w == "all" || w == "everything");
    let m = &ctx.state.metrics;
    let count = |result: &str| m.operations.with_label_values(&["get", result]).get();
    let (mut keys, mut bytes) = (0u64, 0u64);
    if want("memory") || want("keyspace") {
        for (_, r) in ctx.state.router.call_all(Request::Stats, Duration::from_secs(1)).await {
            if let Ok(Response::Stats(s)) = r {
                keys += s.keys;
                bytes += s.bytes;
            }
        }
    }
    // Every key is held by REPLICAS auxiliaries.
    let replicas = ctx.state.router.replicas() as u64;
    let mut out = String::new();
    if want("server") {
        out += &format!(
            "# Server\r\nredis_version:{REDIS_VERSION}\r\nredis_mode:cluster\r\nprocess_id:{}\r\nrun_id:{}\r\nuptime_in_seconds:{}\r\n\r\n",
            std::process::id(),
            ctx.state.node_id,
            m.uptime.get() as u64
        );
    }
    if want("clients") {
        out += &format!("# Clients\r\nconnected_clients:{}\r\n\r\n", m.resp_connections.get());
    }
    if want("memory") {
        out += &format!("# Memory\r\nused_memory:{bytes}\r\n\r\n");
    }
    if want("stats") {
        out += &format!("# Stats\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\n\r\n", count("hit"), count("miss"));
    }
    if want("keyspace") {
        // Each key once; if a count fails, an estimate from the held keys.
        let keys = ctx.state.router.dbsize().await.unwrap_or(keys / replicas);
        out += &format!("# Keyspace\r\ndb0:keys={keys},expires=0,avg_ttl=0\r\n");
    }
    bulk(Bytes::from(out))
}
