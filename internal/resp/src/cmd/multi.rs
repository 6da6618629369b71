//! MULTI: the connection's next commands are queued (each answered `+QUEUED`) until EXEC runs
//! them as one transaction or DISCARD drops them. A command refused while queueing (unknown,
//! wrong arity) makes EXEC answer `-EXECABORT`, as Redis does.

use super::{err, ok, Ctx, Reply};
use bytes::Bytes;

pub(super) struct Multi;

impl Multi {
    pub(super) fn parse(_: &[Bytes]) -> Result<Self, Reply> {
        Ok(Multi)
    }

    pub(super) async fn run(self, ctx: &mut Ctx<'_>) -> Reply {
        if ctx.session.multi.is_some() {
            return err("MULTI calls can not be nested");
        }
        ctx.session.multi = Some(Vec::new());
        ok()
    }
}
