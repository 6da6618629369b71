//! Request types: what a master asks an auxiliary (the answers: `answers`; their frames:
//! `frame`).

use crate::Found;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// The version of these messages, stated in [`Request::Hello`] and checked by the auxiliary:
/// frames of another version do not decode, so a mixed cluster fails at the handshake, with a
/// line naming both versions, instead of on garbled frames. 1: [`Request::HelloV1`], before
/// expiry sequences; 2: expiry sequences in entries and `SetExpiry`.
pub const PROTOCOL_VERSION: u32 = 2;

/// An entry as carried by transfers: TTL is relative so clocks need not agree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireEntry {
    /// The key.
    pub key: Bytes,
    /// The value, `None` for a tombstone.
    pub value: Option<Bytes>,
    /// Last-write-wins version.
    pub version: u64,
    /// Remaining time to live in ms, 0 = forever.
    pub ttl_ms: u64,
    /// Expiry changes of this version (see [`crate::Stamp`]).
    pub expiry_seq: u32,
}

impl WireEntry {
    /// What last-write-wins compares.
    pub fn stamp(&self) -> crate::Stamp<'_> {
        crate::Stamp { version: self.version, value: self.value.as_deref(), expiry_seq: self.expiry_seq }
    }
}

/// When a conditional `SET` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Condition {
    /// Always.
    Always,
    /// Only if the key holds no value (`NX`).
    IfAbsent,
    /// Only if the key holds a value (`XX`).
    IfPresent,
}

/// A read-modify-write that the key's primary owner runs as one step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// `SET` with a condition; `keep_ttl` keeps the current expiry (`KEEPTTL`).
    Set {
        /// The value.
        value: Bytes,
        /// Time to live in ms, 0 = forever (unless `keep_ttl`).
        ttl_ms: u64,
        /// Keep the expiry of the current value.
        keep_ttl: bool,
        /// When to write.
        condition: Condition,
    },
    /// `INCRBY`: the value as a signed 64-bit integer (absent = 0) plus this; expiry kept.
    IncrBy(i64),
    /// `APPEND`: the value followed by these bytes; expiry kept.
    Append(Bytes),
    /// `GETDEL`: the value, and a delete.
    GetDel,
    /// `EXPIRE` family and `PERSIST`: a new expiry, `ttl_ms` from now (0: none), for a live
    /// value, keeping its version so a concurrent newer write still wins. Replicated with
    /// `Request::SetExpiry`.
    Expire {
        /// Time to live in ms from now; 0 removes the expiry.
        ttl_ms: u64,
    },
}

