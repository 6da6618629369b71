//! DISCARD: drops the queued commands of a MULTI and forgets the watched keys.

use super::{err, ok, Ctx, Reply};
use bytes::Bytes;

pub(super) async fn run(ctx: &mut Ctx<'_>, _: &[Bytes]) -> Reply {
    if ctx.session.multi.take().is_none() {
        return err("DISCARD without MULTI");
    }
    ctx.session.multi_dirty = false;
    ctx.session.watched.clear();
    ok()
}
