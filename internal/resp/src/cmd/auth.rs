//! AUTH password, AUTH user password: `default` (or no user) with `CLIENT_PASSWORD`, `admin`
//! with `ADMIN_TOKEN` (which may also flush).

use super::{err, ok, Ctx, Reply};
use crate::Identity;
use bytes::Bytes;
use redis_protocol::resp2::types::BytesFrame;
use tiercache_master::same_secret;

pub(super) struct Auth {
    /// None: the password alone (`AUTH password`), for the default user.
    user: Option<Bytes>,
    password: Bytes,
}

impl Auth {
    pub(super) fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        match args.len() {
            2 => Ok(Auth { user: None, password: args[1].clone() }),
            3 => Ok(Auth::as_user(args[1].clone(), args[2].clone())),
            _ => Err(super::syntax_error()),
        }
    }

    /// `AUTH user password` (also HELLO's AUTH option).
    pub(super) fn as_user(user: Bytes, password: Bytes) -> Auth {
        Auth { user: Some(user), password }
    }

    pub(super) async fn run(self, ctx: &mut Ctx<'_>) -> Reply {
        let password = String::from_utf8_lossy(&self.password);
        let state = ctx.state;
        let granted = match self.user.as_deref().unwrap_or(b"default") {
            b"admin" => state.admin_token.as_deref().filter(|t| same_secret(t, &password)).map(|_| Identity::Admin),
            b"default" => match state.client_password.as_deref() {
                None if self.user.is_none() => return err("AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"),
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
}
