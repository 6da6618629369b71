//! HELLO [protover [AUTH user password] [SETNAME name]]: switches the connection to RESP2 or
//! RESP3 and describes the server (a map in RESP3).

use super::{bulk, int, Ctx, Reply};
use bytes::Bytes;
use redis_protocol::resp2::types::BytesFrame;

pub(super) struct Hello {
    /// None: keep the connection's protocol.
    resp3: Option<bool>,
    auth: Option<super::auth::Auth>,
    name: Option<Bytes>,
}

impl Hello {
    pub(super) fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        let resp3 = match args.get(1).map(|v| super::integer(v)).transpose()? {
            None => None,
            Some(2) => Some(false),
            Some(3) => Some(true),
            Some(_) => return Err(BytesFrame::Error("NOPROTO unsupported protocol version".into())),
        };
        let (mut auth, mut name) = (None, None);
        let mut rest = args.iter().skip(2);
        while let Some(opt) = rest.next() {
            match (opt.to_ascii_lowercase().as_slice(), rest.next()) {
                (b"setname", Some(n)) => name = Some(n.clone()),
                (b"auth", Some(user)) => {
                    let password = rest.next().ok_or_else(super::syntax_error)?;
                    auth = Some(super::auth::Auth::as_user(user.clone(), password.clone()));
                }
                _ => return Err(super::syntax_error()),
            }
        }
        Ok(Hello { resp3, auth, name })
    }

    pub(super) async fn run(self, ctx: &mut Ctx<'_>) -> Reply {
        if let Some(auth) = self.auth {
            if let e @ BytesFrame::Error(_) = auth.run(ctx).await {
                return e;
            }
        }
        if let Some(name) = self.name {
            ctx.session.name = Some(name);
        }
        // Still unauthenticated (a password is set and none was given): say so, as Redis does.
        if ctx.session.identity == crate::Identity::Nobody {
            return BytesFrame::Error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time".into());
        }
        let resp3 = self.resp3.unwrap_or(ctx.session.resp3);
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
}
