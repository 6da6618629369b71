//! DBSIZE: the keys of the whole cluster, each counted once (on its first owner).

use super::{cluster_error, int, Ctx, Reply};
use bytes::Bytes;

pub(super) async fn run(ctx: &mut Ctx<'_>, _: &[Bytes]) -> Reply {
    match ctx.state.router.dbsize().await {
        Ok(n) => int(n as i64),
        Err(e) => cluster_error(e),
    }
}
