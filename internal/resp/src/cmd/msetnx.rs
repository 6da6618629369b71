//! MSETNX key value [key value ...]: sets every key only if none of them holds a value, as
//! one step on the primary of all of them (one hash group, else `-CROSSSLOT`). 1 when set, 0
//! when any key existed (and nothing is set).

use super::{check_pairs, default_ttl_ms, exec, int, read, write, Ctx, Reply};
use bytes::Bytes;

pub(super) struct Msetnx {
    /// The frame: the name, then key, value, key, value, ...
    args: Vec<Bytes>,
}

impl Msetnx {
    pub(super) fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        Ok(Msetnx { args: args.to_vec() })
    }

    pub(super) async fn run(self, ctx: &mut Ctx<'_>) -> Reply {
        let args = &self.args;
        if let Err(e) = check_pairs(ctx, args) {
            return e;
        }
        if let Some(reply) = exec::alone(ctx, args).await {
            return reply;
        }
        let ttl_ms = default_ttl_ms(ctx);
        let set = async {
            for pair in args[1..].chunks(2) {
                if read(ctx, &pair[0]).await?.is_some() {
                    return Ok(int(0));
                }
            }
            for pair in args[1..].chunks(2) {
                write(ctx, &pair[0], pair[1].clone(), ttl_ms).await?;
            }
            Ok(int(1))
        };
        set.await.unwrap_or_else(|e| e)
    }
}
