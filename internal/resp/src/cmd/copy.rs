//! COPY source destination [DB 0] [REPLACE]: the value and its expiry copied to a new name, as
//! one step on the primary of both keys (one hash group, else `-CROSSSLOT`). 1 when copied;
//! 0 when the source is absent, or the destination exists and REPLACE was not given. There is
//! one database: `DB` other than 0 is refused.

use super::{err, exec, int, integer, read, syntax_error, write, Ctx, Reply};
use bytes::Bytes;

pub(super) async fn run(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let mut replace = false;
    let mut it = args[3..].iter();
    while let Some(opt) = it.next() {
        match opt.to_ascii_uppercase().as_slice() {
            b"REPLACE" => replace = true,
            b"DB" => match it.next().map(|db| integer(db)) {
                Some(Ok(0)) => {}
                Some(Ok(_)) => return err("DB index is out of range"),
                Some(Err(e)) => return e,
                None => return syntax_error(),
            },
            _ => return syntax_error(),
        }
    }
    if let Some(reply) = exec::alone(ctx, args).await {
        return reply;
    }
    let (from, to) = (&args[1], &args[2]);
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
