//! Configuration from environment variables, read with envy and validated before any port
//! opens. Every error names the variable and the form it expects, in one line. Pure: no I/O
//! beyond reading the environment.
//!
//! - [`settings`]: the one table of every variable (readers, default, meaning), from which the
//!   help and the flags come.
//! - `parse`: one parser per kind of value, each error naming its variable.
//! - here: each role's configuration ([`MasterConfig`], [`AuxiliaryConfig`], local mode) from
//!   the variables.

use serde::Deserialize;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;
use tiercache_placement::DEFAULT_VIRTUAL_NODES;

/// A configuration error: one line naming the variable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// The variable is set but its value is not acceptable.
    #[error("invalid {var}={value:?}: expected {expected}")]
    Invalid {
        /// Variable name.
        var: &'static str,
        /// What was found.
        value: String,
        /// What is expected.
        expected: &'static str,
    },
    /// The variable is required and missing.
    #[error("missing {var}: expected {expected}")]
    Missing {
        /// Variable name.
        var: &'static str,
        /// What is expected.
        expected: &'static str,
    },
    /// The environment could not be read.
    #[error("environment: {0}")]
    Env(String),
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Settings shared by both roles.
#[derive(Debug, Clone)]
pub struct CommonConfig {
    /// HTTP port.
    pub port: u16,
    /// Address to bind.
    pub bind_addr: IpAddr,
    /// Unique id of this node.
    pub node_id: String,
    /// Host other nodes use to reach this one.
    pub advertise_host: String,
    /// ZooKeeper connect string.
    pub zk_servers: String,
    /// ZooKeeper root of this cluster.
    pub zk_root: String,
    /// ZooKeeper session timeout.
    pub zk_session_timeout: Duration,
    /// Shared secret for master↔auxiliary traffic.
    pub internal_token: String,
    /// Log format.
    pub log_format: LogFormat,
}

/// Settings of a master.
#[derive(Debug, Clone)]
pub struct MasterConfig {
    /// Shared settings.
    pub common: CommonConfig,
    /// Virtual nodes per auxiliary on the ring.
    pub virtual_nodes: u32,
    /// Copies of each key.
    pub replicas: usize,
    /// Whether `REPLICAS` was set (else `replicas` is the default, and the cluster's stored
    /// value wins without complaint).
    pub replicas_from_env: bool,
    /// Whether `VIRTUAL_NODES` was set.
    pub virtual_nodes_from_env: bool,
    /// Acknowledgements needed for a write.
    pub write_quorum: usize,
    /// Answers needed for a read.
    pub read_quorum: usize,
    /// Token required by admin endpoints, if any.
    pub admin_token: Option<String>,
    /// Longest key in bytes.
    pub key_max_bytes: usize,
    /// Largest value in bytes.
    pub value_max_bytes: usize,
    /// TTL applied when a write gives none, in seconds (0 = never).
    pub default_ttl_secs: u64,
    /// Timeout of one request to an auxiliary.
    pub request_timeout: Duration,
    /// Threads serving clients (HTTP and RESP), each with one connection per auxiliary.
    pub data_threads: usize,
    /// Port of the Redis-protocol (RESP) front end; 0 = off.
    pub redis_port: u16,
    /// Most RESP client connections open at once (`MAX_CLIENTS`).
    pub max_clients: usize,
    /// Password of the client API (RESP `AUTH`, HTTP `Authorization: Bearer`), if set.
    pub client_password: Option<String>,
}

/// Settings of an auxiliary.
#[derive(Debug, Clone)]
pub struct AuxiliaryConfig {
    /// Shared settings.
    pub common: CommonConfig,
    /// Internal protocol port.
    pub data_port: u16,
    /// Maximum entries.
    pub cache_size: usize,
    /// Maximum bytes of keys + values.
    pub cache_max_bytes: u64,
    /// Where snapshots go.
    pub backup_dir: PathBuf,
    /// Seconds between snapshots (0 = off).
    pub backup_interval_secs: u64,
    /// Restore the newest snapshot at start (false: local mode with `LOCAL_PERSIST=0`).
    pub restore: bool,
    /// Variables that are set but that an auxiliary does not read (placement comes from the
    /// cluster configuration in ZooKeeper), so it can say so at start.
    pub ignored: Vec<&'static str>,
}

mod parse;
pub mod settings;

pub use settings::SETTINGS;

