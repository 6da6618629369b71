//! INCR, DECR, INCRBY key n, DECRBY key n: one step on the key's primary owner, then
//! replicated; the new value as an integer.

use super::{apply, int, integer, not_integer, Ctx, Reply};
use bytes::Bytes;
use tiercache_master::protocol::Op;

pub(super) async fn run(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let name = args[0].to_ascii_lowercase();
    let by = matches!(name.as_slice(), b"incrby" | b"decrby");
    if args.len() != if by { 3 } else { 2 } {
        return super::err(format!("wrong number of arguments for '{}' command", String::from_utf8_lossy(&name)));
    }
    let n = if by {
        match integer(&args[2]) {
            Ok(n) => n,
            Err(e) => return e,
        }
    } else {
        1
    };
    let delta = if name.starts_with(b"decr") {
        match n.checked_neg() {
            Some(d) => d,
            None => return super::err("decrement would overflow"),
        }
    } else {
        n
    };
    match apply(ctx, &args[1], Op::IncrBy(delta)).await {
        Ok((_, Some(v))) => std::str::from_utf8(&v).ok().and_then(|s| s.parse().ok()).map_or_else(not_integer, int),
        Ok((_, None)) => not_integer(),
        Err(e) => e,
    }
}
