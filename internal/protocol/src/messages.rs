//! Request and response types and their binary frames.

use crate::RemoteError;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Largest frame either side accepts (a rebalance batch included).
pub const MAX_FRAME_BYTES: usize = 64 << 20;

/// The version of these messages, stated in [`Request::Hello`] and checked by the auxiliary:
/// frames of another version do not decode, so a mixed cluster fails at the handshake, with a
/// line naming both versions, instead of on garbled frames. 1: [`Request::HelloV1`], before
/// expiry sequences; 2: expiry sequences in entries and `SetExpiry`.
pub const PROTOCOL_VERSION: u32 = 2;

/// Protocol errors.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// The frame is shorter than its id.
    #[error("frame too short")]
    Short,
    /// The payload is not a valid message.
    #[error("decode: {0}")]
    Decode(String),
    /// Encoding failed.
    #[error("encode: {0}")]
    Encode(String),
}

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
    /// from what is there now. A recovering auxiliary answers `Recovering` unless `bases`
    /// came along. Older auxiliaries do not know this request; new variants stay at the end.
    Transaction {
        /// Every key the transaction read or wrote, as it read it.
        expect: Vec<Expect>,
        /// The newest copies of the other owners, when this owner may have missed writes.
        bases: Vec<WireEntry>,
        /// What the transaction wrote: new versions, or the same version with a new expiry
        /// sequence for an expiry change.
        writes: Vec<WireEntry>,
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
        )
    }
}

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

fn cfg() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Encodes a message with its request id.
pub fn encode<T: Serialize>(id: u64, msg: &T) -> Result<Vec<u8>, ProtocolError> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&id.to_le_bytes());
    bincode::serde::encode_into_std_write(msg, &mut out, cfg()).map_err(|e| ProtocolError::Encode(e.to_string()))?;
    Ok(out)
}

/// Appends a message with its request id to `out` as one whole frame, length prefix
/// included (the framing of [`MAX_FRAME_BYTES`]-bounded length-delimited codecs: a 4-byte
/// big-endian length, then the body [`encode`] makes). On an error `out` is as it was.
pub fn encode_frame_into<T: Serialize>(id: u64, msg: &T, out: &mut bytes::BytesMut) -> Result<(), ProtocolError> {
    use bytes::BufMut;
    let start = out.len();
    out.put_u32(0);
    out.put_u64_le(id);
    let mut w = out.writer();
    let written = bincode::serde::encode_into_std_write(msg, &mut w, cfg());
    let out = w.into_inner();
    let body = out.len() - start - 4;
    match written {
        Ok(_) if body <= MAX_FRAME_BYTES => {
            out[start..start + 4].copy_from_slice(&(body as u32).to_be_bytes());
            Ok(())
        }
        Ok(_) => {
            out.truncate(start);
            Err(ProtocolError::Encode(format!("a frame of {body} bytes is over the limit of {MAX_FRAME_BYTES}")))
        }
        Err(e) => {
            out.truncate(start);
            Err(ProtocolError::Encode(e.to_string()))
        }
    }
}

