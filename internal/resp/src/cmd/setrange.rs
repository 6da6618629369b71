//! SETRANGE key offset value: overwrites the value from `offset` on, padding with zero bytes,
//! as one step on the key's primary; the expiry is kept. Answers the new length. An absent
//! key with an empty value stays absent (0). The result may not exceed `VALUE_MAX_BYTES`.

use super::{check_key, err, exec, int, integer, read, write, Ctx, Reply};
use bytes::{Bytes, BytesMut};

pub(super) struct Setrange {
    /// The frame, to run it as a transaction of its own.
    args: Vec<Bytes>,
    offset: usize,
}

impl Setrange {
    pub(super) fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        let offset = match integer(&args[2])? {
            n if n >= 0 => n as usize,
            _ => return Err(err("offset is out of range")),
        };
        Ok(Setrange { args: args.to_vec(), offset })
    }

    pub(super) async fn run(self, ctx: &mut Ctx<'_>) -> Reply {
        let (key, patch, offset) = (&self.args[1], &self.args[3], self.offset);
        if let Err(e) = check_key(ctx, key) {
            return e;
        }
        let max = ctx.state.limits.value_max_bytes;
        if !patch.is_empty() && offset.saturating_add(patch.len()) > max {
            return err(format!("string exceeds maximum allowed size (VALUE_MAX_BYTES is {max})"));
        }
        if let Some(reply) = exec::alone(ctx, &self.args).await {
            return reply;
        }
        let set = async {
            let current = read(ctx, key).await?;
            let len = current.as_ref().map_or(0, |(v, _)| v.len());
            if patch.is_empty() {
                return Ok(int(len as i64));
            }
            let (old, ttl_ms) = current.unwrap_or_default();
            let mut value = BytesMut::from(&old[..]);
            if value.len() < offset + patch.len() {
                value.resize(offset + patch.len(), 0);
            }
            value[offset..offset + patch.len()].copy_from_slice(patch);
            let n = value.len();
            write(ctx, key, value.freeze(), ttl_ms).await?;
            Ok(int(n as i64))
        };
        set.await.unwrap_or_else(|e| e)
    }
}
