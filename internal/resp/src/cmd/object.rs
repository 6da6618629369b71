//! OBJECT ENCODING | FREQ | IDLETIME | REFCOUNT | HELP key: what Redis would say of a string
//! value (`int`, `embstr` up to 44 bytes, `raw` beyond), nil for an absent key. This cache
//! evicts by LRU without keeping access times or counts per key, so FREQ answers Redis's own
//! error for an LRU policy and IDLETIME says that it is not tracked.

use super::{bulk, err, int, nil, read, Ctx, Reply};
use bytes::Bytes;
use redis_protocol::resp2::types::BytesFrame;

const HELP: &[&str] = &[
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Not tracked: keys are evicted by LRU.",
    "IDLETIME <key>",
    "    Not tracked: keys are evicted by LRU without per-key access times.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
    "HELP",
    "    Print this help.",
];

/// Redis's encoding of a string value.
fn encoding(v: &[u8]) -> &'static str {
    let int = v.len() <= 20
        && std::str::from_utf8(v)
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
            .is_some_and(|n| n.to_string().as_bytes() == v);
    if int {
        "int"
    } else if v.len() <= 44 {
        "embstr"
    } else {
        "raw"
    }
}

pub(super) enum Object {
    Help,
    Encoding(Bytes),
    Freq(Bytes),
    Idletime(Bytes),
    Refcount(Bytes),
}

impl Object {
    pub(super) fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        let sub = args[1].to_ascii_uppercase();
        if sub == b"HELP" {
            return Ok(Object::Help);
        }
        let (b"ENCODING" | b"FREQ" | b"IDLETIME" | b"REFCOUNT") = sub.as_slice() else {
            return Err(err(format!("unknown subcommand '{}'. Try OBJECT HELP.", String::from_utf8_lossy(&args[1]))));
        };
        if args.len() != 3 {
            return Err(err(format!(
                "wrong number of arguments for 'object|{}' command",
                String::from_utf8_lossy(&sub).to_lowercase()
            )));
        }
        let key = args[2].clone();
        Ok(match sub.as_slice() {
            b"ENCODING" => Object::Encoding(key),
            b"FREQ" => Object::Freq(key),
            b"IDLETIME" => Object::Idletime(key),
            _ => Object::Refcount(key),
        })
    }

    pub(super) async fn run(self, ctx: &mut Ctx<'_>) -> Reply {
        let key = match &self {
            Object::Help => {
                return BytesFrame::Array(
                    HELP.iter().map(|l| BytesFrame::SimpleString(Bytes::from_static(l.as_bytes()))).collect(),
                )
            }
            Object::Encoding(k) | Object::Freq(k) | Object::Idletime(k) | Object::Refcount(k) => k,
        };
        let value = match read(ctx, key).await {
            Ok(Some((v, _))) => v,
            Ok(None) => return nil(),
            Err(e) => return e,
        };
        match self {
            Object::Encoding(_) => bulk(Bytes::from_static(encoding(&value).as_bytes())),
            Object::Refcount(_) => int(1),
            Object::Freq(_) => {
                err("An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when \
                 switching between policies at runtime LRU and LFU data will take some time to adjust.")
            }
            _ => err("idle time is not tracked: tiercache evicts by LRU without per-key access times"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::encoding;

    #[test]
    fn encodings_as_redis_names_them() {
        assert_eq!(encoding(b"12345"), "int");
        assert_eq!(encoding(b"-7"), "int");
        assert_eq!(encoding(b"007"), "embstr", "not the integer's own digits");
        assert_eq!(encoding(b"hello"), "embstr");
        assert_eq!(encoding(&[b'x'; 45]), "raw");
    }
}
