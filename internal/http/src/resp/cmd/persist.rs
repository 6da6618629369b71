//! PERSIST key: removes the expiry; 1 when there was one. Read and written back, like EXPIRE.

use super::{int, read, write, Ctx, Reply};
use bytes::Bytes;

pub(super) const ARITY: i32 = 2;

pub(super) async fn run(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match read(ctx, &args[1]).await {
        Ok(Some((value, ttl))) if ttl > 0 => match write(ctx, &args[1], value, 0).await {
            Ok(()) => int(1),
            Err(e) => e,
        },
        Ok(_) => int(0),
        Err(e) => e,
    }
}
