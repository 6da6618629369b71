//! GETRANGE key start end: the bytes from `start` to `end` inclusive, counted from the end
//! when negative, clamped to the value (Redis's rules); an empty string when nothing is left.

use super::{bulk, integer, read, Ctx, Reply};
use bytes::Bytes;

/// The byte range `[start, end]` of a value of `len` bytes, by Redis's rules.
fn range(len: usize, start: i64, end: i64) -> Option<std::ops::Range<usize>> {
    let len = len as i64;
    let at = |i: i64| if i < 0 { (len + i).max(0) } else { i };
    let (start, end) = (at(start), at(end).min(len - 1));
    (len > 0 && start <= end).then(|| start as usize..end as usize + 1)
}

pub(super) struct Getrange {
    key: Bytes,
    start: i64,
    end: i64,
}

impl Getrange {
    pub(super) fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        Ok(Getrange { key: args[1].clone(), start: integer(&args[2])?, end: integer(&args[3])? })
    }

    pub(super) async fn run(self, ctx: &mut Ctx<'_>) -> Reply {
        match read(ctx, &self.key).await {
            Ok(Some((value, _))) => {
                bulk(range(value.len(), self.start, self.end).map_or_else(Bytes::new, |r| value.slice(r)))
            }
            Ok(None) => bulk(Bytes::new()),
            Err(e) => e,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::range;

    #[test]
    fn ranges_follow_redis() {
        // "This is a string" (16 bytes), the examples of Redis's documentation.
        assert_eq!(range(16, 0, 3), Some(0..4));
        assert_eq!(range(16, -3, -1), Some(13..16));
        assert_eq!(range(16, 0, -1), Some(0..16));
        assert_eq!(range(16, 10, 100), Some(10..16));
        assert_eq!(range(16, 5, 3), None);
        assert_eq!(range(16, -100, 2), Some(0..3));
        assert_eq!(range(0, 0, -1), None);
        assert_eq!(range(16, 20, 30), None);
    }
}
