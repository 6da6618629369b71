//! SETNX key value: 1 when the key was absent and is now set, one step on its primary owner.

use super::{apply, check_key, check_value, default_ttl_ms, int, Ctx, Reply};
use bytes::Bytes;
use tiercache_master::protocol::{Condition, Op};

pub(super) async fn run(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    if let Err(e) = check_key(ctx, &args[1]).and_then(|()| check_value(ctx, &args[2])) {
        return e;
    }
    let op = Op::Set {
        value: args[2].clone(),
        ttl_ms: default_ttl_ms(ctx),
        keep_ttl: false,
        condition: Condition::IfAbsent,
    };
    match apply(ctx, &args[1], op).await {
        Ok((_, written)) => int(i64::from(written.is_some())),
        Err(e) => e,
    }
}
