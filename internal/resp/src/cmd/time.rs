//! TIME: seconds and microseconds of the master's clock.

use super::{bulk, Ctx, Reply};
use bytes::Bytes;
use redis_protocol::resp2::types::BytesFrame;

pub(super) async fn run(_: &mut Ctx<'_>, _: &[Bytes]) -> Reply {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    BytesFrame::Array(vec![
        bulk(Bytes::from(now.as_secs().to_string())),
        bulk(Bytes::from(now.subsec_micros().to_string())),
    ])
}
