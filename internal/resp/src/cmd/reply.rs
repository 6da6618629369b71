//! Replies and errors in Redis's own types and words.

use super::Reply;
use bytes::Bytes;
use redis_protocol::resp2::types::BytesFrame;
use tiercache_master::protocol::RemoteError;
use tiercache_master::tx::TxError;
use tiercache_master::MasterError;

pub(crate) fn ok() -> Reply {
    BytesFrame::SimpleString(Bytes::from_static(b"OK"))
}

pub(crate) fn err(msg: impl std::fmt::Display) -> Reply {
    BytesFrame::Error(format!("ERR {msg}").into())
}

pub(crate) fn syntax_error() -> Reply {
    err("syntax error")
}

pub(crate) fn not_integer() -> Reply {
    err("value is not an integer or out of range")
}

pub(crate) fn int(n: i64) -> Reply {
    BytesFrame::Integer(n)
}

pub(crate) fn bulk(b: Bytes) -> Reply {
    BytesFrame::BulkString(b)
}

pub(crate) fn nil() -> Reply {
    BytesFrame::Null
}

/// An argument as an integer, or Redis's error for it.
pub(crate) fn integer(arg: &[u8]) -> Result<i64, Reply> {
    std::str::from_utf8(arg).ok().and_then(|s| s.parse().ok()).ok_or_else(not_integer)
}

/// A failure of the cluster, in words a Redis client shows to its user.
pub(crate) fn cluster_error(e: MasterError) -> Reply {
    match e {
        MasterError::Refused { error: e @ (RemoteError::NotAnInteger | RemoteError::Overflow), .. } => err(e),
        MasterError::Refused { error: RemoteError::TooLarge { size, limit }, .. } => {
            err(format!("entry of {size} bytes exceeds the per-shard limit of {limit}"))
        }
        // Like a Redis cluster that cannot serve the slot right now: clients may retry.
        other => BytesFrame::Error(format!("TRYAGAIN {other}").into()),
    }
}

/// A command's failure inside a transaction, in the words it would have outside one.
pub(crate) fn tx_error(e: TxError) -> Reply {
    match e {
        TxError::Step(error) => cluster_error(MasterError::Refused { id: String::new(), error }),
        other => err(other),
    }
}
