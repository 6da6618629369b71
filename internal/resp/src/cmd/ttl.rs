//! TTL key and PTTL key: remaining time to live; -1 without one, -2 when the key is absent.

use super::{int, read, Ctx, Reply};
use bytes::Bytes;

pub(super) async fn run(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let millis = args[0].eq_ignore_ascii_case(b"pttl");
    match read(ctx, &args[1]).await {
        Ok(None) => int(-2),
        Ok(Some((_, 0))) => int(-1),
        // Rounded like Redis: TTL is the nearest whole second.
        Ok(Some((_, ms))) => int(if millis { ms as i64 } else { (ms as i64 + 500) / 1000 }),
        Err(e) => e,
    }
}