/// Every environment variable the binary reads, from [`SETTINGS`].
pub fn variables() -> impl Iterator<Item = &'static str> {
    SETTINGS.iter().map(|s| s.var)
}

#[derive(Debug, Default, Deserialize)]
struct Raw {
    port: Option<String>,
    data_port: Option<String>,
    bind_addr: Option<String>,
    node_id: Option<String>,
    advertise_host: Option<String>,
    zk_servers: Option<String>,
    zk_root: Option<String>,
    zk_session_timeout_ms: Option<String>,
    internal_token: Option<String>,
    virtual_nodes: Option<String>,
    replicas: Option<String>,
    write_quorum: Option<String>,
    read_quorum: Option<String>,
    admin_token: Option<String>,
    key_max_bytes: Option<String>,
    value_max_bytes: Option<String>,
    default_ttl: Option<String>,
    request_timeout_ms: Option<String>,
    data_threads: Option<String>,
    redis_port: Option<String>,
    max_clients: Option<String>,
    client_password: Option<String>,
    cache_size: Option<String>,
    cache_max_bytes: Option<String>,
    backup_dir: Option<String>,
    backup_interval: Option<String>,
    log_format: Option<String>,
    local_persist: Option<String>,
}

use parse::*;
use settings::Mode;

impl Raw {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(vars: I) -> Result<Raw, ConfigError> {
        envy::from_iter(vars).map_err(|e| ConfigError::Env(e.to_string()))
    }

    fn common(&self, mode: Mode) -> Result<CommonConfig, ConfigError> {
        let default_port = if mode == Mode::Auxiliary { 3001 } else { 8000 };
        let port = parse_num("PORT", &self.port, default_port, 1, "a TCP port 1-65535")?;
        let advertise_host = advertise_host(trimmed(&self.advertise_host))?;
        let zk_ms = parse_num(
            "ZK_SESSION_TIMEOUT_MS",
            &self.zk_session_timeout_ms,
            6000u64,
            1000,
            "milliseconds, at least 1000",
        )?;
        Ok(CommonConfig {
            port,
            bind_addr: bind_addr(trimmed(&self.bind_addr), mode)?,
            node_id: node_id(trimmed(&self.node_id), &advertise_host, port)?,
            advertise_host,
            zk_servers: zk_servers(trimmed(&self.zk_servers))?,
            zk_root: zk_root(trimmed(&self.zk_root))?,
            zk_session_timeout: Duration::from_millis(zk_ms),
            internal_token: internal_token(self.internal_token.as_deref(), mode)?,
            log_format: log_format(trimmed(&self.log_format))?,
        })
    }

    fn placement(&self) -> Result<(u32, usize), ConfigError> {
        let vn = parse_range(
            "VIRTUAL_NODES",
            &self.virtual_nodes,
            DEFAULT_VIRTUAL_NODES,
            1,
            65536,
            "an integer from 1 to 65536",
        )?;
        let max = tiercache_placement::MAX_REPLICAS;
        let replicas = parse_range("REPLICAS", &self.replicas, 2usize, 1, max, "an integer from 1 to 16")?;
        Ok((vn, replicas))
    }

    fn master(&self, mode: Mode) -> Result<MasterConfig, ConfigError> {
        let common = self.common(mode)?;
        let (virtual_nodes, replicas) = self.placement()?;
        let write_quorum =
            parse_range("WRITE_QUORUM", &self.write_quorum, 1usize, 1, replicas, "an integer from 1 to REPLICAS")?;
        let read_quorum =
            parse_range("READ_QUORUM", &self.read_quorum, 1usize, 1, replicas, "an integer from 1 to REPLICAS")?;
        let admin_token = self.admin_token.clone().filter(|t| !t.is_empty());
        let key_max_bytes =
            parse_num("KEY_MAX_BYTES", &self.key_max_bytes, 1024usize, 1, "a positive integer (bytes)")?;
        let value_max_bytes = parse_range(
            "VALUE_MAX_BYTES",
            &self.value_max_bytes,
            1usize << 20,
            1,
            32 << 20,
            "a positive integer (bytes), at most 32 MiB",
        )?;
        let default_ttl_secs =
            parse_num("DEFAULT_TTL", &self.default_ttl, 0u64, 0, "whole seconds >= 0 (0 = never expires)")?;
        let rt = parse_num("REQUEST_TIMEOUT_MS", &self.request_timeout_ms, 1000u64, 1, "milliseconds >= 1")?;
        // The CPUs this process may run on (its affinity mask and cgroup quota).
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        let data_threads =
            parse_range("DATA_THREADS", &self.data_threads, cpus, 1, 1024, "a number of threads from 1 to 1024")?;
        Ok(MasterConfig {
            common,
            virtual_nodes,
            replicas,
            write_quorum,
            read_quorum,
            admin_token,
            key_max_bytes,
            value_max_bytes,
            default_ttl_secs,
            request_timeout: Duration::from_millis(rt),
            data_threads,
            replicas_from_env: trimmed(&self.replicas).is_some(),
            virtual_nodes_from_env: trimmed(&self.virtual_nodes).is_some(),
            redis_port: parse_num("REDIS_PORT", &self.redis_port, 6379u16, 0, "a TCP port 1-65535, or 0 for off")?,
            max_clients: parse_num(
                "MAX_CLIENTS",
                &self.max_clients,
                10_000usize,
                1,
                "a number of connections, at least 1",
            )?,
            client_password: self.client_password.clone().filter(|p| !p.is_empty()),
        })
    }

