//! EXISTS key [key ...] and TOUCH key [key ...]: how many of the keys exist (a key named twice counts
//! twice; for TOUCH each read refreshes the key in its owners' LRU).

use super::{int, read, Ctx, Reply};
use bytes::Bytes;

pub(crate) async fn run(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let mut n = 0;
    for key in &args[1..] {
        match read(ctx, key).await {
            Ok(found) => n += i64::from(found.is_some()),
            Err(e) => return e,
        }
    }
    int(n)
}
