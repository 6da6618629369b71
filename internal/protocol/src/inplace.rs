//! The GET's and SET's frames read and written in place: a `Get`'s key and a `Put`'s key and
//! value borrowed from their frames, a `Value`/`Recovering` answer encoded straight from the
//! store's bytes, and that answer's value sliced out of the frame it came in. The bytes are exactly those of [`crate::encode`] and
//! [`crate::decode`] for the same messages (the tests below hold them to it); what goes is a
//! heap allocation per key, per value and per frame on the data path.

use crate::frame::{cfg, frame_into};
use crate::{Found, ProtocolError, Response};
use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

/// `Request::Get`'s variant index: its frames start with this byte after the id (bincode
/// writes an index under 251 as one byte).
const GET: u8 = 1;
/// `Request::Put`'s variant index.
const PUT: u8 = 2;
/// `Response::Value`'s variant index.
const VALUE: u8 = 1;
/// `Response::Recovering`'s variant index.
const RECOVERING: u8 = 2;

/// Bytes written as bincode writes a `Bytes` (a length, then the bytes) and read without a
/// copy.
#[derive(Clone, Copy)]
struct Raw<'a>(&'a [u8]);

impl Serialize for Raw<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Raw<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <&'de [u8]>::deserialize(d).map(Raw)
    }
}

/// [`Found`], borrowed: the same fields in the same order.
#[derive(Serialize, Deserialize)]
struct FoundRef<'a> {
    #[serde(borrow)]
    value: Option<Raw<'a>>,
    version: u64,
    ttl_ms: u64,
    expiry_seq: u32,
}

/// A `Put`, borrowed from its frame: the same fields in the same order as `Request::Put`'s.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct PutView<'a> {
    /// The key.
    #[serde(borrow, deserialize_with = "raw")]
    pub key: &'a [u8],
    /// The value.
    #[serde(borrow, deserialize_with = "raw")]
    pub value: &'a [u8],
    /// Last-write-wins version.
    pub version: u64,
    /// Time to live in ms, 0 = forever.
    pub ttl_ms: u64,
}

fn raw<'de: 'a, 'a, D: serde::Deserializer<'de>>(d: D) -> Result<&'a [u8], D::Error> {
    Raw::deserialize(d).map(|Raw(b)| b)
}

/// A stored entry as a `Get` answers it, borrowed from the store.
#[derive(Debug, Clone, Copy)]
pub struct EntryView<'a> {
    /// The value, `None` for a tombstone.
    pub value: Option<&'a [u8]>,
    /// Its version.
    pub version: u64,
    /// Remaining ttl in ms, 0 = forever.
    pub ttl_ms: u64,
    /// Expiry changes of this version.
    pub expiry_seq: u32,
}

/// The id and key of a `Get` frame, borrowed from it; `None` for any other request (decode
/// those with [`crate::decode`]).
pub fn peek_get(frame: &[u8]) -> Option<(u64, &[u8])> {
    let (id, body) = frame.split_first_chunk::<8>()?;
    let (&GET, key) = body.split_first()? else { return None };
    let (Raw(key), _) = bincode::serde::borrow_decode_from_slice::<Raw<'_>, _>(key, cfg()).ok()?;
    Some((u64::from_le_bytes(*id), key))
}

/// The id and fields of a `Put` frame, borrowed from it; `None` for any other request.
pub fn peek_put(frame: &[u8]) -> Option<(u64, PutView<'_>)> {
    let (id, body) = frame.split_first_chunk::<8>()?;
    let (&PUT, fields) = body.split_first()? else { return None };
    let (put, _) = bincode::serde::borrow_decode_from_slice::<PutView<'_>, _>(fields, cfg()).ok()?;
    Some((u64::from_le_bytes(*id), put))
}

/// Appends the whole frame (length prefix included, as [`crate::encode_frame_into`] makes it)
/// of `Response::Value(found)`, or `Response::Recovering(found)` when `recovering`.
pub fn encode_found_frame_into(
    id: u64,
    recovering: bool,
    found: Option<EntryView<'_>>,
    out: &mut BytesMut,
) -> Result<(), ProtocolError> {
    let found = found.map(|e| FoundRef {
        value: e.value.map(Raw),
        version: e.version,
        ttl_ms: e.ttl_ms,
        expiry_seq: e.expiry_seq,
    });
    frame_into(id, out, |w| {
        w.get_mut().put_u8(if recovering { RECOVERING } else { VALUE });
        bincode::serde::encode_into_std_write(&found, w, cfg()).map(drop)
    })
}

