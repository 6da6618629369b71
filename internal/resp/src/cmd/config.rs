//! CONFIG GET pattern…, CONFIG SET (refused: tiercache is configured by its environment, read
//! once at start), CONFIG RESETSTAT, CONFIG REWRITE (no file to rewrite), CONFIG HELP. The
//! parameters are Redis's names for what this cluster does, so tools that read them on
//! connect (test harnesses, GUIs, client libraries) see true values.

use super::{bulk, err, ok, Ctx, Reply};
use bytes::Bytes;
use redis_protocol::resp2::types::BytesFrame;

/// Redis's parameters that mean something here, with this master's values.
fn parameters(ctx: &Ctx<'_>) -> Vec<(&'static str, String)> {
    let limits = &ctx.state.limits;
    vec![
        ("appendonly", "no".into()),
        ("bind", ctx.front.bind.clone()),
        ("cluster-enabled", "no".into()),
        ("databases", "1".into()),
        // Each auxiliary bounds its own memory (CACHE_MAX_BYTES); the master holds no data.
        ("maxmemory", "0".into()),
        ("maxmemory-policy", "allkeys-lru".into()),
        ("maxclients", ctx.front.max_clients.to_string()),
        ("port", ctx.front.port.to_string()),
        ("proto-max-bulk-len", limits.value_max_bytes.max(limits.key_max_bytes).to_string()),
        ("protected-mode", if ctx.state.client_password.is_some() { "no" } else { "yes" }.into()),
        // Never shown, as a secret set in the environment.
        ("requirepass", String::new()),
        ("save", String::new()),
        ("timeout", crate::IDLE_TIMEOUT.as_secs().to_string()),
    ]
}

pub(super) enum Config {
    /// CONFIG GET pattern…, the patterns lowercased.
    Get(Vec<Bytes>),
    /// CONFIG SET name value…, the first name lowercased.
    Set(String),
    Resetstat,
    Rewrite,
    Help,
}

impl Config {
    pub(super) fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        let sub = args[1].to_ascii_lowercase();
        Ok(match sub.as_slice() {
            b"get" if args.len() > 2 => {
                Config::Get(args[2..].iter().map(|p| Bytes::from(p.to_ascii_lowercase())).collect())
            }
            b"set" if args.len() > 3 && args.len().is_multiple_of(2) => {
                Config::Set(String::from_utf8_lossy(&args[2]).to_lowercase())
            }
            b"resetstat" if args.len() == 2 => Config::Resetstat,
            b"rewrite" if args.len() == 2 => Config::Rewrite,
            b"help" if args.len() == 2 => Config::Help,
            b"get" | b"set" | b"resetstat" | b"rewrite" | b"help" => {
                return Err(err(format!(
                    "wrong number of arguments for 'config|{}' command",
                    String::from_utf8_lossy(&sub)
                )))
            }
            _ => {
                return Err(err(format!(
                    "unknown subcommand '{}'. Try CONFIG HELP.",
                    String::from_utf8_lossy(&args[1])
                )))
            }
        })
    }

    pub(super) async fn run(self, ctx: &mut Ctx<'_>) -> Reply {
        match self {
            Config::Get(patterns) => {
                let mut out = Vec::new();
                for (name, value) in parameters(ctx) {
                    if patterns.iter().any(|p| tiercache_master::protocol::glob::matches(p, name.as_bytes())) {
                        out.push(bulk(Bytes::from_static(name.as_bytes())));
                        out.push(bulk(Bytes::from(value)));
                    }
                }
                BytesFrame::Array(out)
            }
            Config::Set(name) => {
                if parameters(ctx).iter().any(|(n, _)| *n == name) {
                    err(format!(
                        "CONFIG SET failed (possibly related to argument '{name}') - can't set immutable config \
                         (tiercache reads its settings from the environment at start)"
                    ))
                } else {
                    err(format!("Unknown option or number of arguments for CONFIG SET - '{name}'"))
                }
            }
            // The counters INFO shows are Prometheus counters, which never go back; RESETSTAT
            // is accepted so tools that call it before a run go on.
            Config::Resetstat => ok(),
            Config::Rewrite => err("The server is running without a config file"),
            Config::Help => BytesFrame::Array(
                [
                    "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                    "GET <pattern>",
                    "    Return parameters matching the glob-like <pattern> and their values.",
                    "SET <directive> <value>",
                    "    Refused: tiercache is configured by its environment at start.",
                    "RESETSTAT",
                    "    Accepted; the statistics are Prometheus counters and keep counting.",
                ]
                .iter()
                .map(|l| BytesFrame::SimpleString(Bytes::from_static(l.as_bytes())))
                .collect(),
            ),
        }
    }
}
