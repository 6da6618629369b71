//! FUNCTION: answered as a server with no functions loaded (tools call FUNCTION FLUSH or
//! FUNCTION LIST on connect); loading one is refused, since tiercache runs no scripts.

use super::{err, ok, Ctx, Reply};
use bytes::Bytes;
use redis_protocol::resp2::types::BytesFrame;

pub(super) async fn run(_: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let sub = args[1].to_ascii_lowercase();
    match sub.as_slice() {
        b"flush" if args.len() <= 3 => match args.get(2).map(|m| m.to_ascii_lowercase()) {
            None => ok(),
            Some(m) if m == b"async" || m == b"sync" => ok(),
            Some(_) => err("FUNCTION FLUSH only supports SYNC|ASYNC option"),
        },
        b"list" => BytesFrame::Array(vec![]),
        b"stats" if args.len() == 2 => BytesFrame::Array(vec![
            BytesFrame::BulkString(Bytes::from_static(b"running_script")),
            BytesFrame::Null,
            BytesFrame::BulkString(Bytes::from_static(b"engines")),
            BytesFrame::Array(vec![]),
        ]),
        b"dump" if args.len() == 2 => BytesFrame::Null,
        b"load" | b"restore" | b"delete" | b"kill" => {
            err("tiercache runs no functions or scripts: keep the logic in the client")
        }
        _ => err(format!("unknown subcommand '{}'. Try FUNCTION HELP.", String::from_utf8_lossy(&args[1]))),
    }
}
