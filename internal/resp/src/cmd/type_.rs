//! TYPE key: every value is a string.

use super::{read, Ctx, Reply};
use bytes::Bytes;
use redis_protocol::resp2::types::BytesFrame;

pub(super) async fn run(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match read(ctx, &args[1]).await {
        Ok(Some(_)) => BytesFrame::SimpleString(Bytes::from_static(b"string")),
        Ok(None) => BytesFrame::SimpleString(Bytes::from_static(b"none")),
        Err(e) => e,
    }
}
