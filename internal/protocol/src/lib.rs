//! The master ↔ auxiliary protocol. Pure: no I/O, no runtime.
//!
//! - [`messages`]: requests, [`answers`]: responses; `frame`: their frames, `u64 request id (LE) ++
//!   bincode 2 payload`. Ids let many requests share one connection out of order; the transport
//!   (length-delimited TCP) lives in the `wire` crate. The first request on a connection must be
//!   [`Request::Hello`] with the shared token and [`PROTOCOL_VERSION`]; an auxiliary answers
//!   nothing else before it, and refuses another version by name.
//! - [`inplace`]: a `Get` and its answer read and written in place, without a copy of the key
//!   or the value: the same bytes as `frame`'s for the same messages.
//! - [`RemoteError`]: what an auxiliary answers when it refuses or fails, typed on the wire.
//! - [`step`]: what a read-modify-write does to a value, for the auxiliary's one-step
//!   operations and a master's transactions alike.
//! - [`version`]: the hybrid logical clock that versions writes, and the one last-write-wins
//!   rule every replica, transfer and quorum read applies.

pub mod answers;
pub mod clock;
mod error;
mod frame;
pub mod glob;
pub mod inplace;
pub mod messages;
pub mod step;
pub mod version;

pub use answers::{Census, Found, Response, SnapshotReply, StatsReply};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::RemoteError;
pub use frame::{decode, encode, encode_frame_into, ProtocolError, MAX_FRAME_BYTES};
pub use messages::{Condition, Expect, Op, Placed, Request, WireEntry, PROTOCOL_VERSION};
pub use version::{Hlc, Stamp};

/// Compares two secrets (tokens, passwords) in a time that does not depend on where they
/// first differ, so a peer cannot find one byte by byte. Every role compares with this one.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
