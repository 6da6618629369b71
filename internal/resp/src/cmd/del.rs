//! DEL key [key ...] and UNLINK: the number of keys that held a value.

use super::{delete, int, Ctx, Reply};
use bytes::Bytes;

pub(super) async fn run(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let ctx = &*ctx;
    let deletes = args[1..].iter().map(|k| delete(ctx, k));
    let mut n = 0;
    for r in futures::future::join_all(deletes).await {
        match r {
            Ok(existed) => n += i64::from(existed),
            Err(e) => return e,
        }
    }
    int(n)
}
