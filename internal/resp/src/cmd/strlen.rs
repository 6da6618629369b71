//! STRLEN key: the value's length, 0 when absent.

use super::{int, read, Ctx, Reply};
use bytes::Bytes;

pub(super) struct Strlen {
    key: Bytes,
}

impl Strlen {
    pub(super) fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        Ok(Strlen { key: args[1].clone() })
    }

    pub(super) async fn run(self, ctx: &mut Ctx<'_>) -> Reply {
        match read(ctx, &self.key).await {
            Ok(found) => int(found.map_or(0, |(v, _)| v.len() as i64)),
            Err(e) => e,
        }
    }
}
