//! PERSIST key: removes the expiry; 1 when there was one. One step on the key's primary owner
//! that changes only the expiry, like EXPIRE.

use super::{apply, int, Ctx, Reply};
use bytes::Bytes;
use tiercache_master::protocol::Op;

pub(super) struct Persist {
    key: Bytes,
}

impl Persist {
    pub(super) fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        Ok(Persist { key: args[1].clone() })
    }

    pub(super) async fn run(self, ctx: &mut Ctx<'_>) -> Reply {
        match apply(ctx, &self.key, Op::Expire { ttl_ms: 0 }).await {
            Ok((_, written)) => int(i64::from(written.is_some())),
            Err(e) => e,
        }
    }
}
