//! GET key.

use super::{bulk, check_key, nil, read, Ctx, Reply};
use bytes::Bytes;

pub(super) struct Get {
    key: Bytes,
}

impl Get {
    pub(super) fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        Ok(Get { key: args[1].clone() })
    }

    pub(super) async fn run(self, ctx: &mut Ctx<'_>) -> Reply {
        if let Err(e) = check_key(ctx, &self.key) {
            return e;
        }
        match read(ctx, &self.key).await {
            Ok(Some((value, _))) => bulk(value),
            Ok(None) => nil(),
            Err(e) => e,
        }
    }
}