    fn auxiliary(&self, mode: Mode) -> Result<AuxiliaryConfig, ConfigError> {
        let common = self.common(mode)?;
        let ignored = [("REPLICAS", &self.replicas), ("VIRTUAL_NODES", &self.virtual_nodes)]
            .into_iter()
            .filter(|(_, v)| mode == Mode::Auxiliary && trimmed(v).is_some())
            .map(|(name, _)| name)
            .collect();
        let default_data = common.port.checked_add(1000).unwrap_or(common.port.wrapping_sub(1000));
        let data_port = parse_num("DATA_PORT", &self.data_port, default_data, 1, "a TCP port 1-65535")?;
        if mode == Mode::Auxiliary && data_port == common.port {
            return Err(ConfigError::Invalid {
                var: "DATA_PORT",
                value: data_port.to_string(),
                expected: "a TCP port different from PORT",
            });
        }
        let cache_size = parse_num("CACHE_SIZE", &self.cache_size, 1_000_000usize, 1, "a positive number of entries")?;
        let cache_max_bytes =
            parse_num("CACHE_MAX_BYTES", &self.cache_max_bytes, 1u64 << 30, 1024, "bytes, at least 1024")?;
        let backup_dir =
            PathBuf::from(self.backup_dir.as_deref().filter(|s| !s.trim().is_empty()).unwrap_or("./backup"));
        let backup_interval_secs =
            parse_num("BACKUP_INTERVAL", &self.backup_interval, 60u64, 0, "whole seconds >= 0 (0 = off)")?;
        Ok(AuxiliaryConfig {
            common,
            data_port,
            cache_size,
            cache_max_bytes,
            backup_dir,
            backup_interval_secs,
            restore: true,
            ignored,
        })
    }
}

/// Reads a master's configuration from `vars` (pass `std::env::vars()`).
pub fn master_from<I: IntoIterator<Item = (String, String)>>(vars: I) -> Result<MasterConfig, ConfigError> {
    Raw::from_iter(vars)?.master(Mode::Master)
}

/// Reads an auxiliary's configuration from `vars`.
pub fn auxiliary_from<I: IntoIterator<Item = (String, String)>>(vars: I) -> Result<AuxiliaryConfig, ConfigError> {
    Raw::from_iter(vars)?.auxiliary(Mode::Auxiliary)
}

/// The auxiliaries local mode runs in its process.
pub const LOCAL_AUXILIARIES: usize = 3;

/// Reads local mode's configuration: the master's settings plus the auxiliaries' store limits.
pub fn local_from<I: IntoIterator<Item = (String, String)>>(
    vars: I,
) -> Result<(MasterConfig, AuxiliaryConfig), ConfigError> {
    let raw = Raw::from_iter(vars)?;
    let master = raw.master(Mode::Local)?;
    if master.replicas > LOCAL_AUXILIARIES {
        return Err(ConfigError::Invalid {
            var: "REPLICAS",
            value: master.replicas.to_string(),
            expected: "at most 3 in local mode, which runs three auxiliaries",
        });
    }
    let mut aux = raw.auxiliary(Mode::Local)?;
    if parse_range("LOCAL_PERSIST", &raw.local_persist, 1u8, 0, 1, "0 (forget at exit) or 1 (keep snapshots)")? == 0 {
        aux.backup_interval_secs = 0;
        aux.restore = false;
    }
    Ok((master, aux))
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
