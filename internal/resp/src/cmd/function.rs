//! FUNCTION: answered as a server with no functions loaded (tools call FUNCTION FLUSH or
//! FUNCTION LIST on connect); loading one is refused, since tiercache runs no scripts.

use super::{err, ok, Ctx, Reply};
use bytes::Bytes;
use redis_protocol::resp2::types::BytesFrame;

pub(super) enum Function {
    Flush,
    List,
    Stats,
    Dump,
    /// LOAD, RESTORE, DELETE, KILL.
    Refused,
}

impl Function {
    pub(super) fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        let sub = args[1].to_ascii_lowercase();
        Ok(match sub.as_slice() {
            b"flush" if args.len() <= 3 => match args.get(2).map(|m| m.to_ascii_lowercase()) {
                None => Function::Flush,
                Some(m) if m == b"async" || m == b"sync" => Function::Flush,
                Some(_) => return Err(err("FUNCTION FLUSH only supports SYNC|ASYNC option")),
            },
            b"list" => Function::List,
            b"stats" if args.len() == 2 => Function::Stats,
            b"dump" if args.len() == 2 => Function::Dump,
            b"load" | b"restore" | b"delete" | b"kill" => Function::Refused,
            _ => {
                return Err(err(format!(
                    "unknown subcommand '{}'. Try FUNCTION HELP.",
                    String::from_utf8_lossy(&args[1])
                )))
            }
        })
    }

    pub(super) async fn run(self, _: &mut Ctx<'_>) -> Reply {
        match self {
            Function::Flush => ok(),
            Function::List => BytesFrame::Array(vec![]),
            Function::Stats => BytesFrame::Array(vec![
                BytesFrame::BulkString(Bytes::from_static(b"running_script")),
                BytesFrame::Null,
                BytesFrame::BulkString(Bytes::from_static(b"engines")),
                BytesFrame::Array(vec![]),
            ]),
            Function::Dump => BytesFrame::Null,
            Function::Refused => err("tiercache runs no functions or scripts: keep the logic in the client"),
        }
    }
}
