//! FLUSHALL [ASYNC | SYNC] and FLUSHDB: every key of the cluster written before now is deleted
//! (on every auxiliary; a write after it survives). With `ADMIN_TOKEN` set, only a connection
//! authenticated as `admin` may.

use super::{cluster_error, ok, syntax_error, Ctx, Reply};
use crate::Identity;
use bytes::Bytes;
use redis_protocol::resp2::types::BytesFrame;

pub(super) struct Flushall {
    /// FLUSHDB rather than FLUSHALL, for the error that names it.
    db: bool,
}

impl Flushall {
    pub(super) fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        if args.len() > 2
            || args.get(1).is_some_and(|m| !m.eq_ignore_ascii_case(b"async") && !m.eq_ignore_ascii_case(b"sync"))
        {
            return Err(syntax_error());
        }
        Ok(Flushall { db: args[0].eq_ignore_ascii_case(b"flushdb") })
    }

    pub(super) async fn run(self, ctx: &mut Ctx<'_>) -> Reply {
        if ctx.state.admin_token.is_some() && ctx.session.identity != Identity::Admin {
            let name = if self.db { "flushdb" } else { "flushall" };
            return BytesFrame::Error(
                format!("NOPERM User default has no permissions to run the '{name}' command").into(),
            );
        }
        match ctx.state.router.flush().await {
            Ok(_) => ok(),
            Err(e) => cluster_error(e),
        }
    }
}