/// A request from a master (or a peer auxiliary during a transfer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// The handshake of protocol 1 (tiercache before expiry sequences), kept in its place so
    /// that an auxiliary can tell such a peer what to do; refused.
    HelloV1 {
        /// The `INTERNAL_TOKEN`.
        token: String,
    },
    /// Reads a key; the answer carries tombstones too so versions can be compared.
    Get {
        /// The key.
        key: Bytes,
    },
    /// Writes a value if `version` supersedes the stored one.
    Put {
        /// The key.
        key: Bytes,
        /// The value.
        value: Bytes,
        /// Last-write-wins version.
        version: u64,
        /// Time to live in ms, 0 = forever.
        ttl_ms: u64,
    },
    /// Writes a tombstone at `version`.
    Delete {
        /// The key.
        key: Bytes,
        /// Last-write-wins version.
        version: u64,
    },
    /// Applies many entries with last-write-wins (transfers, re-replication, repair).
    PutBatch {
        /// Entries to apply.
        entries: Vec<WireEntry>,
    },
    /// Totals of the store.
    Stats,
    /// Writes a snapshot now.
    Snapshot,
    /// Liveness probe on an idle connection.
    Ping,
    /// `FLUSHALL`: every key older than `version` is deleted (a later write survives).
    Flush {
        /// The master's version of the flush.
        version: u64,
    },
    /// `SCAN`: the live keys of one shard whose first owner under this placement is the node
    /// asked, matching `pattern` (a Redis glob) when given.
    ScanShard {
        /// The shard.
        shard: u32,
        /// Every auxiliary's id.
        members: Vec<String>,
        /// Virtual nodes per auxiliary.
        virtual_nodes: u32,
        /// `MATCH` pattern.
        pattern: Option<Bytes>,
    },
    /// `DBSIZE`: live keys whose first owner under this placement is the node asked, so that
    /// the sum over all auxiliaries counts each key once.
    CountPrimary {
        /// Every auxiliary's id.
        members: Vec<String>,
        /// Virtual nodes per auxiliary.
        virtual_nodes: u32,
    },
    /// Runs `op` on `key` as one step; a write gets a version above both `version` and the
    /// stored one, so concurrent operations from several masters all count.
    Apply {
        /// The key.
        key: Bytes,
        /// What to do.
        op: Op,
        /// The master's version for the write.
        version: u64,
    },
    /// A master acknowledged writes without this auxiliary (it was unreachable): it may have
    /// missed them and must catch up before its reads count again.
    Recover,
    /// Moves keys whose owners changed to their new owners under the given membership.
    Rebalance {
        /// Every auxiliary of the new view: (id, data address).
        members: Vec<(String, String)>,
        /// Virtual nodes per auxiliary used for placement.
        virtual_nodes: u32,
        /// Copies per key.
        replicas: u32,
        /// Also delete keys this node no longer owns once their owners have them.
        drop_unowned: bool,
        /// Ids of the previous view: only owners that are new relative to it receive a key.
        /// Empty: send every key to every other owner (a full repair).
        previous: Vec<String>,
    },
    /// A replica's half of `Op::Expire`: the expiry of `key`, only if its stored version is
    /// `version` and its expiry sequence below `expiry_seq` (answered `Applied(1)` when it
    /// changed).
    SetExpiry {
        /// The key.
        key: Bytes,
        /// The version the primary kept.
        version: u64,
        /// The primary's expiry sequence after the change.
        expiry_seq: u32,
        /// Time to live in ms from now; 0 removes the expiry.
        ttl_ms: u64,
    },
    /// `Apply` on an owner that may have missed writes (it is recovering, a master wrote
    /// around it, or it stands in for the key's first owner): the master read the key from
    /// the other owners first, and `base`, the newest entry they hold, is merged
    /// last-write-wins before the step runs, so the step starts from every acknowledged
    /// write. A recovering auxiliary answers a plain `Apply` with `Response::Recovering`.
    ApplyReconciled {
        /// The key.
        key: Bytes,
        /// What to do.
        op: Op,
        /// The master's version for the write.
        version: u64,
        /// The newest entry of the other owners; `None` when none holds the key.
        base: Option<Found>,
    },
    /// Authenticates the connection and states the protocol version; must come first. Last
    /// in this enum so that its index is new to older peers, which then refuse it.
    Hello {
        /// The `INTERNAL_TOKEN`.
        token: String,
        /// [`PROTOCOL_VERSION`] of the sender.
        protocol: u32,
    },
    /// A transaction (`MULTI`/`EXEC`, and the multi-key commands) committed on the primary
    /// of its keys, all of which share their owners: under the locks of every key's shard,
    /// `bases` are merged last-write-wins (as in `ApplyReconciled`), then if every key of
    /// `expect` still stands as the master read it, `writes` are applied (answered
    /// `Applied`), else nothing is (`Conflict`) and the master runs the transaction again
    /// from what is there now. A recovering auxiliary answers `Recovering` unless the
    /// transaction is `reconciled`. Older auxiliaries do not know this request; new variants stay at the end.
    Transaction {
        /// Every key the transaction read or wrote, as it read it.
        expect: Vec<Expect>,
        /// The newest copies of the other owners, when this owner may have missed writes.
        bases: Vec<WireEntry>,
        /// What the transaction wrote: new versions, or the same version with a new expiry
        /// sequence for an expiry change.
        writes: Vec<WireEntry>,
        /// The master read the other owners (`bases` holds what they had, maybe nothing): a
        /// recovering auxiliary may commit.
        reconciled: bool,
    },
    /// See [`Placed`].
    Placed(Placed),
    /// `INFO keyspace`: like `CountPrimary`, and also how many of those keys expire and
    /// their time to live in all (answered `Census`).
    Census {
        /// Every auxiliary's id.
        members: Vec<String>,
        /// Virtual nodes per auxiliary.
        virtual_nodes: u32,
    },
    /// `Delete`, answered `Removed`, which also says whether the tombstone took the place of
    /// what was stored: the primary's `applied: false` tells a master whose clock is behind
    /// to delete again above the stored version. Sent only to auxiliaries whose release has it
    /// (the `transactions` feature).
    Remove {
        /// The key.
        key: Bytes,
        /// Last-write-wins version.
        version: u64,
    },
}

/// A slow request (`Rebalance`, `ScanShard`, `CountPrimary`) of a cluster whose keys are
/// placed by another rule than the whole key (its configuration's `key_hash`): run `request`
/// placing keys by `key_hash`. Sent only once every member says it knows the rule, so an
/// auxiliary of an older release never gets it; the plain requests mean `KeyHash::Whole`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placed {
    /// How keys are placed.
    pub key_hash: tiercache_placement::KeyHash,
    /// What to run.
    pub request: Box<Request>,
}

/// A key as a transaction read it from the primary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expect {
    /// The key.
    pub key: Bytes,
    /// Version and expiry sequence of the entry (a delete marker included); `None` when
    /// there was none, or it had expired.
    pub stamp: Option<(u64, u32)>,
}

impl Request {
    /// This request as an auxiliary must run it when keys are placed by `key_hash`: as it is
    /// for whole keys (what every release knows), else wrapped in [`Placed`].
    pub fn placed(self, key_hash: tiercache_placement::KeyHash) -> Request {
        match key_hash {
            tiercache_placement::KeyHash::Whole => self,
            key_hash => Request::Placed(Placed { key_hash, request: Box::new(self) }),
        }
    }

    /// A put, delete or batch: something a replica that misses it would be behind on.
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Request::Put { .. }
                | Request::Delete { .. }
                | Request::PutBatch { .. }
                | Request::Apply { .. }
                | Request::ApplyReconciled { .. }
                | Request::Flush { .. }
                | Request::SetExpiry { .. }
                | Request::Transaction { .. }
                | Request::Remove { .. }
        )
    }
}
