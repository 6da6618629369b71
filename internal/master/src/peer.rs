//! The seam in front of the network: the master's logic talks to a [`Peer`], made by a
//! [`Connect`]. In production that is [`WireConnect`] (pooled connections per calling thread);
//! in unit tests an in-memory peer that can fail, stall or answer with old versions.

use parking_lot::RwLock;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tiercache_placement::Member;
use tiercache_protocol::{Request, Response};
use tiercache_wire::{AuxClient, WireError};
use tokio::runtime::Handle;

/// One auxiliary, as the master's logic calls it.
pub trait Peer: Send + Sync + 'static {
    /// Sends one request and waits for its answer, at most `timeout`.
    fn call(&self, req: &Request, timeout: Duration) -> impl Future<Output = Result<Response, WireError>> + Send;
}

/// Makes the peer for an auxiliary that joined the view.
pub trait Connect: Send + Sync + 'static {
    /// The peer type.
    type Peer: Peer;
    /// A peer for `addr` (connections may be made lazily).
    fn connect(&self, addr: &Member) -> Self::Peer;
}

/// Production peers: the internal protocol over pooled connections.
pub struct WireConnect {
    /// Shared secret.
    pub token: String,
    /// Pooled connections per auxiliary and per calling thread.
    pub connections: usize,
}

impl Connect for WireConnect {
    type Peer = WirePeer;

    fn connect(&self, addr: &Member) -> WirePeer {
        WirePeer {
            id: addr.id.clone(),
            data_addr: addr.data_addr.clone(),
            token: self.token.clone(),
            connections: self.connections,
            clients: RwLock::new(Vec::new()),
        }
    }
}

/// One auxiliary over the wire.
pub struct WirePeer {
    id: String,
    data_addr: String,
    token: String,
    connections: usize,
    /// One pooled client per calling thread, created lazily on that thread's runtime: a data
    /// thread then talks to auxiliaries through connections driven by itself, with no
    /// cross-thread wake-up on the hot path. A short list (one entry per thread that called),
    /// searched by a plain comparison: cheaper per call than hashing the thread id.
    clients: RwLock<Vec<(std::thread::ThreadId, Arc<AuxClient>)>>,
}

impl WirePeer {
    fn client(&self) -> Arc<AuxClient> {
        let tid = std::thread::current().id();
        if let Some((_, c)) = self.clients.read().iter().find(|(t, _)| *t == tid) {
            return c.clone();
        }
        // The request timeout is passed per call; the client's own default is unused.
        let c = Arc::new(AuxClient::new(
            &Handle::current(),
            &self.id,
            &self.data_addr,
            &self.token,
            self.connections,
            Duration::from_secs(1),
        ));
        let mut clients = self.clients.write();
        match clients.iter().find(|(t, _)| *t == tid) {
            Some((_, existing)) => existing.clone(),
            None => {
                clients.push((tid, c.clone()));
                c
            }
        }
    }
}

impl Peer for WirePeer {
    async fn call(&self, req: &Request, timeout: Duration) -> Result<Response, WireError> {
        self.client().call_with_timeout(req, timeout).await
    }
}
