//! MGET key [key ...]: each key read from its own owners.

use super::{bulk, nil, read, Ctx, Reply};
use bytes::Bytes;
use redis_protocol::resp2::types::BytesFrame;

pub(super) struct Mget {
    keys: Vec<Bytes>,
}

impl Mget {
    pub(super) fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        Ok(Mget { keys: args[1..].to_vec() })
    }

    pub(super) async fn run(self, ctx: &mut Ctx<'_>) -> Reply {
        let ctx = &*ctx;
        let reads = self.keys.iter().map(|k| async move {
            match read(ctx, k).await {
                Ok(Some((v, _))) => Ok(bulk(v)),
                Ok(None) => Ok(nil()),
                Err(e) => Err(e),
            }
        });
        match futures::future::join_all(reads).await.into_iter().collect::<Result<Vec<_>, _>>() {
            Ok(values) => BytesFrame::Array(values),
            Err(e) => e,
        }
    }
}
