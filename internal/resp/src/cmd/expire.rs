//! EXPIRE key seconds, PEXPIRE key ms, EXPIREAT key unix-seconds, PEXPIREAT key unix-ms:
//! 1 when the key exists and got the expiry, 0 otherwise; a time in the past deletes the key.
//! One step on the key's primary owner that changes only the expiry (the value keeps its
//! version, so a write racing it is never undone).

use super::{apply, delete, err, int, integer, now_ms, Ctx, Reply};
use bytes::Bytes;
use tiercache_master::protocol::Op;

pub(super) struct Expire {
    key: Bytes,
    /// When it expires, in Unix ms.
    at_ms: i128,
}

impl Expire {
    pub(super) fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        let name = args[0].to_ascii_lowercase();
        let n = integer(&args[2])?;
        let at_ms: i128 = match name.as_slice() {
            b"expire" => i128::from(now_ms()) + i128::from(n) * 1000,
            b"pexpire" => i128::from(now_ms()) + i128::from(n),
            b"expireat" => i128::from(n) * 1000,
            _ => i128::from(n),
        };
        if at_ms - i128::from(now_ms()) > i128::from(u64::MAX >> 2) {
            return Err(err(format!("invalid expire time in '{}' command", String::from_utf8_lossy(&name))));
        }
        Ok(Expire { key: args[1].clone(), at_ms })
    }

    pub(super) async fn run(self, ctx: &mut Ctx<'_>) -> Reply {
        let ttl_ms = self.at_ms - i128::from(now_ms());
        let key = &self.key;
        if ttl_ms <= 0 {
            return match delete(ctx, key).await {
                Ok(existed) => int(i64::from(existed)),
                Err(e) => e,
            };
        }
        match apply(ctx, key, Op::Expire { ttl_ms: ttl_ms as u64 }).await {
            // An existing key always gets the expiry (the same one counts too).
            Ok((previous, _)) => int(i64::from(previous.is_some())),
            Err(e) => e,
        }
    }
}
