//! KEYS pattern: the matching keys of the whole cluster, each once, from the same walk as
//! SCAN (so a key present throughout is listed while the membership does not change). Bounded:
//! past a million keys the answer is an error pointing to SCAN, not a reply of any size.

use super::{bulk, cluster_error, err, Ctx, Reply};
use bytes::Bytes;
use redis_protocol::resp2::types::BytesFrame;

/// The most keys one KEYS answers.
const MAX_KEYS: usize = 1_000_000;

pub(super) struct Keys {
    /// None: every key (`*`).
    pattern: Option<Bytes>,
}

impl Keys {
    pub(super) fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        Ok(Keys { pattern: (args[1].as_ref() != b"*").then(|| args[1].clone()) })
    }

    pub(super) async fn run(self, ctx: &mut Ctx<'_>) -> Reply {
        let (mut cursor, mut keys) = (0u64, Vec::new());
        loop {
            let (next, found) = match ctx.state.router.scan(cursor, 1000, self.pattern.clone()).await {
                Ok(r) => r,
                Err(e) => return cluster_error(e),
            };
            keys.extend(found);
            if keys.len() > MAX_KEYS {
                return err(format!("KEYS matches more than {MAX_KEYS} keys: use SCAN with MATCH to walk them"));
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        BytesFrame::Array(keys.into_iter().map(bulk).collect())
    }
}
