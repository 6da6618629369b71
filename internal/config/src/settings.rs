//! The one table of settings: every environment variable the binary reads, who reads it, its
//! default and what it means. `tiercache <role> --help`, the command-line flags (`--port 9000`
//! means `PORT=9000`) and the check of README.md's table all come from it, so they cannot
//! drift from what the parser reads (a test compares the table with the parser's fields).

/// Which roles read a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readers {
    /// Masters and auxiliaries (and local mode).
    All,
    /// Masters and local mode.
    Master,
    /// Auxiliaries and local mode (its in-process auxiliaries).
    Auxiliary,
    /// Masters and auxiliaries of a cluster, not local mode (ZooKeeper, addresses others use).
    Cluster,
    /// Auxiliaries of a cluster only.
    ClusterAuxiliary,
    /// Local mode only.
    Local,
}

/// What `tiercache` runs, as the command line names it: one role, or both in one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `tiercache master`.
    Master,
    /// `tiercache auxiliary`.
    Auxiliary,
    /// `tiercache local`.
    Local,
}

impl Readers {
    /// Whether `role` reads the setting.
    pub fn include(self, mode: Mode) -> bool {
        use Readers::*;
        matches!(
            (self, mode),
            (All, _)
                | (Master, Mode::Master | Mode::Local)
                | (Auxiliary, Mode::Auxiliary | Mode::Local)
                | (Cluster, Mode::Master | Mode::Auxiliary)
                | (ClusterAuxiliary, Mode::Auxiliary)
                | (Local, Mode::Local)
        )
    }
}

/// How a setting may be given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Given {
    /// As a variable or as a flag (the flag wins).
    Either,
    /// Only as a variable: a secret, which a flag would show in `ps`, or one read before
    /// the flags are (`RUST_LOG`, `HOSTNAME`).
    EnvOnly,
}

/// One setting.
#[derive(Debug)]
pub struct Setting {
    /// The environment variable.
    pub var: &'static str,
    /// Who reads it.
    pub readers: Readers,
    /// Its default, as a person reads it.
    pub default: &'static str,
    /// What it means, in one line.
    pub meaning: &'static str,
    /// Flag or environment only.
    pub given: Given,
}

impl Setting {
    /// The flag that sets it: `PORT` → `port` (given as `--port`).
    pub fn flag(&self) -> Option<String> {
        (self.given == Given::Either).then(|| self.var.to_ascii_lowercase().replace('_', "-"))
    }
}

const fn s(var: &'static str, readers: Readers, default: &'static str, meaning: &'static str) -> Setting {
    Setting { var, readers, default, meaning, given: Given::Either }
}

const fn env_only(var: &'static str, readers: Readers, default: &'static str, meaning: &'static str) -> Setting {
    Setting { var, readers, default, meaning, given: Given::EnvOnly }
}

use Readers::{All, Auxiliary, Cluster, ClusterAuxiliary, Local, Master};

