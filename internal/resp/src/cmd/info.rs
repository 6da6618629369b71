//! INFO [section]: Redis's section and field names, filled from this master and the cluster.
//! It says what a client behind one endpoint sees: a standalone server (`redis_mode`,
//! `cluster_enabled:0`; CLUSTER commands are not served), this process's own memory in
//! `used_memory`, and the cluster's data under names of their own.

use super::{bulk, Ctx, Reply};
use bytes::Bytes;
use std::time::Duration;
use tiercache_master::protocol::{Request, Response};

/// The Redis version clients are told (the command set follows Redis 7's words).
pub(super) const REDIS_VERSION: &str = "7.2.0";

pub(super) struct Info {
    /// Lowercase; empty: the default sections.
    sections: Vec<String>,
}

impl Info {
    pub(super) fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        Ok(Info { sections: args[1..].iter().map(|a| String::from_utf8_lossy(a).to_lowercase()).collect() })
    }

    pub(super) async fn run(self, ctx: &mut Ctx<'_>) -> Reply {
        let wanted = self.sections;
        let want = |s: &str| wanted.is_empty() || wanted.iter().any(|w| w == s || w == "all" || w == "everything");
        let m = &ctx.state.metrics;
        let count = |result: &str| m.operations.with_label_values(&["get", result]).get();
        let (mut keys, mut bytes, mut evicted, mut expired) = (0u64, 0u64, 0u64, 0u64);
        if want("memory") || want("keyspace") || want("stats") {
            for (_, r) in ctx.state.router.call_all(Request::Stats, Duration::from_secs(1)).await {
                if let Ok(Response::Stats(s)) = r {
                    keys += s.keys;
                    bytes += s.bytes;
                    evicted += s.evictions;
                    expired += s.expired;
                }
            }
        }
        // Every key is held by REPLICAS auxiliaries.
        let replicas = ctx.state.router.replicas() as u64;
        let mut out = String::new();
        if want("server") {
            out += &format!(
                "# Server\r\nredis_version:{REDIS_VERSION}\r\nredis_mode:standalone\r\nos:{}\r\narch_bits:{}\r\n\
                 process_id:{}\r\nrun_id:{}\r\ntcp_port:{}\r\nuptime_in_seconds:{}\r\nuptime_in_days:{}\r\n\
                 tiercache_version:{}\r\n\r\n",
                std::env::consts::OS,
                usize::BITS,
                std::process::id(),
                ctx.state.node_id,
                ctx.front.port,
                m.uptime.get() as u64,
                m.uptime.get() as u64 / 86_400,
                env!("CARGO_PKG_VERSION"),
            );
        }
        if want("clients") {
            out += &format!(
                "# Clients\r\nconnected_clients:{}\r\nmaxclients:{}\r\nrejected_connections:{}\r\n\r\n",
                m.resp_connections.get(),
                ctx.front.max_clients,
                m.resp_rejected.get()
            );
        }
        if want("memory") {
            // This process's resident memory (the master holds no data); the cluster's keys and
            // values, every copy counted, under names of their own.
            let rss = resident_bytes();
            out += &format!(
                "# Memory\r\nused_memory:{rss}\r\nused_memory_rss:{rss}\r\nmaxmemory:0\r\n\
                 maxmemory_policy:allkeys-lru\r\ntiercache_cluster_data_bytes:{bytes}\r\n\
                 tiercache_cluster_entries:{keys}\r\n\r\n"
            );
        }
        if want("stats") {
            // Evictions and expiries are counted by each auxiliary, per copy.
            out += &format!(
                "# Stats\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\nevicted_keys:{evicted}\r\n\
                 expired_keys:{expired}\r\n\r\n",
                count("hit"),
                count("miss")
            );
        }
        if want("replication") {
            // The copies are the cluster's business, behind this endpoint: to a client it is a
            // primary with no replicas of its own.
            out += "# Replication\r\nrole:master\r\nconnected_slaves:0\r\n\r\n";
        }
        if want("cluster") {
            out += "# Cluster\r\ncluster_enabled:0\r\n\r\n";
        }
        if want("keyspace") {
            // Each key once, with the keys that expire; if an auxiliary cannot count (an older
            // release), the key count alone, or an estimate from the held keys.
            out += &match ctx.state.router.census().await {
                Ok((keys, expires, avg_ttl)) => {
                    format!("# Keyspace\r\ndb0:keys={keys},expires={expires},avg_ttl={avg_ttl}\r\n")
                }
                Err(_) => {
                    let keys = ctx.state.router.dbsize().await.unwrap_or(keys / replicas);
                    format!("# Keyspace\r\ndb0:keys={keys}\r\n")
                }
            };
        }
        bulk(Bytes::from(out))
    }
}

/// This process's resident set, from `/proc/self/statm` (0 where there is none).
fn resident_bytes() -> u64 {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()))
        .unwrap_or(0);
    pages * rustix::param::page_size() as u64
}
