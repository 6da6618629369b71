//! AUTH [user] password: no client password is configured, so there is nothing to check.

use super::{err, Ctx, Reply};
use bytes::Bytes;

pub(super) const ARITY: i32 = -2;

pub(super) async fn run(_: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    if args.len() > 3 {
        return super::syntax_error();
    }
    err("AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
}
