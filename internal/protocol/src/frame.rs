//! The binary frames of the messages: `u64 request id (LE) ++ bincode 2 payload`, bounded by
//! [`MAX_FRAME_BYTES`], and the golden bytes a release must keep.

use serde::Serialize;

/// Largest frame either side accepts (a rebalance batch included).
pub const MAX_FRAME_BYTES: usize = 64 << 20;

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

pub(crate) fn cfg() -> bincode::config::Configuration {
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
    frame_into(id, out, |w| bincode::serde::encode_into_std_write(msg, w, cfg()).map(drop))
}

/// Appends one whole frame to `out`: the length prefix, the id, then what `body` writes; the
/// length is filled in once the body is written. On an error `out` is as it was.
pub(crate) fn frame_into(
    id: u64,
    out: &mut bytes::BytesMut,
    body: impl FnOnce(&mut bytes::buf::Writer<&mut bytes::BytesMut>) -> Result<(), bincode::error::EncodeError>,
) -> Result<(), ProtocolError> {
    use bytes::BufMut;
    let start = out.len();
    out.put_u32(0);
    out.put_u64_le(id);
    let mut w = out.writer();
    let written = body(&mut w);
    let out = w.into_inner();
    let len = out.len() - start - 4;
    match written {
        Ok(()) if len <= MAX_FRAME_BYTES => {
            out[start..start + 4].copy_from_slice(&(len as u32).to_be_bytes());
            Ok(())
        }
        Ok(()) => {
            out.truncate(start);
            Err(ProtocolError::Encode(format!("a frame of {len} bytes is over the limit of {MAX_FRAME_BYTES}")))
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
    use crate::answers::*;
    use crate::messages::*;
    use crate::RemoteError;
    use bytes::Bytes;

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
            Request::Transaction {
                expect: vec![Expect { key: Bytes::from_static(b"{t}:a"), stamp: Some((9, 1)) }],
                bases: vec![],
                writes: vec![WireEntry {
                    key: Bytes::from_static(b"{t}:b"),
                    value: Some(Bytes::from_static(b"v")),
                    version: 10,
                    ttl_ms: 0,
                    expiry_seq: 0,
                }],
                reconciled: false,
            },
            Request::Placed(Placed {
                key_hash: tiercache_placement::KeyHash::Tagged,
                request: Box::new(Request::CountPrimary { members: vec!["a".into()], virtual_nodes: 8 }),
            }),
            Request::Census { members: vec!["a".into()], virtual_nodes: 8 },
            Request::Remove { key: Bytes::from_static(b"k"), version: 4 },
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
            Response::Conflict,
            Response::Census(Census { keys: 3, expires: 1, ttl_ms_sum: 500 }),
            Response::Removed { existed: true, applied: false },
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
