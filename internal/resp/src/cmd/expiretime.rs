//! EXPIRETIME key and PEXPIRETIME key: the Unix time (seconds, milliseconds) at which the key
//! expires; -1 without an expiry, -2 when the key is absent.

use super::{int, now_ms, read, Ctx, Reply};
use bytes::Bytes;

pub(super) struct Expiretime {
    key: Bytes,
    millis: bool,
}

impl Expiretime {
    pub(super) fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        Ok(Expiretime { key: args[1].clone(), millis: args[0].eq_ignore_ascii_case(b"pexpiretime") })
    }

    pub(super) async fn run(self, ctx: &mut Ctx<'_>) -> Reply {
        match read(ctx, &self.key).await {
            Ok(None) => int(-2),
            Ok(Some((_, 0))) => int(-1),
            Ok(Some((_, ttl_ms))) => {
                let at = now_ms() + ttl_ms;
                int(if self.millis { at as i64 } else { (at / 1000) as i64 })
            }
            Err(e) => e,
        }
    }
}
