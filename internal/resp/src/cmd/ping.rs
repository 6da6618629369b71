//! PING [message]: PONG, or the message back.

use super::{bulk, err, Ctx, Reply};
use bytes::Bytes;
use redis_protocol::resp2::types::BytesFrame;

pub(super) async fn run(_: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match args.len() {
        1 => BytesFrame::SimpleString(Bytes::from_static(b"PONG")),
        2 => bulk(args[1].clone()),
        _ => err("wrong number of arguments for 'ping' command"),
    }
}
