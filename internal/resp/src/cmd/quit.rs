//! QUIT: OK, then the connection closes.

use super::{ok, Ctx, Reply};
use bytes::Bytes;

pub(super) struct Quit;

impl Quit {
    pub(super) fn parse(_: &[Bytes]) -> Result<Self, Reply> {
        Ok(Quit)
    }

    pub(super) async fn run(self, ctx: &mut Ctx<'_>) -> Reply {
        ctx.session.quit = true;
        ok()
    }
}
