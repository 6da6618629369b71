//! GETDEL key: the value, and a delete, as one step on the key's primary owner.

use super::{apply, bulk, nil, Ctx, Reply};
use bytes::Bytes;
use tiercache_master::protocol::Op;

pub(super) async fn run(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match apply(ctx, &args[1], Op::GetDel).await {
        Ok((previous, _)) => previous.map_or_else(nil, bulk),
        Err(e) => e,
    }
}
