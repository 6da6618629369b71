//! TTL key and PTTL key: remaining time to live; -1 without one, -2 when the key is absent.

use super::{int, read, Ctx, Reply};
use bytes::Bytes;

pub(super) struct Ttl {
    key: Bytes,
    millis: bool,
}

impl Ttl {
    pub(super) fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        Ok(Ttl { key: args[1].clone(), millis: args[0].eq_ignore_ascii_case(b"pttl") })
    }

    pub(super) async fn run(self, ctx: &mut Ctx<'_>) -> Reply {
        match read(ctx, &self.key).await {
            Ok(None) => int(-2),
            Ok(Some((_, 0))) => int(-1),
            // Rounded like Redis: TTL is the nearest whole second.
            Ok(Some((_, ms))) => int(if self.millis { ms as i64 } else { (ms as i64 + 500) / 1000 }),
            Err(e) => e,
        }
    }
}
