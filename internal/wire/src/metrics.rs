//! Prometheus metrics of a node, registered on a registry passed in (never the global one).

use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use std::time::Instant;

/// Operations counted in `cache_operations_total`.
pub const OPERATIONS: [&str; 3] = ["get", "put", "delete"];
/// Results counted in `cache_operations_total`.
pub const RESULTS: [&str; 4] = ["hit", "miss", "ok", "error"];

/// Which node's series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Master,
    Auxiliary,
    Local,
}

/// Every metric of a node.
pub struct Metrics {
    registry: Registry,
    started: Instant,
    /// `cache_operations_total{operation,result}`.
    pub operations: IntCounterVec,
    /// `cache_request_duration_seconds{operation}`.
    pub duration: HistogramVec,
    /// `cache_size_current`: live keys held (auxiliary) or seen across auxiliaries (master).
    pub size: IntGauge,
    /// `cache_bytes_current`.
    pub bytes: IntGauge,
    /// `cache_evictions_total`.
    pub evictions: IntCounter,
    /// `cache_expired_total`.
    pub expired: IntCounter,
    /// `server_uptime_seconds`.
    pub uptime: Gauge,
    /// `cluster_auxiliary_nodes`.
    pub auxiliary_nodes: IntGauge,
    /// `zookeeper_connected` (1/0).
    pub zookeeper_connected: IntGauge,
    /// `rebalance_keys_moved_total`.
    pub rebalance_keys_moved: IntCounter,
    /// `auxiliary_recovering` (1/0): catching up, its reads not counted toward quorums.
    pub recovering: IntGauge,
    /// `resp_connections_current`: open Redis-protocol client connections (master).
    pub resp_connections: IntGauge,
    /// `resp_connections_rejected_total`: connections refused past `MAX_CLIENTS` (master).
    pub resp_rejected: IntCounter,
    /// `replication_keys_repaired_total`: replicas fixed by read repair.
    pub read_repairs: IntCounter,
    /// `backup_last_success_timestamp_seconds`.
    pub backup_last_success: Gauge,
    /// `backup_duration_seconds`.
    pub backup_duration: Histogram,
    /// Resolved label handles: the hot path skips the label lookup (hash + lock) per request.
    op_counters: Vec<IntCounter>,
    op_durations: Vec<Histogram>,
}

fn op_index(operation: &str) -> Option<usize> {
    OPERATIONS.iter().position(|o| *o == operation)
}

fn result_index(result: &str) -> Option<usize> {
    RESULTS.iter().position(|r| *r == result)
}

impl Metrics {
    /// A master's series, registered on `registry`.
    pub fn for_master(registry: Registry) -> Result<Metrics, prometheus::Error> {
        Self::new(registry, Kind::Master)
    }

    /// An auxiliary's series, registered on `registry`.
    pub fn for_auxiliary(registry: Registry) -> Result<Metrics, prometheus::Error> {
        Self::new(registry, Kind::Auxiliary)
    }

    /// Local mode's series: a master's and its in-process auxiliaries' store series (summed
    /// by the caller), and no `zookeeper_connected`, since it has no ZooKeeper.
    pub fn for_local(registry: Registry) -> Result<Metrics, prometheus::Error> {
        Self::new(registry, Kind::Local)
    }

