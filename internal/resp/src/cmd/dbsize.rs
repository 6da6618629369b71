//! DBSIZE: the keys of the whole cluster, each counted once (on its first owner).

use super::{cluster_error, int, Ctx, Reply};
use bytes::Bytes;

pub(super) struct Dbsize;

impl Dbsize {
    pub(super) fn parse(_: &[Bytes]) -> Result<Self, Reply> {
        Ok(Dbsize)
    }

    pub(super) async fn run(self, ctx: &mut Ctx<'_>) -> Reply {
        match ctx.state.router.dbsize().await {
            Ok(n) => int(n as i64),
            Err(e) => cluster_error(e),
        }
    }
}
