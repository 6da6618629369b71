//! STRLEN key: the value's length, 0 when absent.

use super::{int, read, Ctx, Reply};
use bytes::Bytes;

pub(super) async fn run(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match read(ctx, &args[1]).await {
        Ok(found) => int(found.map_or(0, |(v, _)| v.len() as i64)),
        Err(e) => e,
    }
}