/// Decodes a frame into its id and message.
pub fn decode<T: serde::de::DeserializeOwned>(frame: &[u8]) -> Result<(u64, T), ProtocolError> {
    let (id, body) = frame.split_first_chunk::<8>().ok_or(ProtocolError::Short)?;
    let (msg, _) = bincode::serde::decode_from_slice(body, cfg()).map_err(|e| ProtocolError::Decode(e.to_string()))?;
    Ok((u64::from_le_bytes(*id), msg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_encoded_in_place_is_the_length_then_the_message() {
        let req = Request::Get { key: bytes::Bytes::from_static(b"k") };
        let mut out = bytes::BytesMut::from(&b"xy"[..]);
        encode_frame_into(7, &req, &mut out).unwrap();
        let body = encode(7, &req).unwrap();
        assert_eq!(&out[..2], b"xy");
        assert_eq!(&out[2..6], &(body.len() as u32).to_be_bytes());
        assert_eq!(&out[6..], &body[..]);
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    /// The bytes on the wire do not change by accident: a peer of the same
    /// [`PROTOCOL_VERSION`] must decode them. A change here bumps the version.
    #[test]
    fn frames_keep_their_bytes() {
        let entry = WireEntry {
            key: Bytes::from_static(b"k"),
            value: Some(Bytes::from_static(b"v")),
            version: 300,
            ttl_ms: 5,
            expiry_seq: 2,
        };
        let frames: Vec<(Vec<u8>, &str)> = vec![
            (encode(1, &Request::Hello { token: "t".into(), protocol: PROTOCOL_VERSION }).unwrap(), GOLDEN[0]),
            (encode(2, &Request::Get { key: Bytes::from_static(b"k") }).unwrap(), GOLDEN[1]),
            (encode(3, &Request::PutBatch { entries: vec![entry] }).unwrap(), GOLDEN[2]),
            (
                encode(
                    4,
                    &Request::SetExpiry { key: Bytes::from_static(b"k"), version: 300, expiry_seq: 2, ttl_ms: 5 },
                )
                .unwrap(),
                GOLDEN[3],
            ),
            (
                encode(
                    5,
                    &Response::Value(Some(Found {
                        value: Some(Bytes::from_static(b"v")),
                        version: 300,
                        ttl_ms: 0,
                        expiry_seq: 1,
                    })),
                )
                .unwrap(),
                GOLDEN[4],
            ),
            (encode(6, &Response::Error(RemoteError::NotPrimary { primary: "a".into() })).unwrap(), GOLDEN[5]),
        ];
        let got: Vec<String> = frames.iter().map(|(f, _)| hex(f)).collect();
        let want: Vec<&str> = frames.iter().map(|(_, g)| *g).collect();
        assert_eq!(got, want, "frames changed: bump PROTOCOL_VERSION and update GOLDEN");
        // A protocol-1 handshake still decodes, so the auxiliary can name the mismatch.
        let v1 = encode(0, &Request::HelloV1 { token: "t".into() }).unwrap();
        assert_eq!(v1[8], 0, "the protocol-1 handshake keeps variant index 0");
        assert!(matches!(decode::<Request>(&v1), Ok((0, Request::HelloV1 { .. }))));
    }

    const GOLDEN: [&str; 6] = [
        "010000000000000010017402",
        "020000000000000001016b",
        "03000000000000000401016b010176fb2c010502",
        "04000000000000000e016bfb2c010205",
        "05000000000000000101010176fb2c010001",
        "06000000000000000c070161",
    ];

    #[test]
    fn requests_round_trip() {
        let reqs = vec![
            Request::Hello { token: "secret".into(), protocol: PROTOCOL_VERSION },
            Request::Get { key: Bytes::from_static(b"k \xff/\x00") },
            Request::Put {
                key: Bytes::from_static(b"k"),
                value: Bytes::from(vec![0u8, 255, 10]),
                version: u64::MAX,
                ttl_ms: 5,
            },
            Request::Delete { key: Bytes::from_static(b"k"), version: 7 },
            Request::PutBatch {
                entries: vec![WireEntry {
                    key: Bytes::from_static(b"a"),
                    value: None,
                    version: 1,
                    ttl_ms: 0,
                    expiry_seq: 0,
                }],
            },
            Request::Stats,
            Request::Snapshot,
            Request::Ping,
            Request::Recover,
            Request::Flush { version: 3 },
            Request::ScanShard { shard: 1, members: vec!["a".into()], virtual_nodes: 8, pattern: None },
            Request::CountPrimary { members: vec!["a".into()], virtual_nodes: 8 },
            Request::Apply { key: Bytes::from_static(b"k"), op: Op::IncrBy(-3), version: 9 },
            Request::ApplyReconciled {
                key: Bytes::from_static(b"k"),
                op: Op::IncrBy(1),
                version: 9,
                base: Some(Found { value: Some(Bytes::from_static(b"41")), version: 8, ttl_ms: 5, expiry_seq: 1 }),
            },
            Request::Rebalance {
                members: vec![("a".into(), "127.0.0.1:1".into())],
                virtual_nodes: 8,
                replicas: 2,
                drop_unowned: true,
                previous: vec!["b".into()],
            },
        ];
        for (i, r) in reqs.into_iter().enumerate() {
            let frame = encode(i as u64, &r).unwrap();
            let (id, back): (u64, Request) = decode(&frame).unwrap();
            assert_eq!((id, back), (i as u64, r));
        }
    }

    #[test]
    fn responses_round_trip() {
        let resps = vec![
            Response::Welcome,
            Response::Value(None),
            Response::Value(Some(Found {
                value: Some(Bytes::from_static(b"v")),
                version: 3,
                ttl_ms: 0,
                expiry_seq: 0,
            })),
            Response::Recovering(None),
            Response::Pong,
            Response::Count(7),
            Response::Applied(2),
            Response::Deleted { existed: true },
            Response::Stats(StatsReply { keys: 1, bytes: 2, evictions: 3, expired: 4 }),
            Response::Snapshot(SnapshotReply { entries: 1, bytes: 2, file: "f".into(), duration_ms: 3 }),
            Response::Rebalanced { moved: 5, dropped: 4 },
            Response::Error(RemoteError::TooLarge { size: 5, limit: 4 }),
            Response::Error(RemoteError::Transfer { target: "a".into(), message: "m".into() }),
        ];
        for r in resps {
            let (id, back): (u64, Response) = decode(&encode(42, &r).unwrap()).unwrap();
            assert_eq!((id, back), (42, r));
        }
    }

    #[test]
    fn small_get_frame_is_compact() {
        let f = encode(1, &Request::Get { key: Bytes::from_static(b"0123456789abcdef") }).unwrap();
        assert!(f.len() <= 8 + 1 + 1 + 16, "{} bytes", f.len());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode::<Request>(&[1, 2, 3]).is_err());
        assert!(decode::<Request>(&[0, 0, 0, 0, 0, 0, 0, 0, 200, 1, 2]).is_err());
    }
}
