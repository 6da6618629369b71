//! COMMAND, COMMAND COUNT, COMMAND LIST, COMMAND INFO name…, COMMAND DOCS: all from the one
//! table ([`super::table`]), in Redis 7's shapes. Per-command documentation (`COMMAND DOCS`)
//! is not written yet: an empty answer, as for a command Redis does not document.

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

pub(super) async fn run(_: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let Some(sub) = args.get(1) else { return BytesFrame::Array(COMMANDS.iter().map(info).collect()) };
    let sub = sub.to_ascii_lowercase();
    match (sub.as_slice(), args.len()) {
        (b"count", 2) => int(COMMANDS.len() as i64),
        (b"list", 2) => {
            BytesFrame::Array(COMMANDS.iter().map(|s| bulk(Bytes::from_static(s.name.as_bytes()))).collect())
        }
        (b"info", _) => BytesFrame::Array(args[2..].iter().map(|n| lookup(n).map_or_else(nil, info)).collect()),
        (b"docs", _) => BytesFrame::Array(vec![]),
        (b"count" | b"list", _) => {
            err(format!("wrong number of arguments for 'command|{}' command", String::from_utf8_lossy(&sub)))
        }
        _ => err(format!("unknown subcommand '{}'. Try COMMAND HELP.", String::from_utf8_lossy(&args[1]))),
    }
}
