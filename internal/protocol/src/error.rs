//! Errors an auxiliary answers, typed on the wire so a master decides by variant, never by text.

use serde::{Deserialize, Serialize};

/// Why an auxiliary refused or failed a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum RemoteError {
    /// The entry alone is larger than what one shard of the store may hold.
    #[error("entry of {size} bytes exceeds the per-shard byte limit of {limit}")]
    TooLarge {
        /// Size of the key plus the value.
        size: u64,
        /// The limit it exceeded.
        limit: u64,
    },
    /// `INCRBY` on a value that is not a 64-bit integer.
    #[error("value is not an integer or out of range")]
    NotAnInteger,
    /// `INCRBY` past the range of a 64-bit integer.
    #[error("increment or decrement would overflow")]
    Overflow,
    /// The first frame did not carry the right `INTERNAL_TOKEN`.
    #[error("unauthorized: bad internal token")]
    Unauthorized,
    /// The frame could not be decoded.
    #[error("bad frame: {0}")]
    BadFrame(String),
    /// This node does not do that (a data server without snapshots or transfers).
    #[error("not supported by this node")]
    NotSupported,
    /// Writing the snapshot failed; the OS error as text.
    #[error("{0}")]
    Snapshot(String),
    /// An atomic step sent to an owner that is not the key's first registered owner (see
    /// the auxiliary's fence): `primary` is, or this node is not registered (empty).
    #[error("not the key's primary now (the primary is {primary:?}); try again")]
    NotPrimary {
        /// The first owner this node sees registered; empty when this node is not.
        primary: String,
    },
    /// The peer speaks another version of this protocol (see `PROTOCOL_VERSION`).
    #[error("internal protocol mismatch: the peer speaks version {theirs}, this auxiliary {ours}; run the same tiercache release on every node")]
    ProtocolMismatch {
        /// The version the peer stated (1 for the handshake without a version).
        theirs: u32,
        /// This auxiliary's.
        ours: u32,
    },
    /// A transfer stopped part-way.
    #[error("transfer to {target} failed: {message}")]
    Transfer {
        /// The auxiliary that did not take its batch.
        target: String,
        /// What it answered, or how the call failed.
        message: String,
    },
}
