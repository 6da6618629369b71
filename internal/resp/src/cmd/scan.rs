//! SCAN cursor [MATCH pattern] [COUNT n] [TYPE string]: a walk over the whole cluster, each
//! key from its first owner; a key present for the whole walk is returned at least once while
//! the membership does not change.

use super::{bulk, cluster_error, integer, syntax_error, Ctx, Reply};
use bytes::Bytes;
use redis_protocol::resp2::types::BytesFrame;

pub(super) struct Scan {
    cursor: u64,
    pattern: Option<Bytes>,
    count: usize,
    /// `TYPE string` or no TYPE: every value is a string, another type matches nothing.
    strings_only: bool,
}

impl Scan {
    pub(super) fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        let cursor = std::str::from_utf8(&args[1])
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| super::err("invalid cursor"))?;
        let (mut pattern, mut count, mut strings_only) = (None, 10usize, true);
        let mut it = args[2..].iter();
        while let Some(opt) = it.next() {
            let value = it.next().ok_or_else(syntax_error)?;
            match opt.to_ascii_uppercase().as_slice() {
                b"MATCH" => pattern = Some(value.clone()),
                b"COUNT" => match integer(value)? {
                    n if n >= 1 => count = n as usize,
                    _ => return Err(syntax_error()),
                },
                b"TYPE" => strings_only = value.eq_ignore_ascii_case(b"string"),
                _ => return Err(syntax_error()),
            }
        }
        Ok(Scan { cursor, pattern, count, strings_only })
    }

    pub(super) async fn run(self, ctx: &mut Ctx<'_>) -> Reply {
        let (next, keys) = if self.strings_only {
            match ctx.state.router.scan(self.cursor, self.count, self.pattern).await {
                Ok(r) => r,
                Err(e) => return cluster_error(e),
            }
        } else {
            (0, Vec::new())
        };
        BytesFrame::Array(vec![
            bulk(Bytes::from(next.to_string())),
            BytesFrame::Array(keys.into_iter().map(bulk).collect()),
        ])
    }
}
