//! COPY source destination [DB 0] [REPLACE]: the value and its expiry copied to a new name, as
//! one step on the primary of both keys (one hash group, else `-CROSSSLOT`). 1 when copied;
//! 0 when the source is absent, or the destination exists and REPLACE was not given. There is
//! one database: `DB` other than 0 is refused.

use super::{err, exec, int, integer, read, syntax_error, write, Ctx, Reply};
use bytes::Bytes;

pub(super) struct Copy {
    /// The frame, to run it as a transaction of its own.
    args: Vec<Bytes>,
    replace: bool,
}

impl Copy {
    pub(super) fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        let mut replace = false;
        let mut it = args[3..].iter();
        while let Some(opt) = it.next() {
            match opt.to_ascii_uppercase().as_slice() {
                b"REPLACE" => replace = true,
                b"DB" => match integer(it.next().ok_or_else(syntax_error)?)? {
                    0 => {}
                    _ => return Err(err("DB index is out of range")),
                },
                _ => return Err(syntax_error()),
            }
        }
        Ok(Copy { args: args.to_vec(), replace })
    }

    pub(super) async fn run(self, ctx: &mut Ctx<'_>) -> Reply {
        if let Some(reply) = exec::alone(ctx, &self.args).await {
            return reply;
        }
        let (from, to, replace) = (&self.args[1], &self.args[2], self.replace);
        if from == to {
            return err("source and destination objects are the same");
        }
        let copied = async {
            let Some((value, ttl_ms)) = read(ctx, from).await? else { return Ok(int(0)) };
            if !replace && read(ctx, to).await?.is_some() {
                return Ok(int(0));
            }
            write(ctx, to, value, ttl_ms).await?;
            Ok(int(1))
        };
        copied.await.unwrap_or_else(|e| e)
    }
}
