//! SELECT index: there is one keyspace, database 0.

use super::{err, integer, ok, Ctx, Reply};
use bytes::Bytes;

pub(super) struct Select;

impl Select {
    pub(super) fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        match integer(&args[1])? {
            0 => Ok(Select),
            _ => Err(err("DB index is out of range")),
        }
    }

    pub(super) async fn run(self, _: &mut Ctx<'_>) -> Reply {
        ok()
    }
}
