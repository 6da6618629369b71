//! COMMAND, COMMAND COUNT, COMMAND LIST, COMMAND INFO name…, COMMAND DOCS [name…]: all from
//! the one table ([`super::table`]) and its documentation ([`super::docs`]), in Redis 7's
//! shapes, so redis-cli's argument hints and `help SET` work.

use super::docs::{self, Arg, Doc, Kind};
use super::table::{lookup, Spec, COMMANDS};
use super::{bulk, err, int, nil, Ctx, Reply};
use bytes::Bytes;
use redis_protocol::resp2::types::BytesFrame;

fn status(s: &str) -> Reply {
    BytesFrame::SimpleString(Bytes::copy_from_slice(s.as_bytes()))
}

/// One command's entry: name, arity, flags, first key, last key, step, ACL categories, tips,
/// key specifications, subcommands.
fn info(s: &Spec) -> Reply {
    BytesFrame::Array(vec![
        bulk(Bytes::from_static(s.name.as_bytes())),
        int(i64::from(s.arity)),
        BytesFrame::Array(s.flags.iter().map(|f| status(f)).collect()),
        int(i64::from(s.keys.0)),
        int(i64::from(s.keys.1)),
        int(i64::from(s.keys.2)),
        BytesFrame::Array(vec![]),
        BytesFrame::Array(vec![]),
        BytesFrame::Array(vec![]),
        BytesFrame::Array(vec![]),
    ])
}

pub(super) enum Commands {
    /// COMMAND: every command's entry.
    All,
    Count,
    List,
    /// COMMAND INFO name…
    Info(Vec<Bytes>),
    /// COMMAND DOCS [name…]; empty: all.
    Docs(Vec<Bytes>),
}

impl Commands {
    pub(super) fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        let Some(sub) = args.get(1) else { return Ok(Commands::All) };
        let sub = sub.to_ascii_lowercase();
        Ok(match (sub.as_slice(), args.len()) {
            (b"count", 2) => Commands::Count,
            (b"list", 2) => Commands::List,
            (b"info", _) => Commands::Info(args[2..].to_vec()),
            (b"docs", _) => Commands::Docs(args[2..].to_vec()),
            (b"count" | b"list", _) => {
                return Err(err(format!(
                    "wrong number of arguments for 'command|{}' command",
                    String::from_utf8_lossy(&sub)
                )))
            }
            _ => {
                return Err(err(format!(
                    "unknown subcommand '{}'. Try COMMAND HELP.",
                    String::from_utf8_lossy(&args[1])
                )))
            }
        })
    }

    pub(super) async fn run(self, _: &mut Ctx<'_>) -> Reply {
        match self {
            Commands::All => BytesFrame::Array(COMMANDS.iter().map(info).collect()),
            Commands::Count => int(COMMANDS.len() as i64),
            Commands::List => {
                BytesFrame::Array(COMMANDS.iter().map(|s| bulk(Bytes::from_static(s.name.as_bytes()))).collect())
            }
            Commands::Info(names) => {
                BytesFrame::Array(names.iter().map(|n| lookup(n).map_or_else(nil, info)).collect())
            }
            Commands::Docs(names) => {
                let wanted: Vec<&'static Spec> = if names.is_empty() {
                    COMMANDS.iter().collect()
                } else {
                    names.iter().filter_map(|n| lookup(n)).collect()
                };
                let mut out = Vec::new();
                for spec in wanted {
                    if let Some(d) = docs::of(spec.name) {
                        out.push(bulk(Bytes::from_static(spec.name.as_bytes())));
                        out.push(doc(d));
                    }
                }
                BytesFrame::Array(out)
            }
        }
    }
}

fn text(s: &'static str) -> Reply {
    bulk(Bytes::from_static(s.as_bytes()))
}

/// One command's documentation: Redis 7's field-value list (a map in RESP3).
fn doc(d: &Doc) -> Reply {
    let mut fields = vec![
        text("summary"),
        text(d.summary),
        text("since"),
        text(d.since),
        text("group"),
        text(d.group),
        text("complexity"),
        text(d.complexity),
    ];
    if !d.args.is_empty() {
        fields.push(text("arguments"));
        fields.push(BytesFrame::Array(d.args.iter().map(argument).collect()));
    }
    BytesFrame::Array(fields)
}

fn argument(a: &Arg) -> Reply {
    let (kind, nested): (&'static str, &'static [Arg]) = match a.kind {
        Kind::String => ("string", &[]),
        Kind::Integer => ("integer", &[]),
        Kind::Double => ("double", &[]),
        Kind::Key => ("key", &[]),
        Kind::Pattern => ("pattern", &[]),
        Kind::UnixTime => ("unix-time", &[]),
        Kind::PureToken => ("pure-token", &[]),
        Kind::Oneof(n) => ("oneof", n),
        Kind::Block(n) => ("block", n),
    };
    let mut fields = vec![text("name"), text(a.name), text("type"), text(kind)];
    if kind == "key" {
        fields.extend([text("key_spec_index"), int(0)]);
    }
    if let Some(t) = a.token {
        fields.extend([text("token"), text(t)]);
    }
    let flags: Vec<Reply> = [(a.optional, "optional"), (a.multiple, "multiple")]
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, f)| status(f))
        .collect();
    if !flags.is_empty() {
        fields.extend([text("flags"), BytesFrame::Array(flags)]);
    }
    if !nested.is_empty() {
        fields.extend([text("arguments"), BytesFrame::Array(nested.iter().map(argument).collect())]);
    }
    BytesFrame::Array(fields)
}
