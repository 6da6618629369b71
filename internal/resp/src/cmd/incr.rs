//! INCR, DECR, INCRBY key n, DECRBY key n: one step on the key's primary owner, then
//! replicated; the new value as an integer.

use super::{apply, int, integer, not_integer, Ctx, Reply};
use bytes::Bytes;
use tiercache_master::protocol::Op;

pub(super) struct Incr {
    key: Bytes,
    delta: i64,
}

impl Incr {
    pub(super) fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        // The table's arities tell INCR/DECR (2) from INCRBY/DECRBY (3).
        let n = if args.len() == 3 { integer(&args[2])? } else { 1 };
        let delta = if args[0].len() >= 4 && args[0][..4].eq_ignore_ascii_case(b"decr") {
            n.checked_neg().ok_or_else(|| super::err("decrement would overflow"))?
        } else {
            n
        };
        Ok(Incr { key: args[1].clone(), delta })
    }

    pub(super) async fn run(self, ctx: &mut Ctx<'_>) -> Reply {
        match apply(ctx, &self.key, Op::IncrBy(self.delta)).await {
            Ok((_, Some(v))) => std::str::from_utf8(&v).ok().and_then(|s| s.parse().ok()).map_or_else(not_integer, int),
            Ok((_, None)) => not_integer(),
            Err(e) => e,
        }
    }
}
