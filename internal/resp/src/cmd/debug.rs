//! DEBUG: refused in words a tool can show (Redis's DEBUG reaches into one server's memory
//! and process; a tiercache cluster has no one such server behind the endpoint).

use super::{err, Ctx, Reply};
use bytes::Bytes;

pub(super) async fn run(_: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    err(format!("DEBUG {} is not supported by tiercache", String::from_utf8_lossy(&args[1]).to_uppercase()))
}