/// Decodes an answer like [`crate::decode`]; a `Value` or `Recovering` answer's value is a
/// slice of `frame`, not a copy.
pub fn decode_response(frame: Bytes) -> Result<(u64, Response), ProtocolError> {
    let (id, body) = frame.split_first_chunk::<8>().ok_or(ProtocolError::Short)?;
    let id = u64::from_le_bytes(*id);
    let tag = body.first().copied();
    if tag != Some(VALUE) && tag != Some(RECOVERING) {
        return crate::decode(&frame);
    }
    let (found, _) = bincode::serde::borrow_decode_from_slice::<Option<FoundRef<'_>>, _>(&body[1..], cfg())
        .map_err(|e| ProtocolError::Decode(e.to_string()))?;
    let found = found.map(|f| Found {
        value: f.value.map(|Raw(v)| frame.slice_ref(v)),
        version: f.version,
        ttl_ms: f.ttl_ms,
        expiry_seq: f.expiry_seq,
    });
    Ok((id, if tag == Some(VALUE) { Response::Value(found) } else { Response::Recovering(found) }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{decode, encode, encode_frame_into, Request};

    fn found(value: Option<&'static [u8]>) -> Found {
        Found { value: value.map(Bytes::from_static), version: 1 << 40, ttl_ms: 300_000, expiry_seq: 3 }
    }

    fn view(f: &Found) -> EntryView<'_> {
        EntryView { value: f.value.as_deref(), version: f.version, ttl_ms: f.ttl_ms, expiry_seq: f.expiry_seq }
    }

    #[test]
    fn a_get_is_read_in_place_and_nothing_else_is_taken_for_one() {
        for key in [&b""[..], b"k", &[7u8; 300][..], &[1u8; 70_000][..]] {
            let frame = encode(42, &Request::Get { key: Bytes::copy_from_slice(key) }).unwrap();
            assert_eq!(peek_get(&frame), Some((42, key)));
        }
        for other in [Request::Ping, Request::Stats, Request::Delete { key: Bytes::from_static(b"k"), version: 1 }] {
            assert_eq!(peek_get(&encode(1, &other).unwrap()), None, "{other:?}");
        }
        assert_eq!(peek_get(b"short"), None);
    }

    #[test]
    fn a_put_is_read_in_place_and_nothing_else_is_taken_for_one() {
        for (key, value) in [(&b"k"[..], &b""[..]), (b"", b"v"), (&[3u8; 300][..], &[4u8; 70_000][..])] {
            for (version, ttl_ms) in [(0, 0), (1 << 50, 250), (u64::MAX, u64::MAX)] {
                let put = Request::Put {
                    key: Bytes::copy_from_slice(key),
                    value: Bytes::copy_from_slice(value),
                    version,
                    ttl_ms,
                };
                let frame = encode(5, &put).unwrap();
                let (id, got) = peek_put(&frame).unwrap();
                assert_eq!((id, got.key, got.value, got.version, got.ttl_ms), (5, key, value, version, ttl_ms));
            }
        }
        let get = Request::Get { key: Bytes::from_static(b"k") };
        for other in [get, Request::Ping, Request::Delete { key: Bytes::from_static(b"k"), version: 1 }] {
            assert!(peek_put(&encode(1, &other).unwrap()).is_none(), "{other:?}");
        }
    }

    #[test]
    fn an_answer_encoded_in_place_is_the_same_frame_as_the_message() {
        let values: [Option<&'static [u8]>; 4] = [None, Some(b""), Some(b"v"), Some(&[9u8; 1000])];
        for recovering in [false, true] {
            for f in values.iter().map(|v| Some(found(*v))).chain([None]) {
                let msg = if recovering { Response::Recovering(f.clone()) } else { Response::Value(f.clone()) };
                let mut expected = BytesMut::new();
                encode_frame_into(7, &msg, &mut expected).unwrap();
                let mut got = BytesMut::from(&b"xy"[..]);
                encode_found_frame_into(7, recovering, f.as_ref().map(view), &mut got).unwrap();
                assert_eq!(&got[..2], b"xy");
                assert_eq!(&got[2..], &expected[..], "{msg:?}");
            }
        }
    }

    #[test]
    fn an_answer_decoded_in_place_is_the_message_and_its_value_a_slice_of_the_frame() {
        let answers = [
            Response::Value(Some(found(Some(b"value")))),
            Response::Recovering(Some(found(Some(&[5u8; 600])))),
            Response::Value(Some(found(None))),
            Response::Value(None),
            Response::Recovering(None),
            Response::Pong,
            Response::Welcome,
            Response::Count(12),
        ];
        for msg in answers {
            let frame = Bytes::from(encode(9, &msg).unwrap());
            let (id, got) = decode_response(frame.clone()).unwrap();
            assert_eq!((id, &got), (9, &msg));
            assert_eq!(decode::<Response>(&frame).unwrap(), (9, msg));
            if let Response::Value(Some(Found { value: Some(v), .. }))
            | Response::Recovering(Some(Found { value: Some(v), .. })) = got
            {
                let inside = frame.as_ptr_range();
                assert!(inside.contains(&v.as_ptr()), "the value was copied");
            }
        }
        assert!(decode_response(Bytes::from_static(b"\x01\0\0\0\0\0\0\0\x01\x01\xff")).is_err());
    }
}
