//! SETEX key seconds value, PSETEX key milliseconds value.

use super::{check_key, check_value, err, integer, ok, write, Ctx, Reply};
use bytes::Bytes;

pub(super) async fn run(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let millis = args[0].eq_ignore_ascii_case(b"psetex");
    let (key, value) = (&args[1], &args[3]);
    if let Err(e) = check_key(ctx, key).and_then(|()| check_value(ctx, value)) {
        return e;
    }
    let n = match integer(&args[2]) {
        Ok(n) if n > 0 => n as u64,
        Ok(_) => {
            return err(format!(
                "invalid expire time in '{}' command",
                String::from_utf8_lossy(&args[0]).to_lowercase()
            ))
        }
        Err(e) => return e,
    };
    match write(ctx, key, value.clone(), if millis { n } else { n.saturating_mul(1000) }).await {
        Ok(()) => ok(),
        Err(e) => e,
    }
}
