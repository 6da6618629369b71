//! SETEX key seconds value, PSETEX key milliseconds value.

use super::{check_key, check_value, err, integer, ok, write, Ctx, Reply};
use bytes::Bytes;

pub(super) struct Setex {
    key: Bytes,
    value: Bytes,
    ttl_ms: u64,
}

impl Setex {
    pub(super) fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        let millis = args[0].eq_ignore_ascii_case(b"psetex");
        let n = match integer(&args[2])? {
            n if n > 0 => n as u64,
            _ => {
                let name = String::from_utf8_lossy(&args[0]).to_lowercase();
                return Err(err(format!("invalid expire time in '{name}' command")));
            }
        };
        let ttl_ms = if millis { n } else { n.saturating_mul(1000) };
        Ok(Setex { key: args[1].clone(), value: args[3].clone(), ttl_ms })
    }

    pub(super) async fn run(self, ctx: &mut Ctx<'_>) -> Reply {
        if let Err(e) = check_key(ctx, &self.key).and_then(|()| check_value(ctx, &self.value)) {
            return e;
        }
        match write(ctx, &self.key, self.value, self.ttl_ms).await {
            Ok(()) => ok(),
            Err(e) => e,
        }
    }
}
