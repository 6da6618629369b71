//! DEL key [key ...] and UNLINK: the number of keys that held a value.

use super::{delete, int, Ctx, Reply};
use bytes::Bytes;

pub(super) struct Del {
    keys: Vec<Bytes>,
}

impl Del {
    pub(super) fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        Ok(Del { keys: args[1..].to_vec() })
    }

    pub(super) async fn run(self, ctx: &mut Ctx<'_>) -> Reply {
        let ctx = &*ctx;
        let deletes = self.keys.iter().map(|k| delete(ctx, k));
        let mut n = 0;
        for r in futures::future::join_all(deletes).await {
            match r {
                Ok(existed) => n += i64::from(existed),
                Err(e) => return e,
            }
        }
        int(n)
    }
}
