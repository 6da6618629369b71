//! HELLO [protover [SETNAME name]]: RESP2 only; the server's description.

use super::{bulk, int, Ctx, Reply};
use bytes::Bytes;
use redis_protocol::resp2::types::BytesFrame;

pub(super) const ARITY: i32 = -1;

pub(super) async fn run(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    if let Some(v) = args.get(1) {
        match super::integer(v) {
            Ok(2) => {}
            Ok(_) => return BytesFrame::Error("NOPROTO sorry, this protocol version is not supported".into()),
            Err(e) => return e,
        }
    }
    let mut rest = args.iter().skip(2);
    while let Some(opt) = rest.next() {
        match (opt.to_ascii_lowercase().as_slice(), rest.next()) {
            (b"setname", Some(name)) => ctx.session.name = Some(name.clone()),
            _ => return super::syntax_error(),
        }
    }
    let s = |v: &'static str| bulk(Bytes::from_static(v.as_bytes()));
    BytesFrame::Array(vec![
        s("server"),
        s("tiercache"),
        s("version"),
        s(super::info::REDIS_VERSION),
        s("proto"),
        int(2),
        s("id"),
        int(ctx.session.id as i64),
        s("mode"),
        s("cluster"),
        s("role"),
        s("master"),
        s("modules"),
        BytesFrame::Array(vec![]),
    ])
}
