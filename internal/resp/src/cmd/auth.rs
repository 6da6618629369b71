//! AUTH password, AUTH user password: `default` (or no user) with `CLIENT_PASSWORD`, `admin`
//! with `ADMIN_TOKEN` (which may also flush).

use super::{err, ok, Ctx, Reply};
use crate::Identity;
use bytes::Bytes;
use redis_protocol::resp2::types::BytesFrame;
use tiercache_master::same_secret;

pub(super) async fn run(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let (user, password) = match args.len() {
        2 => (&b"default"[..], &args[1]),
        3 => (&args[1][..], &args[2]),
        _ => return super::syntax_error(),
    };
    let password = String::from_utf8_lossy(password);
    let state = ctx.state;
    let granted = match user {
        b"admin" => state.admin_token.as_deref().filter(|t| same_secret(t, &password)).map(|_| Identity::Admin),
        b"default" => match state.client_password.as_deref() {
            None if args.len() == 2 => return err("AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"),
            None => None,
            Some(p) => same_secret(p, &password).then_some(Identity::Client),
        },
        _ => None,
    };
    match granted {
        Some(identity) => {
            ctx.session.identity = identity;
            ok()
        }
        None => BytesFrame::Error("WRONGPASS invalid username-password pair or user is disabled.".into()),
    }
}
