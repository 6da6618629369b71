//! SET key value [EX s | PX ms | EXAT t | PXAT t | KEEPTTL]. NX, XX and GET need one atomic
//! step on the key's primary owner, which the cluster does not offer yet: they are refused
//! rather than emulated with a race.

use super::{check_key, check_value, default_ttl_ms, err, integer, now_ms, ok, read, syntax_error, write, Ctx, Reply};
use bytes::Bytes;

pub(super) const ARITY: i32 = -3;

/// What the expiry options ask for.
enum Expiry {
    Default,
    InMs(u64),
    Keep,
}

/// The expiry of `SET` options, or the reply to send instead.
fn parse(options: &[Bytes]) -> Result<Expiry, Reply> {
    let mut expiry = None;
    let mut it = options.iter();
    while let Some(opt) = it.next() {
        let opt = opt.to_ascii_uppercase();
        let when = match opt.as_slice() {
            b"NX" | b"XX" | b"GET" => {
                return Err(err(format!(
                    "SET {} is not supported yet: it needs one atomic step on the key's primary owner",
                    String::from_utf8_lossy(&opt)
                )))
            }
            b"KEEPTTL" => Expiry::Keep,
            b"EX" | b"PX" | b"EXAT" | b"PXAT" => {
                let n = integer(it.next().ok_or_else(syntax_error)?)?;
                if n <= 0 {
                    return Err(err("invalid expire time in 'set' command"));
                }
                let n = n as u64;
                let ms = match opt.as_slice() {
                    b"EX" => n.saturating_mul(1000),
                    b"PX" => n,
                    b"EXAT" => n.saturating_mul(1000).saturating_sub(now_ms()).max(1),
                    _ => n.saturating_sub(now_ms()).max(1),
                };
                Expiry::InMs(ms)
            }
            _ => return Err(syntax_error()),
        };
        if expiry.replace(when).is_some() {
            return Err(syntax_error());
        }
    }
    Ok(expiry.unwrap_or(Expiry::Default))
}

pub(super) async fn run(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let (key, value) = (&args[1], &args[2]);
    if let Err(e) = check_key(ctx, key).and_then(|()| check_value(ctx, value)) {
        return e;
    }
    let ttl_ms = match parse(&args[3..]) {
        Ok(Expiry::Default) => default_ttl_ms(ctx),
        Ok(Expiry::InMs(ms)) => ms,
        // Not atomic with the write: a concurrent EXPIRE may be lost.
        Ok(Expiry::Keep) => match read(ctx, key).await {
            Ok(found) => found.map_or_else(|| default_ttl_ms(ctx), |(_, ttl)| ttl),
            Err(e) => return e,
        },
        Err(e) => return e,
    };
    match write(ctx, key, value.clone(), ttl_ms).await {
        Ok(()) => ok(),
        Err(e) => e,
    }
}
