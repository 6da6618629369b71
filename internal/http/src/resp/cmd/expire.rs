//! EXPIRE key seconds, PEXPIRE key ms, EXPIREAT key unix-seconds, PEXPIREAT key unix-ms:
//! 1 when the key exists and got the expiry, 0 otherwise; a time in the past deletes the key.
//! The value is read and written back with the new expiry (not one atomic step: a write
//! racing it may lose its value or its expiry).

use super::{delete, err, int, integer, now_ms, read, write, Ctx, Reply};
use bytes::Bytes;

pub(super) const ARITY: i32 = 3;

pub(super) async fn run(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let name = args[0].to_ascii_lowercase();
    let n = match integer(&args[2]) {
        Ok(n) => n,
        Err(e) => return e,
    };
    let at_ms: i128 = match name.as_slice() {
        b"expire" => i128::from(now_ms()) + i128::from(n) * 1000,
        b"pexpire" => i128::from(now_ms()) + i128::from(n),
        b"expireat" => i128::from(n) * 1000,
        _ => i128::from(n),
    };
    let ttl_ms = at_ms - i128::from(now_ms());
    if ttl_ms > i128::from(u64::MAX >> 2) {
        return err(format!("invalid expire time in '{}' command", String::from_utf8_lossy(&name)));
    }
    let key = &args[1];
    if ttl_ms <= 0 {
        return match delete(ctx, key).await {
            Ok(existed) => int(i64::from(existed)),
            Err(e) => e,
        };
    }
    match read(ctx, key).await {
        Ok(None) => int(0),
        Ok(Some((value, _))) => match write(ctx, key, value, ttl_ms as u64).await {
            Ok(()) => int(1),
            Err(e) => e,
        },
        Err(e) => e,
    }
}
