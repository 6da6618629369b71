//! TIME: seconds and microseconds of the master's clock.

use super::{bulk, Ctx, Reply};
use bytes::Bytes;
use redis_protocol::resp2::types::BytesFrame;

pub(super) struct Time;

impl Time {
    pub(super) fn parse(_: &[Bytes]) -> Result<Self, Reply> {
        Ok(Time)
    }

    pub(super) async fn run(self, _: &mut Ctx<'_>) -> Reply {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        BytesFrame::Array(vec![
            bulk(Bytes::from(now.as_secs().to_string())),
            bulk(Bytes::from(now.subsec_micros().to_string())),
        ])
    }
}
