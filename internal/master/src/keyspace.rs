//! Operations over the whole cluster's keyspace: `FLUSHALL` and `DBSIZE`.

use crate::peer::Connect;
use crate::router::Router;
use crate::MasterError;
use std::time::Duration;
use tiercache_protocol::{Request, Response};
use tiercache_wire::WireError;

impl<C: Connect> Router<C> {
    /// Deletes every key written before now on every auxiliary; writes after it survive.
    /// Fails unless every auxiliary did it. Returns the keys deleted (each copy counted).
    pub async fn flush(&self) -> Result<u64, MasterError> {
        let version = self.hlc.next();
        self.sum_all(Request::Flush { version }, Duration::from_secs(120)).await
    }

    /// Live keys in the cluster, each counted once (on its first owner).
    pub async fn dbsize(&self) -> Result<u64, MasterError> {
        let members = self.view().ring.nodes().to_vec();
        self.sum_all(Request::CountPrimary { members, virtual_nodes: self.cfg.virtual_nodes }, Duration::from_secs(30))
            .await
    }

    async fn sum_all(&self, req: Request, timeout: Duration) -> Result<u64, MasterError> {
        let answers = self.call_all(req, timeout).await;
        if answers.is_empty() {
            return Err(MasterError::NoAuxiliaries);
        }
        let (mut sum, mut errors) = (0, Vec::new());
        let n = answers.len();
        for (node, r) in answers {
            match r {
                Ok(Response::Count(c)) => sum += c,
                Ok(other) => errors.push(WireError::Unexpected(node.addr.id.clone(), format!("{other:?}"))),
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(sum)
        } else {
            Err(MasterError::quorum(n, n - errors.len(), &errors))
        }
    }
}
