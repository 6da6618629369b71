//! DEBUG: refused in words a tool can show (Redis's DEBUG reaches into one server's memory
//! and process; a tiercache cluster has no one such server behind the endpoint).

use super::{err, Ctx, Reply};
use bytes::Bytes;

pub(super) struct Debug {
    sub: String,
}

impl Debug {
    pub(super) fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        Ok(Debug { sub: String::from_utf8_lossy(&args[1]).to_uppercase() })
    }

    pub(super) async fn run(self, _: &mut Ctx<'_>) -> Reply {
        err(format!("DEBUG {} is not supported by tiercache", self.sub))
    }
}
