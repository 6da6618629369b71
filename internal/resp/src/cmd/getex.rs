//! GETEX key [EX s | PX ms | EXAT t | PXAT t | PERSIST]: the value, and a new expiry when one
//! is given (one step on the key's primary owner, like EXPIRE).

use super::{apply, bulk, err, integer, nil, now_ms, read, syntax_error, Ctx, Reply};
use bytes::Bytes;
use tiercache_master::protocol::Op;

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
    let found = match ttl_ms {
        None => read(ctx, &args[1]).await.map(|f| f.map(|(value, _)| value)),
        Some(ttl_ms) => apply(ctx, &args[1], Op::Expire { ttl_ms }).await.map(|(previous, _)| previous),
    };
    match found {
        Ok(Some(value)) => bulk(value),
        Ok(None) => nil(),
        Err(e) => e,
    }
}
