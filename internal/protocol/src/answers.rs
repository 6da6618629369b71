//! Response types: what an auxiliary answers a master.

use crate::RemoteError;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// A stored entry as answered to a `Get`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Found {
    /// The value, `None` for a tombstone.
    pub value: Option<Bytes>,
    /// Its version.
    pub version: u64,
    /// Remaining ttl in ms, 0 = forever.
    pub ttl_ms: u64,
    /// Expiry changes of this version (see [`crate::Stamp`]).
    pub expiry_seq: u32,
}

impl Found {
    /// What last-write-wins compares.
    pub fn stamp(&self) -> crate::Stamp<'_> {
        crate::Stamp { version: self.version, value: self.value.as_deref(), expiry_seq: self.expiry_seq }
    }
}

/// Store totals as answered to `Stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsReply {
    /// Live keys.
    pub keys: u64,
    /// Bytes of keys and values.
    pub bytes: u64,
    /// Evictions since start.
    pub evictions: u64,
    /// Expirations since start.
    pub expired: u64,
}

/// Result of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotReply {
    /// Entries written.
    pub entries: u64,
    /// File size.
    pub bytes: u64,
    /// Path of the file.
    pub file: String,
    /// Time taken.
    pub duration_ms: u64,
}

/// An auxiliary's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// The connection is authenticated.
    Welcome,
    /// Answer to `Get`.
    Value(Option<Found>),
    /// Answer to `Get` from an auxiliary that may have missed writes (it is catching up after
    /// a start, a freeze or a lost ZooKeeper session): the entry is newest-wins material but
    /// must not count toward a read quorum.
    Recovering(Option<Found>),
    /// Answer to `Ping`.
    Pong,
    /// Answer to `Flush` (keys deleted) and `CountPrimary` (keys counted).
    Count(u64),
    /// Answer to `ScanShard`: the keys, and how many shards this node has.
    Keys {
        /// Keys found.
        keys: Vec<Bytes>,
        /// Shards of this node's store.
        shards: u32,
    },
    /// Answer to `Apply`: the value before, and the entry written (to replicate), if any.
    Updated {
        /// The value before the operation.
        previous: Option<Bytes>,
        /// The entry written: a value, or a tombstone for `GETDEL`.
        written: Option<Found>,
    },
    /// Answer to `Put` / `PutBatch`: how many were applied.
    Applied(u64),
    /// Answer to `Delete`.
    Deleted {
        /// A live value was there.
        existed: bool,
    },
    /// Answer to `Stats`.
    Stats(StatsReply),
    /// Answer to `Snapshot`.
    Snapshot(SnapshotReply),
    /// Answer to `Rebalance`: keys sent away and keys dropped afterwards.
    Rebalanced {
        /// Keys sent to new owners.
        moved: u64,
        /// Keys removed locally because this node no longer owns them.
        dropped: u64,
    },
    /// The request failed.
    Error(RemoteError),
    /// Answer to `Transaction`: a key changed since the master read it; nothing was written.
    Conflict,
    /// Answer to `Census`.
    Census(Census),
    /// Answer to `Remove`.
    Removed {
        /// A live value was there.
        existed: bool,
        /// The tombstone superseded what was stored.
        applied: bool,
    },
}

/// The keys an auxiliary leads, as `INFO keyspace` counts them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Census {
    /// Live keys whose first owner it is.
    pub keys: u64,
    /// How many of them have an expiry.
    pub expires: u64,
    /// Their remaining times to live, summed, in ms.
    pub ttl_ms_sum: u64,
}
