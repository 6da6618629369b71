//! ECHO message.

use super::{bulk, Ctx, Reply};
use bytes::Bytes;

pub(super) struct Echo {
    message: Bytes,
}

impl Echo {
    pub(super) fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        Ok(Echo { message: args[1].clone() })
    }

    pub(super) async fn run(self, _: &mut Ctx<'_>) -> Reply {
        bulk(self.message)
    }
}
