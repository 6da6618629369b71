//! `tiercache`: one binary, three roles. Thin: read configuration from the environment, start
//! tracing, run the role until SIGTERM/SIGINT.

use clap::{Arg, CommandFactory, FromArgMatches, Parser, Subcommand};
use std::process::ExitCode;
use tiercache_node::config::settings::{self, Mode};
use tiercache_node::config::LogFormat;

/// This build: the crate version and the commit (build.rs).
const BUILD: tiercache_node::Build =
    tiercache_node::Build { version: env!("CARGO_PKG_VERSION"), commit: env!("TIERCACHE_COMMIT") };

/// A distributed in-memory cache. Every setting is an environment variable or, the same name
/// as a flag, an option of the role (`tiercache master --help` lists them; a flag wins).
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

/// The role's settings as options, from the one table: `--port 9000` sets `PORT`; secrets
/// and `RUST_LOG` are listed after the options, as variables only.
fn with_settings(cmd: clap::Command, mode: Mode) -> clap::Command {
    let mut env_only = Vec::new();
    let mut cmd = cmd;
    for s in settings::of(mode) {
        let help = format!("{}  [env: {}] [default: {}]", s.meaning, s.var, s.default);
        match s.flag() {
            // Built once at start: leaking the few names is what clap's &'static str asks.
            Some(flag) => {
                let flag: &'static str = Box::leak(flag.into_boxed_str());
                cmd = cmd.arg(Arg::new(s.var).long(flag).value_name(s.var).help(help));
            }
            None => env_only.push(format!("  {:<16} {help}", s.var)),
        }
    }
    cmd.after_help(format!("Environment only (a secret on a command line is shown by ps):\n{}", env_only.join("\n")))
}

/// Every setting with the roles that read it, for `tiercache --help`.
fn all_settings() -> String {
    let mut out = String::from("Settings (environment variables; `tiercache <role> --help` shows them as flags):\n");
    for s in settings::SETTINGS {
        let roles: Vec<&str> = [(Mode::Master, "master"), (Mode::Auxiliary, "auxiliary"), (Mode::Local, "local")]
            .into_iter()
            .filter(|(r, _)| s.readers.include(*r))
            .map(|(_, n)| n)
            .collect();
        out += &format!("  {:<22} {:<24} {}  [default: {}]\n", s.var, roles.join(","), s.meaning, s.default);
    }
    out
}

fn main() -> ExitCode {
    let command = Cli::command()
        .after_help(all_settings())
        .mut_subcommand("master", |c| with_settings(c, Mode::Master))
        .mut_subcommand("auxiliary", |c| with_settings(c, Mode::Auxiliary))
        .mut_subcommand("local", |c| with_settings(c, Mode::Local));
    let matches = command.get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    let mode = match cli.role {
        RoleCmd::Master => Mode::Master,
        RoleCmd::Auxiliary => Mode::Auxiliary,
        RoleCmd::Local => Mode::Local,
    };
    // The flags given, laid over the environment, go through the one parser.
    let flags: Vec<(&'static str, String)> = matches
        .subcommand()
        .map(|(_, sub)| {
            settings::of(mode)
                .filter(|s| s.flag().is_some())
                .filter_map(|s| sub.get_one::<String>(s.var).map(|v| (s.var, v.clone())))
                .collect()
        })
        .unwrap_or_default();
    let vars = settings::overlay(std::env::vars(), &flags);
    // Validate every variable before any runtime starts or port opens.
    let parsed = match cli.role {
        RoleCmd::Master => tiercache_node::config::master_from(vars).map(Parsed::Master),
        RoleCmd::Auxiliary => tiercache_node::config::auxiliary_from(vars).map(Parsed::Auxiliary),
        RoleCmd::Local => tiercache_node::config::local_from(vars).map(|(m, a)| Parsed::Local(m, a)),
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
