//! DISCARD: drops the queued commands of a MULTI and forgets the watched keys.

use super::{err, ok, Ctx, Reply};
use bytes::Bytes;

pub(super) struct Discard;

impl Discard {
    pub(super) fn parse(_: &[Bytes]) -> Result<Self, Reply> {
        Ok(Discard)
    }

    pub(super) async fn run(self, ctx: &mut Ctx<'_>) -> Reply {
        if ctx.session.multi.take().is_none() {
            return err("DISCARD without MULTI");
        }
        ctx.session.multi_dirty = false;
        ctx.session.watched.clear();
        ok()
    }
}
