//! Operations over the whole cluster's keyspace: `FLUSHALL`, `DBSIZE` and `SCAN`.

use crate::peer::Connect;
use crate::router::Router;
use crate::MasterError;
use bytes::Bytes;
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
        let count = Request::CountPrimary { members, virtual_nodes: self.virtual_nodes() }.placed(self.key_hash());
        self.sum_all(count, Duration::from_secs(30)).await
    }

    /// Live keys in the cluster (each once), how many expire, and their average time to live
    /// in ms, for `INFO keyspace`. Fails unless every auxiliary answered.
    pub async fn census(&self) -> Result<(u64, u64, u64), MasterError> {
        let view = self.view();
        if let Some(old) = view.nodes.values().find(|n| !n.addr.features.transactions) {
            return Err(MasterError::OlderRelease(old.addr.id.clone()));
        }
        let members = view.ring.nodes().to_vec();
        let req = Request::Census { members, virtual_nodes: self.virtual_nodes() }.placed(self.key_hash());
        let answers = self.call_all(req, Duration::from_secs(30)).await;
        if answers.is_empty() {
            return Err(MasterError::NoAuxiliaries);
        }
        let (mut total, mut errors, n) = (tiercache_protocol::Census::default(), Vec::new(), answers.len());
        for (node, r) in answers {
            match r {
                Ok(Response::Census(c)) => {
                    total.keys += c.keys;
                    total.expires += c.expires;
                    total.ttl_ms_sum += c.ttl_ms_sum;
                }
                Ok(other) => errors.push(WireError::Unexpected(node.addr.id.clone(), Box::new(other))),
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            return Err(MasterError::quorum(n, n - errors.len(), &errors));
        }
        Ok((total.keys, total.expires, total.ttl_ms_sum.checked_div(total.expires).unwrap_or(0)))
    }

    /// One step of a cluster-wide `SCAN` from `cursor` (0 to start): at least `count` keys
    /// unless the walk ends, and the next cursor (0 at the end). The cursor names an auxiliary
    /// (by rank of id) and one of its shards; each key is returned by its first owner, so a
    /// key present for the whole walk comes back at least once while the membership stays.
    pub async fn scan(
        &self,
        cursor: u64,
        count: usize,
        pattern: Option<Bytes>,
    ) -> Result<(u64, Vec<Bytes>), MasterError> {
        let view = self.view();
        let mut members = view.ring.nodes().to_vec();
        members.sort();
        let (mut rank, mut shard) = ((cursor >> 16) as usize, (cursor & 0xffff) as u32);
        let mut keys = Vec::new();
        while rank < members.len() && keys.len() < count.max(1) {
            let Some(node) = view.nodes.get(&members[rank]) else { break };
            let req = Request::ScanShard {
                shard,
                members: members.clone(),
                virtual_nodes: self.virtual_nodes(),
                pattern: pattern.clone(),
            }
            .placed(self.key_hash());
            match node.call_with_timeout(&req, Duration::from_secs(10)).await {
                Ok(Response::Keys { keys: found, shards }) => {
                    keys.extend(found);
                    shard += 1;
                    if shard >= shards {
                        (rank, shard) = (rank + 1, 0);
                    }
                }
                Ok(other) => {
                    let e = WireError::Unexpected(node.addr.id.clone(), Box::new(other));
                    return Err(MasterError::quorum(1, 0, &[e]));
                }
                Err(e) => return Err(MasterError::quorum(1, 0, &[e])),
            }
        }
        let next = if rank >= members.len() { 0 } else { (rank as u64) << 16 | u64::from(shard) };
        Ok((next, keys))
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
                Ok(other) => errors.push(WireError::Unexpected(node.addr.id.clone(), Box::new(other))),
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