/// Every setting, in the order `--help` lists them.
pub const SETTINGS: &[Setting] = &[
    s(
        "PORT",
        All,
        "master and local 8000, auxiliary 3001",
        "HTTP port (master: client and admin API; auxiliary: /health, /metrics)",
    ),
    s("DATA_PORT", ClusterAuxiliary, "PORT + 1000", "port of the internal protocol masters use"),
    s("BIND_ADDR", All, "0.0.0.0; local 127.0.0.1", "address to listen on"),
    s("NODE_ID", Cluster, "ADVERTISE_HOST:PORT", "unique id of this node, shown in /nodes"),
    s("ADVERTISE_HOST", Cluster, "HOSTNAME", "how other nodes reach this one"),
    s("ZK_SERVERS", Cluster, "127.0.0.1:2181", "ZooKeeper connect string host:port[,host:port...]"),
    s("ZK_ROOT", Cluster, "/tiercache", "ZooKeeper root of this cluster (one cluster per root)"),
    s("ZK_SESSION_TIMEOUT_MS", Cluster, "6000", "how long ZooKeeper waits before it drops a silent node"),
    env_only("INTERNAL_TOKEN", Cluster, "required, at least 8 bytes", "shared secret of the master-auxiliary protocol"),
    s("VIRTUAL_NODES", Master, "512", "ring points per auxiliary (the first master stores it for the cluster)"),
    s("REPLICAS", Master, "2", "copies of each key (cluster configuration; change it with PUT /config)"),
    s("WRITE_QUORUM", Master, "1", "acknowledgements a write needs (at most REPLICAS)"),
    s("READ_QUORUM", Master, "1", "answers a read needs (at most REPLICAS)"),
    env_only(
        "ADMIN_TOKEN",
        Master,
        "unset: admin API open",
        "bearer token for /flush, /backup, /rebalance, PUT /config",
    ),
    s("KEY_MAX_BYTES", Master, "1024", "longest key, in bytes"),
    s("VALUE_MAX_BYTES", Master, "1048576", "largest value, in bytes (at most 32 MiB)"),
    s("DEFAULT_TTL", Master, "0", "seconds a write lives when it gives no expiry (0 = forever)"),
    s("REQUEST_TIMEOUT_MS", Master, "1000", "how long a master waits for one auxiliary"),
    s(
        "DATA_THREADS",
        Master,
        "the CPUs it may use",
        "threads serving clients (HTTP and RESP), one connection per auxiliary each",
    ),
    s("REDIS_PORT", Master, "6379", "Redis-protocol port (0 = off)"),
    s("MAX_CLIENTS", Master, "10000", "most RESP connections at once (lowered to the open-file limit - 128)"),
    env_only(
        "CLIENT_PASSWORD",
        Master,
        "unset: client API open",
        "password of RESP AUTH and of HTTP Authorization: Bearer",
    ),
    s("CACHE_SIZE", Auxiliary, "1000000", "most entries an auxiliary holds"),
    s("CACHE_MAX_BYTES", Auxiliary, "1073741824", "most bytes of keys and values an auxiliary holds"),
    s("BACKUP_DIR", Auxiliary, "./backup", "where snapshots are written and restored from"),
    s("BACKUP_INTERVAL", Auxiliary, "60", "seconds between snapshots (0 = off)"),
    s("LOCAL_PERSIST", Local, "1", "0: write no snapshot and restore none, so everything is forgotten at exit"),
    s("LOG_FORMAT", All, "text", "text or json"),
    env_only("HOSTNAME", Cluster, "the kernel's", "used only when ADVERTISE_HOST is unset"),
    env_only("RUST_LOG", All, "info", "log filter: info, debug, trace, or tiercache=debug and the like"),
];

/// The settings `role` reads.
pub fn of(mode: Mode) -> impl Iterator<Item = &'static Setting> {
    SETTINGS.iter().filter(move |s| s.readers.include(mode))
}

/// `vars` with the flags given laid over them (a flag wins over its variable).
pub fn overlay(
    vars: impl IntoIterator<Item = (String, String)>,
    flags: &[(&'static str, String)],
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> =
        vars.into_iter().filter(|(k, _)| !flags.iter().any(|(var, _)| *var == k.as_str())).collect();
    out.extend(flags.iter().map(|(var, v)| (var.to_string(), v.clone())));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_never_flags_and_flags_are_the_variables_lowercased() {
        for var in ["INTERNAL_TOKEN", "ADMIN_TOKEN", "CLIENT_PASSWORD"] {
            assert!(SETTINGS.iter().find(|s| s.var == var).unwrap().flag().is_none(), "{var}");
        }
        assert_eq!(SETTINGS[0].flag().as_deref(), Some("port"));
        assert_eq!(
            SETTINGS.iter().find(|s| s.var == "ZK_SESSION_TIMEOUT_MS").unwrap().flag().as_deref(),
            Some("zk-session-timeout-ms")
        );
    }

    #[test]
    fn a_flag_wins_over_its_variable() {
        let vars = vec![("PORT".to_string(), "1".to_string()), ("REPLICAS".to_string(), "2".to_string())];
        let mut got = overlay(vars, &[("PORT", "9000".to_string())]);
        got.sort();
        assert_eq!(got, [("PORT".to_string(), "9000".to_string()), ("REPLICAS".to_string(), "2".to_string())]);
    }

    #[test]
    fn each_role_reads_its_own() {
        let local: Vec<&str> = of(Mode::Local).map(|s| s.var).collect();
        assert!(local.contains(&"CACHE_SIZE") && local.contains(&"REDIS_PORT"));
        assert!(!local.contains(&"ZK_SERVERS") && !local.contains(&"DATA_PORT"));
        let aux: Vec<&str> = of(Mode::Auxiliary).map(|s| s.var).collect();
        assert!(aux.contains(&"DATA_PORT") && !aux.contains(&"REDIS_PORT"));
    }
}
