//! GETDEL key: the value, and a delete, as one step on the key's primary owner.

use super::{apply, bulk, nil, Ctx, Reply};
use bytes::Bytes;
use tiercache_master::protocol::Op;

pub(super) struct Getdel {
    key: Bytes,
}

impl Getdel {
    pub(super) fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        Ok(Getdel { key: args[1].clone() })
    }

    pub(super) async fn run(self, ctx: &mut Ctx<'_>) -> Reply {
        match apply(ctx, &self.key, Op::GetDel).await {
            Ok((previous, _)) => previous.map_or_else(nil, bulk),
            Err(e) => e,
        }
    }
}
