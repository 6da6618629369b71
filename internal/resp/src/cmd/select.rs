//! SELECT index: there is one keyspace, database 0.

use super::{err, integer, ok, Ctx, Reply};
use bytes::Bytes;

pub(super) async fn run(_: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match integer(&args[1]) {
        Ok(0) => ok(),
        Ok(_) => err("DB index is out of range"),
        Err(e) => e,
    }
}
