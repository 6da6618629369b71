//! PING [message]: PONG, or the message back.

use super::{bulk, err, Ctx, Reply};
use bytes::Bytes;
use redis_protocol::resp2::types::BytesFrame;

pub(super) struct Ping {
    message: Option<Bytes>,
}

impl Ping {
    pub(super) fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        match args.len() {
            1 | 2 => Ok(Ping { message: args.get(1).cloned() }),
            _ => Err(err("wrong number of arguments for 'ping' command")),
        }
    }

    pub(super) async fn run(self, _: &mut Ctx<'_>) -> Reply {
        match self.message {
            None => BytesFrame::SimpleString(Bytes::from_static(b"PONG")),
            Some(m) => bulk(m),
        }
    }
}
