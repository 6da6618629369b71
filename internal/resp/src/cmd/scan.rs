//! SCAN cursor [MATCH pattern] [COUNT n] [TYPE string]: a walk over the whole cluster, each
//! key from its first owner; a key present for the whole walk is returned at least once while
//! the membership does not change.

use super::{bulk, cluster_error, integer, syntax_error, Ctx, Reply};
use bytes::Bytes;
use redis_protocol::resp2::types::BytesFrame;

pub(super) async fn run(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let cursor = match std::str::from_utf8(&args[1]).ok().and_then(|s| s.parse::<u64>().ok()) {
        Some(c) => c,
        None => return super::err("invalid cursor"),
    };
    let (mut pattern, mut count, mut strings_only) = (None, 10usize, true);
    let mut it = args[2..].iter();
    while let Some(opt) = it.next() {
        let Some(value) = it.next() else { return syntax_error() };
        match opt.to_ascii_uppercase().as_slice() {
            b"MATCH" => pattern = Some(value.clone()),
            b"COUNT" => match integer(value) {
                Ok(n) if n >= 1 => count = n as usize,
                Ok(_) => return syntax_error(),
                Err(e) => return e,
            },
            b"TYPE" => strings_only = value.eq_ignore_ascii_case(b"string"),
            _ => return syntax_error(),
        }
    }
    let (next, keys) = if strings_only {
        match ctx.state.router.scan(cursor, count, pattern).await {
            Ok(r) => r,
            Err(e) => return cluster_error(e),
        }
    } else {
        // Every value is a string: another type matches nothing.
        (0, Vec::new())
    };
    BytesFrame::Array(vec![
        bulk(Bytes::from(next.to_string())),
        BytesFrame::Array(keys.into_iter().map(bulk).collect()),
    ])
}
