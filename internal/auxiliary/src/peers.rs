//! The seam in front of the network for the auxiliary's own calls to its peers (the catch-up
//! pull, rebalance transfers, the hand-off at a stop), of the same shape as the master's
//! (`Connect` makes a peer, a peer answers `call`): in production the internal protocol
//! ([`WirePeers`]); in tests [`MemPeers`], which hands each request to the peer's real
//! [`DataServer`], so transfers, hand-off and catch-up run against the real thing without
//! sockets.

use crate::DataServer;
use futures::future::BoxFuture;
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tiercache_protocol::{Request, Response};
use tiercache_wire::{AuxClient, WireError};
use tokio::runtime::Handle;

/// One peer auxiliary, as this node's logic calls it.
pub trait PeerLink: Send + Sync {
    /// Sends one request and waits for its answer, at most `timeout`.
    fn call<'a>(&'a self, req: &'a Request, timeout: Duration) -> BoxFuture<'a, Result<Response, WireError>>;
}

/// Makes the link to a peer (connections may be made lazily).
pub trait Peers: Send + Sync + 'static {
    /// A link to the auxiliary `id`, whose data port is `addr`.
    fn connect(&self, id: &str, addr: &str) -> Box<dyn PeerLink>;
}

/// Production peers: the internal protocol, one connection per link.
pub struct WirePeers {
    /// The shared secret.
    pub token: String,
    /// The runtime the connections run on.
    pub rt: Handle,
}

impl Peers for WirePeers {
    fn connect(&self, id: &str, addr: &str) -> Box<dyn PeerLink> {
        // The timeout is passed per call; the client's own default is unused.
        Box::new(AuxClient::new(&self.rt, id, addr, &self.token, 1, Duration::from_secs(30)))
    }
}

impl PeerLink for AuxClient {
    fn call<'a>(&'a self, req: &'a Request, timeout: Duration) -> BoxFuture<'a, Result<Response, WireError>> {
        Box::pin(self.call_with_timeout(req, timeout))
    }
}

/// In-memory peers for tests: data servers by data address. A request to an address with no
/// server fails as a refused connection does ([`WireError::Down`]).
#[derive(Default)]
pub struct MemPeers {
    servers: RwLock<HashMap<String, Arc<DataServer>>>,
}

impl MemPeers {
    /// Serves `addr` with `server` from now on.
    pub fn add(&self, addr: &str, server: Arc<DataServer>) {
        self.servers.write().insert(addr.to_string(), server);
    }

    /// Stops serving `addr`: calls to it fail as to a process that died.
    pub fn remove(&self, addr: &str) {
        self.servers.write().remove(addr);
    }

    /// The server at `addr`, if one serves it.
    pub fn server(&self, addr: &str) -> Option<Arc<DataServer>> {
        self.servers.read().get(addr).cloned()
    }

    /// Calls `id` at `addr` as a connection would (at most `timeout`).
    pub async fn call(&self, id: &str, addr: &str, req: &Request, timeout: Duration) -> Result<Response, WireError> {
        let down = || WireError::Down(id.to_string());
        let server = self.server(addr).ok_or_else(down)?;
        match tokio::time::timeout(timeout, server.answer(req)).await {
            Ok(Some(r)) => Ok(r),
            // A write after the node closed them: its connection closes.
            Ok(None) => Err(down()),
            Err(_) => Err(WireError::Timeout(id.to_string())),
        }
    }
}

struct MemLink {
    peers: Arc<MemPeers>,
    id: String,
    addr: String,
}

impl PeerLink for MemLink {
    fn call<'a>(&'a self, req: &'a Request, timeout: Duration) -> BoxFuture<'a, Result<Response, WireError>> {
        Box::pin(self.peers.call(&self.id, &self.addr, req, timeout))
    }
}

impl Peers for Arc<MemPeers> {
    fn connect(&self, id: &str, addr: &str) -> Box<dyn PeerLink> {
        Box::new(MemLink { peers: self.clone(), id: id.to_string(), addr: addr.to_string() })
    }
}
