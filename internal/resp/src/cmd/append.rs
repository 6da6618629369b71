//! APPEND key value: one step on the key's primary owner; the new length.

use super::{apply, check_key, check_value, int, Ctx, Reply};
use bytes::Bytes;
use tiercache_master::protocol::Op;

pub(super) struct Append {
    key: Bytes,
    tail: Bytes,
}

impl Append {
    pub(super) fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        Ok(Append { key: args[1].clone(), tail: args[2].clone() })
    }

    pub(super) async fn run(self, ctx: &mut Ctx<'_>) -> Reply {
        if let Err(e) = check_key(ctx, &self.key).and_then(|()| check_value(ctx, &self.tail)) {
            return e;
        }
        match apply(ctx, &self.key, Op::Append(self.tail)).await {
            Ok((_, v)) => int(v.map_or(0, |v| v.len() as i64)),
            Err(e) => e,
        }
    }
}
