//! GETSET key value: SET … GET, as one step on the key's primary; the expiry is replaced
//! (by `DEFAULT_TTL`, none by default), as Redis discards it.

use super::{apply, bulk, check_key, check_value, default_ttl_ms, nil, Ctx, Reply};
use bytes::Bytes;
use tiercache_master::protocol::{Condition, Op};

pub(super) async fn run(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let (key, value) = (&args[1], &args[2]);
    if let Err(e) = check_key(ctx, key).and_then(|()| check_value(ctx, value)) {
        return e;
    }
    let op =
        Op::Set { value: value.clone(), ttl_ms: default_ttl_ms(ctx), keep_ttl: false, condition: Condition::Always };
    match apply(ctx, key, op).await {
        Ok((previous, _)) => previous.map_or_else(nil, bulk),
        Err(e) => e,
    }
}
