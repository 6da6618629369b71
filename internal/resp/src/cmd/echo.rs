//! ECHO message.

use super::{bulk, Ctx, Reply};
use bytes::Bytes;

pub(super) async fn run(_: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    bulk(args[1].clone())
}
