//! RENAME key newkey and RENAMENX key newkey: the value and its expiry move to the new name,
//! as one step on the primary of both keys, which must share a hash group (`{tag}`), else
//! `-CROSSSLOT` as in Redis Cluster. `ERR no such key` when the key is absent; RENAMENX
//! answers 0 and changes nothing when the new name is taken.

use super::{delete, err, exec, int, ok, read, write, Ctx, Reply};
use bytes::Bytes;

pub(super) struct Rename {
    /// The frame, to run it as a transaction of its own.
    args: Vec<Bytes>,
    only_new: bool,
}

impl Rename {
    pub(super) fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        Ok(Rename { args: args.to_vec(), only_new: args[0].eq_ignore_ascii_case(b"renamenx") })
    }

    pub(super) async fn run(self, ctx: &mut Ctx<'_>) -> Reply {
        if let Some(reply) = exec::alone(ctx, &self.args).await {
            return reply;
        }
        let (from, to, only_new) = (&self.args[1], &self.args[2], self.only_new);
        let moved = async {
            let Some((value, ttl_ms)) = read(ctx, from).await? else { return Ok(err("no such key")) };
            if only_new && read(ctx, to).await?.is_some() {
                return Ok(int(0));
            }
            if from != to {
                delete(ctx, from).await?;
                write(ctx, to, value, ttl_ms).await?;
            }
            Ok(if only_new { int(1) } else { ok() })
        };
        moved.await.unwrap_or_else(|e| e)
    }
}
