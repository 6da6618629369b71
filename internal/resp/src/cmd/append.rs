//! APPEND key value: one step on the key's primary owner; the new length.

use super::{apply, check_key, check_value, int, Ctx, Reply};
use bytes::Bytes;
use tiercache_master::protocol::Op;

pub(super) async fn run(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    if let Err(e) = check_key(ctx, &args[1]).and_then(|()| check_value(ctx, &args[2])) {
        return e;
    }
    match apply(ctx, &args[1], Op::Append(args[2].clone())).await {
        Ok((_, v)) => int(v.map_or(0, |v| v.len() as i64)),
        Err(e) => e,
    }
}
