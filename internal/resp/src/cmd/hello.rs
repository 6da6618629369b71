//! HELLO [protover [AUTH user password] [SETNAME name]]: switches the connection to RESP2 or
//! RESP3 and describes the server (a map in RESP3).

use super::{bulk, int, Ctx, Reply};
use bytes::Bytes;
use redis_protocol::resp2::types::BytesFrame;

pub(super) async fn run(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let resp3 = match args.get(1).map(|v| super::integer(v)) {
        None => ctx.session.resp3,
        Some(Ok(2)) => false,
        Some(Ok(3)) => true,
        Some(Ok(_)) => return BytesFrame::Error("NOPROTO unsupported protocol version".into()),
        Some(Err(e)) => return e,
    };
    let mut rest = args.iter().skip(2);
    while let Some(opt) = rest.next() {
        match (opt.to_ascii_lowercase().as_slice(), rest.next()) {
            (b"setname", Some(name)) => ctx.session.name = Some(name.clone()),
            (b"auth", Some(user)) => {
                let Some(password) = rest.next() else { return super::syntax_error() };
                let auth = [Bytes::from_static(b"AUTH"), user.clone(), password.clone()];
                if let e @ BytesFrame::Error(_) = super::auth::run(ctx, &auth).await {
                    return e;
                }
            }
            _ => return super::syntax_error(),
        }
    }
    // Still unauthenticated (a password is set and none was given): say so, as Redis does.
    if ctx.session.identity == crate::Identity::Nobody {
        return BytesFrame::Error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time".into());
    }
    ctx.session.resp3 = resp3;
    let s = |v: &'static str| bulk(Bytes::from_static(v.as_bytes()));
    BytesFrame::Array(vec![
        s("server"),
        s("tiercache"),
        s("version"),
        s(super::info::REDIS_VERSION),
        s("proto"),
        int(if resp3 { 3 } else { 2 }),
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
