//! GETEX key [EX s | PX ms | EXAT t | PXAT t | PERSIST]: the value, and a new expiry when one
//! is given (one step on the key's primary owner, like EXPIRE).

use super::{apply, bulk, err, integer, nil, read, syntax_error, Ctx, Reply};
use bytes::Bytes;
use tiercache_master::protocol::Op;

pub(super) struct Getex {
    key: Bytes,
    /// None: leave the expiry alone; Some(0): remove it; Some(ms): set it.
    ttl_ms: Option<u64>,
}

impl Getex {
    pub(super) fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        let ttl_ms = match args.len() {
            2 => None,
            3 if args[2].eq_ignore_ascii_case(b"persist") => Some(0),
            4 => {
                let n = match integer(&args[3])? {
                    n if n > 0 => n as u64,
                    _ => return Err(err("invalid expire time in 'getex' command")),
                };
                Some(super::set::expiry_ms(&args[2], n).ok_or_else(syntax_error)?)
            }
            _ => return Err(syntax_error()),
        };
        Ok(Getex { key: args[1].clone(), ttl_ms })
    }

    pub(super) async fn run(self, ctx: &mut Ctx<'_>) -> Reply {
        let found = match self.ttl_ms {
            None => read(ctx, &self.key).await.map(|f| f.map(|(value, _)| value)),
            Some(ttl_ms) => apply(ctx, &self.key, Op::Expire { ttl_ms }).await.map(|(previous, _)| previous),
        };
        match found {
            Ok(Some(value)) => bulk(value),
            Ok(None) => nil(),
            Err(e) => e,
        }
    }
}
