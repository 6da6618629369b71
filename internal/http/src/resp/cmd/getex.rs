//! GETEX key [EX s | PX ms | EXAT t | PXAT t | PERSIST]: the value, and a new expiry when one
//! is given (read and written back, like EXPIRE: not atomic with a concurrent write).

use super::{bulk, err, integer, nil, now_ms, read, syntax_error, write, Ctx, Reply};
use bytes::Bytes;

pub(super) const ARITY: i32 = -2;

pub(super) async fn run(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    // None: leave the expiry alone; Some(0): remove it; Some(ms): set it.
    let ttl_ms = match args.len() {
        2 => None,
        3 if args[2].eq_ignore_ascii_case(b"persist") => Some(0),
        4 => {
            let n = match integer(&args[3]) {
                Ok(n) if n > 0 => n as u64,
                Ok(_) => return err("invalid expire time in 'getex' command"),
                Err(e) => return e,
            };
            Some(match args[2].to_ascii_uppercase().as_slice() {
                b"EX" => n.saturating_mul(1000),
                b"PX" => n,
                b"EXAT" => n.saturating_mul(1000).saturating_sub(now_ms()).max(1),
                b"PXAT" => n.saturating_sub(now_ms()).max(1),
                _ => return syntax_error(),
            })
        }
        _ => return syntax_error(),
    };
    match read(ctx, &args[1]).await {
        Ok(Some((value, _))) => {
            if let Some(ttl) = ttl_ms {
                if let Err(e) = write(ctx, &args[1], value.clone(), ttl).await {
                    return e;
                }
            }
            bulk(value)
        }
        Ok(None) => nil(),
        Err(e) => e,
    }
}
