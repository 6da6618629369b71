//! WATCH key [key ...] and UNWATCH. WATCH records each key's version and expiry sequence as
//! its primary holds it now, and which owner that primary is; the next EXEC of the
//! connection answers a null array instead of running if any of them changed (a write, a
//! delete, an expiry change, the key expiring) or another owner leads the key's group by then.

use super::{cluster_error, err, ok, Ctx, Reply};
use crate::Watched;
use bytes::Bytes;

pub(super) struct Watch {
    /// Empty for UNWATCH.
    keys: Vec<Bytes>,
    unwatch: bool,
}

impl Watch {
    pub(super) fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        Ok(Watch { keys: args[1..].to_vec(), unwatch: args[0].eq_ignore_ascii_case(b"unwatch") })
    }

    pub(super) async fn run(self, ctx: &mut Ctx<'_>) -> Reply {
        if self.unwatch {
            ctx.session.watched.clear();
            return ok();
        }
        if ctx.session.multi.is_some() {
            return err("WATCH inside MULTI is not allowed");
        }
        let router = &ctx.state.router;
        let reads = self.keys.iter().map(|key| async move { (key, router.tx_read(std::slice::from_ref(key)).await) });
        for (key, read) in futures::future::join_all(reads).await {
            match read {
                Ok(read) => {
                    let stamp = read.stamp(key);
                    // The reads that follow (WATCH k; GET k; MULTI; SET k …) see at least what was
                    // watched, even from an owner that is behind.
                    if let Some((version, _)) = stamp {
                        ctx.session.floors.lock().note(key, version);
                    }
                    let watched = Watched { key: key.clone(), primary: read.primary().to_string(), stamp };
                    ctx.session.watched.retain(|w| w.key != watched.key);
                    ctx.session.watched.push(watched);
                }
                Err(e) => return cluster_error(e),
            }
        }
        ok()
    }
}
