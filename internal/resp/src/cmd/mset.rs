//! MSET key value [key value ...]. Each key is written to its own owners; unlike Redis the
//! keys are not set as one atomic step (they live on different auxiliaries).

use super::{check_pairs, default_ttl_ms, ok, write, Ctx, Reply};
use bytes::Bytes;

pub(super) struct Mset {
    /// The frame: the name, then key, value, key, value, ...
    args: Vec<Bytes>,
}

impl Mset {
    pub(super) fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        Ok(Mset { args: args.to_vec() })
    }

    pub(super) async fn run(self, ctx: &mut Ctx<'_>) -> Reply {
        if let Err(e) = check_pairs(ctx, &self.args) {
            return e;
        }
        let ctx = &*ctx;
        let ttl = default_ttl_ms(ctx);
        let writes = self.args[1..].chunks(2).map(|pair| write(ctx, &pair[0], pair[1].clone(), ttl));
        match futures::future::join_all(writes).await.into_iter().find_map(Result::err) {
            None => ok(),
            Some(e) => e,
        }
    }
}
