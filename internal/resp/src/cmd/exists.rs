//! EXISTS key [key ...] and TOUCH key [key ...]: how many of the keys exist (a key named twice counts
//! twice; for TOUCH each read refreshes the key in its owners' LRU).

use super::{int, read, Ctx, Reply};
use bytes::Bytes;

pub(super) struct Exists {
    keys: Vec<Bytes>,
}

impl Exists {
    pub(super) fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        Ok(Exists { keys: args[1..].to_vec() })
    }

    pub(super) async fn run(self, ctx: &mut Ctx<'_>) -> Reply {
        let mut n = 0;
        for key in &self.keys {
            match read(ctx, key).await {
                Ok(found) => n += i64::from(found.is_some()),
                Err(e) => return e,
            }
        }
        int(n)
    }
}
