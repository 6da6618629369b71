//! The master's logic against in-memory peers (no sockets): each wraps a real auxiliary data
//! server (`tiercache_auxiliary::Auxiliary::in_memory`) and can be made to fail, stall, refuse
//! or answer slowly in front of it: quorum, read repair, fallback and suspect marking.
#![allow(clippy::unwrap_used)]

use crate::peer::{Connect, Peer};
use crate::view::NodeStatus;
use crate::{MasterError, ReadResult, Router, RouterConfig};
use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tiercache_auxiliary::peers::MemPeers;
use tiercache_auxiliary::{Auxiliary, DataServer};
use tiercache_placement::{Features, Member};
use tiercache_protocol::{Found, RemoteError, Request, Response};
use tiercache_wire::{Metrics, WireError};

/// How an in-memory auxiliary behaves, in front of its data server.
#[derive(Debug, Clone, PartialEq)]
enum Mode {
    Up,
    /// Refuses connections at once.
    Down,
    /// Never answers: every call runs into its timeout.
    Stalled,
    /// Its data server is recovering (it may have missed writes) until the mode changes.
    Recovering,
    /// Refuses every write with this error.
    Refusing(RemoteError),
    /// Answers, but only after this long.
    Slow(Duration),
}

struct State {
    mode: Mode,
    server: Arc<DataServer>,
    /// The recovery that `Mode::Recovering` began.
    recovery: Option<u64>,
    calls: usize,
    /// Runs once, before the first `Get` of this key is answered: a change that lands
    /// between two reads.
    before_get: Option<(Bytes, Box<dyn FnOnce() + Send>)>,
}

#[derive(Clone)]
struct MemPeer {
    id: String,
    state: Arc<Mutex<State>>,
}

impl Peer for MemPeer {
    async fn call(&self, req: &Request, timeout: Duration) -> Result<Response, WireError> {
        let (mode, server, before) = {
            let mut s = self.state.lock();
            s.calls += 1;
            let before = match (req, &s.before_get) {
                (Request::Get { key }, Some((k, _))) if k == key => s.before_get.take().map(|(_, f)| f),
                _ => None,
            };
            (s.mode.clone(), s.server.clone(), before)
        };
        if let Some(f) = before {
            f();
        }
        match &mode {
            Mode::Down => return Err(WireError::Down(self.id.clone())),
            Mode::Stalled => {
                tokio::time::sleep(timeout).await;
                return Err(WireError::Timeout(self.id.clone()));
            }
            Mode::Refusing(e) if !matches!(req, Request::Get { .. }) => {
                return Err(WireError::Remote(self.id.clone(), e.clone()))
            }
            Mode::Slow(d) => tokio::time::sleep(*d).await,
            _ => {}
        }
        // A write after the node closed them closes the connection.
        server.answer(req).await.ok_or_else(|| WireError::Down(self.id.clone()))
    }
}

/// The in-memory network: one state per auxiliary id; the data servers reach each other
/// (transfers) through `peers`.
#[derive(Default, Clone)]
struct Net {
    states: Arc<Mutex<HashMap<String, Arc<Mutex<State>>>>>,
    peers: Arc<MemPeers>,
}

