//! GET key.

use super::{bulk, check_key, nil, read, Ctx, Reply};
use bytes::Bytes;

pub(super) async fn run(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    if let Err(e) = check_key(ctx, &args[1]) {
        return e;
    }
    match read(ctx, &args[1]).await {
        Ok(Some((value, _))) => bulk(value),
        Ok(None) => nil(),
        Err(e) => e,
    }
}
