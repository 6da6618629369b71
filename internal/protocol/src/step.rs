//! What a read-modify-write [`Op`] does to a key's live value, written once: the auxiliary
//! runs it under its shard lock for a single step, and a master runs it in a transaction's
//! overlay before the primary checks and commits the result (`Request::Transaction`), so both
//! give the same answers and the same errors.

use crate::{Condition, Op, RemoteError};
use bytes::{Bytes, BytesMut};

/// How long a delete marker lives, so an older write cannot bring the key back meanwhile.
pub const TOMBSTONE_TTL_MS: u64 = 300_000;

/// The expiry a written value gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// The current value's expiry (none if there was no value).
    Keep,
    /// This many ms from now; 0: none.
    InMs(u64),
}

/// What an [`Op`] does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing changes (a condition did not hold, or there was nothing to act on).
    Unchanged,
    /// A new value, at a new version.
    Write {
        /// The value.
        value: Bytes,
        /// Its expiry.
        expiry: Expiry,
    },
    /// A delete marker, at a new version.
    Delete,
    /// Only the expiry of the live value changes (its version stays; see `Store::set_expiry`).
    SetExpiry {
        /// Time to live from now in ms; 0 removes the expiry.
        ttl_ms: u64,
    },
}

/// What `op` does to a key whose live value is `current` (`None`: absent, deleted or expired).
pub fn step(op: &Op, current: Option<&[u8]>) -> Result<Outcome, RemoteError> {
    Ok(match op {
        Op::Set { value, ttl_ms, keep_ttl, condition } => {
            let go = match condition {
                Condition::Always => true,
                Condition::IfAbsent => current.is_none(),
                Condition::IfPresent => current.is_some(),
            };
            if !go {
                return Ok(Outcome::Unchanged);
            }
            let expiry = if *keep_ttl { Expiry::Keep } else { Expiry::InMs(*ttl_ms) };
            Outcome::Write { value: value.clone(), expiry }
        }
        Op::IncrBy(delta) => {
            let n = match current {
                None => 0i64,
                Some(v) => std::str::from_utf8(v).ok().and_then(|s| s.parse().ok()).ok_or(RemoteError::NotAnInteger)?,
            };
            let n = n.checked_add(*delta).ok_or(RemoteError::Overflow)?;
            Outcome::Write { value: Bytes::from(n.to_string()), expiry: Expiry::Keep }
        }
        Op::Append(tail) => {
            let mut v = BytesMut::from(current.unwrap_or_default());
            v.extend_from_slice(tail);
            Outcome::Write { value: v.freeze(), expiry: Expiry::Keep }
        }
        Op::GetDel if current.is_some() => Outcome::Delete,
        Op::Expire { ttl_ms } if current.is_some() => Outcome::SetExpiry { ttl_ms: *ttl_ms },
        Op::GetDel | Op::Expire { .. } => Outcome::Unchanged,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(condition: Condition) -> Op {
        Op::Set { value: Bytes::from_static(b"v"), ttl_ms: 5, keep_ttl: false, condition }
    }

    #[test]
    fn each_op_on_an_absent_and_a_present_value() {
        let write = |v: &'static [u8], expiry| Outcome::Write { value: Bytes::from_static(v), expiry };
        assert_eq!(step(&set(Condition::IfAbsent), None), Ok(write(b"v", Expiry::InMs(5))));
        assert_eq!(step(&set(Condition::IfAbsent), Some(b"x")), Ok(Outcome::Unchanged));
        assert_eq!(step(&set(Condition::IfPresent), None), Ok(Outcome::Unchanged));
        assert_eq!(step(&Op::IncrBy(2), None), Ok(write(b"2", Expiry::Keep)));
        assert_eq!(step(&Op::IncrBy(-2), Some(b"7")), Ok(write(b"5", Expiry::Keep)));
        assert_eq!(step(&Op::IncrBy(1), Some(b"x")), Err(RemoteError::NotAnInteger));
        assert_eq!(step(&Op::IncrBy(1), Some(i64::MAX.to_string().as_bytes())), Err(RemoteError::Overflow));
        assert_eq!(step(&Op::Append(Bytes::from_static(b"b")), Some(b"a")), Ok(write(b"ab", Expiry::Keep)));
        assert_eq!(step(&Op::GetDel, None), Ok(Outcome::Unchanged));
        assert_eq!(step(&Op::GetDel, Some(b"a")), Ok(Outcome::Delete));
        assert_eq!(step(&Op::Expire { ttl_ms: 9 }, Some(b"a")), Ok(Outcome::SetExpiry { ttl_ms: 9 }));
        assert_eq!(step(&Op::Expire { ttl_ms: 9 }, None), Ok(Outcome::Unchanged));
    }
}
