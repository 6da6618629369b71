//! QUIT: OK, then the connection closes.

use super::{ok, Ctx, Reply};
use bytes::Bytes;

pub(super) async fn run(ctx: &mut Ctx<'_>, _: &[Bytes]) -> Reply {
    ctx.session.quit = true;
    ok()
}
