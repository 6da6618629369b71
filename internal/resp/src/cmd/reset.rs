//! RESET: forgets the connection's name, its transaction and watched keys, and goes back to
//! RESP2.

use super::{Ctx, Reply};
use bytes::Bytes;
use redis_protocol::resp2::types::BytesFrame;

pub(super) struct Reset;

impl Reset {
    pub(super) fn parse(_: &[Bytes]) -> Result<Self, Reply> {
        Ok(Reset)
    }

    pub(super) async fn run(self, ctx: &mut Ctx<'_>) -> Reply {
        ctx.session.name = None;
        ctx.session.resp3 = false;
        ctx.session.multi = None;
        ctx.session.multi_dirty = false;
        ctx.session.watched.clear();
        BytesFrame::SimpleString(Bytes::from_static(b"RESET"))
    }
}