impl Net {
    fn state(&self, id: &str) -> Arc<Mutex<State>> {
        self.states
            .lock()
            .entry(id.to_string())
            .or_insert_with(|| {
                let metrics = Arc::new(Metrics::for_auxiliary(prometheus::Registry::new()).unwrap());
                let server = Auxiliary::in_memory(id, metrics, Arc::new(self.peers.clone()), false);
                self.peers.add(&format!("{id}:1"), server.clone());
                Arc::new(Mutex::new(State { mode: Mode::Up, server, recovery: None, calls: 0, before_get: None }))
            })
            .clone()
    }
    fn set(&self, id: &str, mode: Mode) {
        let state = self.state(id);
        let mut s = state.lock();
        match (&s.mode, &mode) {
            (Mode::Recovering, Mode::Recovering) => {}
            (_, Mode::Recovering) => s.recovery = Some(s.server.recovery.begin("test")),
            (Mode::Recovering, _) => {
                if let Some(epoch) = s.recovery.take() {
                    s.server.recovery.finish(epoch);
                }
            }
            _ => {}
        }
        s.mode = mode;
    }
    /// Runs `f` once, before `id` answers its next `Get` of `key`.
    fn before_get(&self, id: &str, key: &str, f: impl FnOnce() + Send + 'static) {
        self.state(id).lock().before_get = Some((Bytes::copy_from_slice(key.as_bytes()), Box::new(f)));
    }
    fn calls(&self, id: &str) -> usize {
        self.state(id).lock().calls
    }
    /// Whether the data server of `id` answers as recovering.
    fn recovering(&self, id: &str) -> bool {
        self.state(id).lock().server.recovery.recovering()
    }
    fn value(&self, id: &str, key: &str) -> Option<Found> {
        let server = self.state(id).lock().server.clone();
        let now = server.store.now_ms();
        server.store.get(key.as_bytes()).map(|e| Found {
            ttl_ms: e.remaining_ttl_ms(now),
            value: e.value,
            version: e.version,
            expiry_seq: e.expiry_seq,
        })
    }
    /// Forgets everything `id` holds (as a process that restarted empty).
    fn clear(&self, id: &str) {
        let store = self.state(id).lock().server.store.clone();
        for shard in 0..store.shard_count() {
            for (key, e) in store.shard_entries(shard) {
                store.remove_if_version(&key, e.version);
            }
        }
    }
    fn put_raw(&self, id: &str, key: &str, value: &str, version: u64) {
        let server = self.state(id).lock().server.clone();
        let (key, value) = (Bytes::copy_from_slice(key.as_bytes()), Bytes::copy_from_slice(value.as_bytes()));
        server.store.put(key, value, version, 0).unwrap();
    }
}

impl Connect for Net {
    type Peer = MemPeer;
    fn connect(&self, addr: &Member) -> MemPeer {
        MemPeer { id: addr.id.clone(), state: self.state(&addr.id) }
    }
}

fn addrs(ids: &[&str]) -> Vec<Member> {
    ids.iter()
        .map(|id| Member {
            id: id.to_string(),
            data_addr: format!("{id}:1"),
            http_addr: format!("{id}:2"),
            features: Features::THIS_RELEASE,
        })
        .collect()
}

fn router(net: &Net, ids: &[&str], replicas: usize, write_quorum: usize, read_quorum: usize) -> Router<Net> {
    router_on(net, ids, (replicas, write_quorum, read_quorum), Arc::new(tiercache_protocol::SystemClock))
}

/// A router whose marks and fallback windows follow `clock`.
fn router_on(
    net: &Net,
    ids: &[&str],
    (replicas, write_quorum, read_quorum): (usize, usize, usize),
    clock: Arc<dyn tiercache_protocol::Clock>,
) -> Router<Net> {
    let cfg = RouterConfig {
        replicas,
        write_quorum,
        read_quorum,
        virtual_nodes: 64,
        request_timeout: Duration::from_millis(200),
    };
    let metrics = Arc::new(Metrics::for_master(prometheus::Registry::new()).unwrap());
    let r = Router::new(cfg, net.clone(), metrics).with_clock(clock);
    r.set_members(&addrs(ids));
    r
}

/// The owners of `key` in ring order.
fn owners(r: &Router<Net>, key: &str) -> Vec<String> {
    r.view().owners(key.as_bytes(), r.replicas()).iter().map(|n| n.addr.id.clone()).collect()
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn hit(s: &str) -> ReadResult {
    ReadResult::Hit(b(s))
}

/// Lets spawned repairs run.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(20)).await;
}

mod config;
mod reads;
mod writes;
