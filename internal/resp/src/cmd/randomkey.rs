//! RANDOMKEY: a key of the cluster, from a walk (as SCAN's) started at a random place; nil
//! when the cluster holds none.

use super::{bulk, cluster_error, nil, Ctx, Reply};
use bytes::Bytes;

pub(super) struct Randomkey;

impl Randomkey {
    pub(super) fn parse(_: &[Bytes]) -> Result<Self, Reply> {
        Ok(Randomkey)
    }

    pub(super) async fn run(self, ctx: &mut Ctx<'_>) -> Reply {
        let router = &ctx.state.router;
        let members = router.view().ring.nodes().len().max(1) as u64;
        // A SCAN cursor names an auxiliary (high bits) and one of its shards (low 16): start at
        // the first shard of a random auxiliary.
        let seed = super::now_ms() ^ ctx.session.id.rotate_left(20);
        let start = (seed % members) << 16;
        for cursor in [start, 0] {
            let mut at = cursor;
            loop {
                match router.scan(at, 1, None).await {
                    Ok((_, keys)) if !keys.is_empty() => return bulk(keys[0].clone()),
                    Ok((0, _)) => break,
                    Ok((next, _)) => at = next,
                    Err(e) => return cluster_error(e),
                }
            }
        }
        nil()
    }
}
