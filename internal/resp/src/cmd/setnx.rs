//! SETNX key value: 1 when the key was absent and is now set, one step on its primary owner.

use super::{apply, check_key, check_value, default_ttl_ms, int, Ctx, Reply};
use bytes::Bytes;
use tiercache_master::protocol::{Condition, Op};

pub(super) struct Setnx {
    key: Bytes,
    value: Bytes,
}

impl Setnx {
    pub(super) fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        Ok(Setnx { key: args[1].clone(), value: args[2].clone() })
    }

    pub(super) async fn run(self, ctx: &mut Ctx<'_>) -> Reply {
        if let Err(e) = check_key(ctx, &self.key).and_then(|()| check_value(ctx, &self.value)) {
            return e;
        }
        let op =
            Op::Set { value: self.value, ttl_ms: default_ttl_ms(ctx), keep_ttl: false, condition: Condition::IfAbsent };
        match apply(ctx, &self.key, op).await {
            Ok((_, written)) => int(i64::from(written.is_some())),
            Err(e) => e,
        }
    }
}
