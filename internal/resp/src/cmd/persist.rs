//! PERSIST key: removes the expiry; 1 when there was one. One step on the key's primary owner
//! that changes only the expiry, like EXPIRE.

use super::{apply, int, Ctx, Reply};
use bytes::Bytes;
use tiercache_master::protocol::Op;

pub(super) async fn run(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match apply(ctx, &args[1], Op::Expire { ttl_ms: 0 }).await {
        Ok((_, written)) => int(i64::from(written.is_some())),
        Err(e) => e,
    }
}
