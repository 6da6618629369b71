//! The in-memory network of the tests without sockets: the master's peer seam
//! (`Connect`/`Peer`) served by the auxiliary's in-memory peers (`MemPeers`), which hand each
//! request to a real auxiliary data server.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;
use tiercache_auxiliary::peers::MemPeers;
use tiercache_auxiliary::{Auxiliary, DataServer};
use tiercache_master::protocol::{Request, Response};
use tiercache_master::{Connect, Features, Member, Metrics, Peer, Router, RouterConfig, WireError};

/// The master's side of the network.
#[derive(Clone)]
pub struct Net(pub Arc<MemPeers>);

pub struct Link {
    net: Arc<MemPeers>,
    id: String,
    addr: String,
}

impl Peer for Link {
    async fn call(&self, req: &Request, timeout: Duration) -> Result<Response, WireError> {
        self.net.call(&self.id, &self.addr, req, timeout).await
    }
}

impl Connect for Net {
    type Peer = Link;
    fn connect(&self, m: &Member) -> Link {
        Link { net: self.0.clone(), id: m.id.clone(), addr: m.data_addr.clone() }
    }
}

/// The auxiliary `id` as the master lists it.
pub fn member(id: &str) -> Member {
    Member {
        id: id.to_string(),
        http_addr: format!("{id}:8000"),
        data_addr: format!("{id}:7000"),
        features: Features::THIS_RELEASE,
    }
}

/// A data server for `id` on `net`.
pub fn aux(net: &Arc<MemPeers>, id: &str) -> Arc<DataServer> {
    let metrics = Arc::new(Metrics::for_auxiliary(prometheus::Registry::new()).unwrap());
    let s = Auxiliary::in_memory(id, metrics, Arc::new(net.clone()), false);
    net.add(&member(id).data_addr, s.clone());
    s
}

/// A router over the auxiliaries `ids` of `net`: `replicas` copies of each key, `quorum`
/// answers to acknowledge a write or a read.
pub fn router(net: &Arc<MemPeers>, ids: &[&str], replicas: usize, quorum: usize) -> Router<Net> {
    let cfg = RouterConfig {
        replicas,
        write_quorum: quorum,
        read_quorum: quorum,
        virtual_nodes: 64,
        request_timeout: Duration::from_millis(500),
    };
    let metrics = Arc::new(Metrics::for_master(prometheus::Registry::new()).unwrap());
    let r = Router::new(cfg, Net(net.clone()), metrics);
    r.set_members(&ids.iter().map(|id| member(id)).collect::<Vec<_>>());
    r
}
