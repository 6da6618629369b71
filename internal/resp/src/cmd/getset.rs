//! GETSET key value: SET … GET, as one step on the key's primary; the expiry is replaced
//! (by `DEFAULT_TTL`, none by default), as Redis discards it.

use super::{apply, bulk, check_key, check_value, default_ttl_ms, nil, Ctx, Reply};
use bytes::Bytes;
use tiercache_master::protocol::{Condition, Op};

pub(super) struct Getset {
    key: Bytes,
    value: Bytes,
}

impl Getset {
    pub(super) fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        Ok(Getset { key: args[1].clone(), value: args[2].clone() })
    }

    pub(super) async fn run(self, ctx: &mut Ctx<'_>) -> Reply {
        if let Err(e) = check_key(ctx, &self.key).and_then(|()| check_value(ctx, &self.value)) {
            return e;
        }
        let op =
            Op::Set { value: self.value, ttl_ms: default_ttl_ms(ctx), keep_ttl: false, condition: Condition::Always };
        match apply(ctx, &self.key, op).await {
            Ok((previous, _)) => previous.map_or_else(nil, bulk),
            Err(e) => e,
        }
    }
}
