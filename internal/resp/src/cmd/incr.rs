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
        let name = args[0].to_ascii_lowercase();
        let by = matches!(name.as_slice(), b"incrby" | b"decrby");
        if args.len() != if by { 3 } else { 2 } {
            return Err(super::err(format!(
                "wrong number of arguments for '{}' command",
                String::from_utf8_lossy(&name)
            )));
        }
        let n = if by { integer(&args[2])? } else { 1 };
        let delta = if name.starts_with(b"decr") {
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
