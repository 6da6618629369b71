//! TYPE key: every value is a string.

use super::{read, Ctx, Reply};
use bytes::Bytes;
use redis_protocol::resp2::types::BytesFrame;

pub(super) struct Type {
    key: Bytes,
}

impl Type {
    pub(super) fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        Ok(Type { key: args[1].clone() })
    }

    pub(super) async fn run(self, ctx: &mut Ctx<'_>) -> Reply {
        match read(ctx, &self.key).await {
            Ok(Some(_)) => BytesFrame::SimpleString(Bytes::from_static(b"string")),
            Ok(None) => BytesFrame::SimpleString(Bytes::from_static(b"none")),
            Err(e) => e,
        }
    }
}
