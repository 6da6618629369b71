//! `tiercache`: one binary, three roles. Thin: read configuration from the environment, start
//! tracing, run the role until SIGTERM/SIGINT.

use clap::{Parser, Subcommand};
use std::process::ExitCode;
use tiercache_node::config::LogFormat;

/// This build: the crate version and the commit (build.rs).
const BUILD: tiercache_node::Build =
    tiercache_node::Build { version: env!("CARGO_PKG_VERSION"), commit: env!("TIERCACHE_COMMIT") };

/// A distributed in-memory cache. Configured only by environment variables (see README).
#[derive(Parser)]
#[command(version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("TIERCACHE_COMMIT"), ")"), about)]
struct Cli {
    #[command(subcommand)]
    role: RoleCmd,
}

#[derive(Subcommand)]
enum RoleCmd {
    /// Client-facing HTTP master (registers in ZooKeeper, routes keys to auxiliaries).
    Master,
    /// Data-holding auxiliary (LRU with TTL, snapshots, transfers).
    Auxiliary,
    /// One master and three auxiliaries in this process, no ZooKeeper: for trying it out.
    Local,
}

fn init_tracing(format: LogFormat) {
    let filter = match std::env::var("RUST_LOG") {
        Err(_) => tracing_subscriber::EnvFilter::new("info"),
        // Said once on stderr: a bad filter must not silence every line without a word (a
        // directive that is neither a level nor a module path parses as a target nothing
        // logs to).
        Ok(v) => {
            match tracing_subscriber::EnvFilter::try_new(&v) {
                Ok(f) if v.split(',').all(plausible_directive) => f,
                Ok(_) => {
                    eprintln!("tiercache: RUST_LOG={v:?} names no level or module (e.g. info, tiercache=debug); logging at info");
                    tracing_subscriber::EnvFilter::new("info")
                }
                Err(e) => {
                    eprintln!("tiercache: RUST_LOG={v:?} is not a log filter ({e}); logging at info");
                    tracing_subscriber::EnvFilter::new("info")
                }
            }
        }
    };
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_ansi(ansi);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// A `RUST_LOG` directive that can match something: a level, or a module path with an
/// optional `=level` (span and field filters included).
fn plausible_directive(d: &str) -> bool {
    let target = d.trim().split('=').next().unwrap_or("");
    !target.is_empty() && target.chars().all(|c| c.is_ascii_alphanumeric() || "_:-[]{}.\"* ".contains(c))
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutdown signal received");
}

fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("tiercache: {e}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Validate every variable before any runtime starts or port opens.
    let parsed = match cli.role {
        RoleCmd::Master => tiercache_node::config::master_from(std::env::vars()).map(Parsed::Master),
        RoleCmd::Auxiliary => tiercache_node::config::auxiliary_from(std::env::vars()).map(Parsed::Auxiliary),
        RoleCmd::Local => tiercache_node::config::local_from(std::env::vars()).map(|(m, a)| Parsed::Local(m, a)),
    };
    let parsed = match parsed {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    init_tracing(parsed.log_format());
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("tiercache").build() {
        Ok(rt) => rt,
        Err(e) => return fail(e),
    };
    let result = rt.block_on(async move {
        match parsed {
            Parsed::Master(c) => tiercache_node::run_master(c, BUILD, shutdown_signal()).await,
            Parsed::Auxiliary(c) => tiercache_node::run_auxiliary(c, BUILD, shutdown_signal()).await,
            Parsed::Local(m, a) => tiercache_node::run_local(m, a, BUILD, shutdown_signal()).await,
        }
    });
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

#[allow(clippy::large_enum_variant)] // built once at start
/// The configuration of the role to run.
enum Parsed {
    Master(tiercache_node::config::MasterConfig),
    Auxiliary(tiercache_node::config::AuxiliaryConfig),
    Local(tiercache_node::config::MasterConfig, tiercache_node::config::AuxiliaryConfig),
}

impl Parsed {
    fn log_format(&self) -> LogFormat {
        match self {
            Parsed::Master(c) | Parsed::Local(c, _) => c.common.log_format,
            Parsed::Auxiliary(c) => c.common.log_format,
        }
    }
}