    /// Registers the series of one role on `registry`: each process exports only its own.
    fn new(registry: Registry, kind: Kind) -> Result<Metrics, prometheus::Error> {
        let operations = IntCounterVec::new(
            Opts::new("cache_operations_total", "Cache operations by operation and result"),
            &["operation", "result"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new("cache_request_duration_seconds", "Time to serve a cache operation").buckets(vec![
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
            &["operation"],
        )?;
        let mut m = Metrics {
            started: Instant::now(),
            operations,
            duration,
            size: IntGauge::new("cache_size_current", "Live keys held")?,
            bytes: IntGauge::new("cache_bytes_current", "Bytes of keys and values held")?,
            evictions: IntCounter::new("cache_evictions_total", "Entries evicted by the LRU bound")?,
            expired: IntCounter::new("cache_expired_total", "Entries removed because their TTL passed")?,
            uptime: Gauge::new("server_uptime_seconds", "Seconds since the process started")?,
            auxiliary_nodes: IntGauge::new("cluster_auxiliary_nodes", "Auxiliaries in the placement")?,
            zookeeper_connected: IntGauge::new("zookeeper_connected", "1 when the ZooKeeper session is live")?,
            rebalance_keys_moved: IntCounter::new("rebalance_keys_moved_total", "Keys sent to new owners")?,
            recovering: IntGauge::new(
                "auxiliary_recovering",
                "1 while this auxiliary catches up after a start, a stall or a lost session",
            )?,
            resp_connections: IntGauge::new("resp_connections_current", "Open Redis-protocol client connections")?,
            resp_rejected: IntCounter::new(
                "resp_connections_rejected_total",
                "Redis-protocol connections refused because MAX_CLIENTS were open",
            )?,
            read_repairs: IntCounter::new("replication_keys_repaired_total", "Stale replicas fixed by read repair")?,
            backup_last_success: Gauge::new(
                "backup_last_success_timestamp_seconds",
                "Unix time of the last successful snapshot",
            )?,
            backup_duration: Histogram::with_opts(
                HistogramOpts::new("backup_duration_seconds", "Time to write a snapshot")
                    .buckets(vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
            )?,
            registry,
            op_counters: Vec::new(),
            op_durations: Vec::new(),
        };
        let mut collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(m.operations.clone()),
            Box::new(m.duration.clone()),
            Box::new(m.uptime.clone()),
            Box::new(m.rebalance_keys_moved.clone()),
        ];
        if kind != Kind::Local {
            collectors.push(Box::new(m.zookeeper_connected.clone()));
        }
        if kind != Kind::Master {
            collectors.extend([
                Box::new(m.size.clone()) as Box<dyn prometheus::core::Collector>,
                Box::new(m.bytes.clone()),
                Box::new(m.evictions.clone()),
                Box::new(m.expired.clone()),
                Box::new(m.backup_last_success.clone()),
                Box::new(m.backup_duration.clone()),
            ]);
        }
        if kind == Kind::Auxiliary {
            collectors.push(Box::new(m.recovering.clone()));
        } else {
            collectors.extend([
                Box::new(m.auxiliary_nodes.clone()) as Box<dyn prometheus::core::Collector>,
                Box::new(m.read_repairs.clone()),
                Box::new(m.resp_connections.clone()),
                Box::new(m.resp_rejected.clone()),
            ]);
        }
        // Memory, CPU, open files and threads of this process (`process_*`).
        #[cfg(target_os = "linux")]
        collectors.push(Box::new(prometheus::process_collector::ProcessCollector::for_self()));
        for c in collectors {
            m.registry.register(c)?;
        }
        // Pre-create every label pair so dashboards see zeros instead of gaps.
        for op in OPERATIONS {
            m.op_durations.push(m.duration.with_label_values(&[op]));
            for r in RESULTS {
                m.op_counters.push(m.operations.with_label_values(&[op, r]));
            }
        }
        Ok(m)
    }

    /// Counts one operation and its duration.
    pub fn observe(&self, operation: &str, result: &str, started: Instant) {
        let secs = started.elapsed().as_secs_f64();
        match (op_index(operation), result_index(result)) {
            (Some(o), Some(r)) => {
                self.op_counters[o * RESULTS.len() + r].inc();
                self.op_durations[o].observe(secs);
            }
            _ => {
                self.operations.with_label_values(&[operation, result]).inc();
                self.duration.with_label_values(&[operation]).observe(secs);
            }
        }
    }

    /// `tiercache_build_info{version,commit} 1`: which build this process runs.
    pub fn build_info(&self, version: &str, commit: &str) -> Result<(), prometheus::Error> {
        let info = IntGaugeVec::new(
            Opts::new("tiercache_build_info", "The build this process runs (always 1)"),
            &["version", "commit"],
        )?;
        info.with_label_values(&[version, commit]).set(1);
        self.registry.register(Box::new(info))
    }

    /// Brings the store's series up to date from its totals (the store keeps its own
    /// atomics; these mirror them at render time).
    pub fn sync_store(&self, keys: u64, bytes: u64, evictions: u64, expired: u64) {
        self.size.set(keys as i64);
        self.bytes.set(bytes as i64);
        Self::sync_counter(&self.evictions, evictions);
        Self::sync_counter(&self.expired, expired);
    }

    /// Sets a counter that mirrors a monotonic total kept elsewhere (the store's atomics).
    pub fn sync_counter(counter: &IntCounter, total: u64) {
        let cur = counter.get();
        if total > cur {
            counter.inc_by(total - cur);
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        self.uptime.set(self.started.elapsed().as_secs_f64());
        let mut buf = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::warn!(error = %e, "metrics encoding failed");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_role_renders_its_own_series() {
        let m = Metrics::for_auxiliary(Registry::new()).unwrap();
        m.observe("get", "hit", Instant::now());
        Metrics::sync_counter(&m.evictions, 5);
        Metrics::sync_counter(&m.evictions, 5);
        let text = m.render();
        for name in [
            "cache_operations_total",
            "cache_request_duration_seconds",
            "cache_size_current",
            "cache_bytes_current",
            "cache_evictions_total 5",
            "cache_expired_total",
            "server_uptime_seconds",
            "zookeeper_connected",
            "rebalance_keys_moved_total",
            "auxiliary_recovering",
            "backup_last_success_timestamp_seconds",
            "backup_duration_seconds",
        ] {
            assert!(text.contains(name), "missing {name}");
        }
        assert!(!text.contains("cluster_auxiliary_nodes"), "a master's series");
        let master = Metrics::for_master(Registry::new()).unwrap().render();
        for name in ["cache_operations_total", "cluster_auxiliary_nodes", "replication_keys_repaired_total"] {
            assert!(master.contains(name), "master misses {name}");
        }
        assert!(!master.contains("cache_evictions_total") && !master.contains("backup_"), "an auxiliary's series");
        assert!(text.contains(r#"cache_operations_total{operation="get",result="hit"} 1"#));
        #[cfg(target_os = "linux")]
        assert!(master.contains("process_resident_memory_bytes") && text.contains("process_open_fds"));
        // Local mode: the store's series beside the master's, and no ZooKeeper to report on.
        let local = Metrics::for_local(Registry::new()).unwrap().render();
        for name in
            ["cache_size_current", "cache_evictions_total", "cluster_auxiliary_nodes", "resp_connections_current"]
        {
            assert!(local.contains(name), "local misses {name}");
        }
        assert!(!local.contains("zookeeper_connected"));
        // Two nodes in one process (local mode) need separate registries, not a global one.
        assert!(Metrics::for_auxiliary(Registry::new()).is_ok());
    }
}
