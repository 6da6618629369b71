//! The auxiliary's data: a sharded, size-bounded LRU with per-entry TTL and versions.
//!
//! This crate owns eviction (entries and bytes of keys + values), expiry (lazy on read, active
//! via [`Store::purge_expired`]), last-write-wins between versions (so replicas and transfers
//! never let an older copy overwrite a newer one, deletes included, via tombstones) and the
//! snapshot file format. It is pure: time comes from an injected [`Clock`], no runtime.
//!
//! - [`store`]: [`Store`], the shards and their bounds, reads, writes, deletes, expiry.
//! - `entry`: [`Entry`] and the packed one-block layout a shard keeps.
//! - `lru`: the slab LRU with 32-bit links and a table of 4-byte indices.
//! - `snapshot`: the snapshot file format (header, bincode entries, CRC-32).

mod entry;
mod lru;
mod snapshot;
pub mod store;

pub use entry::Entry;
pub use snapshot::{decode_snapshot, decode_snapshot_with, encode_snapshot, EntryRef, SnapshotEntry};
pub use store::{DeleteOutcome, Locked, Store, StoreConfig, StoreStats};
pub use tiercache_protocol::clock::{Clock, ManualClock, SystemClock};

/// Errors of the store and of its snapshot files.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file does not start with the snapshot magic or has an unknown format version.
    #[error("not a tiercache snapshot (bad header)")]
    BadSnapshotHeader,
    /// Checksum mismatch or truncation.
    #[error("corrupt snapshot: {0}")]
    CorruptSnapshot(String),
    /// Writing a snapshot failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The entry alone is larger than what one shard may hold.
    #[error("entry of {size} bytes exceeds the per-shard byte limit of {limit}")]
    TooLarge {
        /// Size of the key plus the value.
        size: u64,
        /// The limit it exceeded.
        limit: u64,
    },
}
