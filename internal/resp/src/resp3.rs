//! RESP3 replies for connections that sent `HELLO 3`. Commands build RESP2 frames; the types
//! they use map one to one (a null becomes RESP3's `_`), and `HELLO`'s field-value list is a map.

use redis_protocol::resp2::types::BytesFrame as Resp2;
use redis_protocol::resp3::types::BytesFrame as Resp3;

/// The RESP3 form of a RESP2 reply.
pub(super) fn convert(f: &Resp2) -> Resp3 {
    match f {
        Resp2::SimpleString(data) => Resp3::SimpleString { data: data.clone(), attributes: None },
        Resp2::Error(data) => Resp3::SimpleError { data: data.clone(), attributes: None },
        Resp2::Integer(data) => Resp3::Number { data: *data, attributes: None },
        Resp2::BulkString(data) => Resp3::BlobString { data: data.clone(), attributes: None },
        Resp2::Array(items) => Resp3::Array { data: items.iter().map(convert).collect(), attributes: None },
        Resp2::Null => Resp3::Null,
    }
}

/// A field-value list as a RESP3 map (anything else as [`convert`] makes it).
pub(super) fn map(f: &Resp2) -> Resp3 {
    match f {
        Resp2::Array(items) if items.len() % 2 == 0 => Resp3::Map {
            data: items.chunks(2).map(|kv| (convert(&kv[0]), convert(&kv[1]))).collect(),
            attributes: None,
        },
        other => convert(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{Bytes, BytesMut};

    fn wire(f: &Resp3) -> String {
        let mut out = BytesMut::new();
        redis_protocol::resp3::encode::complete::extend_encode(&mut out, f, false).unwrap();
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn nulls_and_maps_take_their_resp3_form() {
        assert_eq!(wire(&convert(&Resp2::Null)), "_\r\n");
        let arr = Resp2::Array(vec![Resp2::BulkString(Bytes::from_static(b"a")), Resp2::Integer(1), Resp2::Null]);
        assert_eq!(wire(&convert(&arr)), "*3\r\n$1\r\na\r\n:1\r\n_\r\n");
        let hello = Resp2::Array(vec![Resp2::BulkString(Bytes::from_static(b"proto")), Resp2::Integer(3)]);
        assert_eq!(wire(&map(&hello)), "%1\r\n$5\r\nproto\r\n:3\r\n");
        assert_eq!(wire(&map(&Resp2::Error("NOPROTO x".into()))), "-NOPROTO x\r\n");
    }
}
