//! The master's logic against in-memory peers that fail, stall, recover and hold old versions
//! (no sockets): quorum, read repair, fallback and suspect marking.
#![allow(clippy::unwrap_used)]

use crate::peer::{Connect, Peer};
use crate::view::NodeStatus;
use crate::{MasterError, ReadResult, Router, RouterConfig};
use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tiercache_placement::{Features, Member};
use tiercache_protocol::{Found, RemoteError, Request, Response};
use tiercache_wire::{Metrics, WireError};

/// How an in-memory auxiliary behaves.
#[derive(Debug, Clone, PartialEq)]
enum Mode {
    Up,
    /// Refuses connections at once.
    Down,
    /// Never answers: every call runs into its timeout.
    Stalled,
    /// Answers reads as a node catching up.
    Recovering,
    /// Refuses every write with this error.
    Refusing(RemoteError),
    /// Answers, but only after this long.
    Slow(Duration),
}

struct State {
    mode: Mode,
    data: HashMap<Bytes, Found>,
    calls: usize,
}

#[derive(Clone)]
struct MemPeer {
    id: String,
    state: Arc<Mutex<State>>,
}

fn apply(data: &mut HashMap<Bytes, Found>, key: &Bytes, f: Found) -> bool {
    let newer = data.get(key).is_none_or(|old| f.stamp().supersedes(&old.stamp()));
    if newer {
        data.insert(key.clone(), f);
    }
    newer
}

impl Peer for MemPeer {
    async fn call(&self, req: &Request, timeout: Duration) -> Result<Response, WireError> {
        let mode = {
            let mut s = self.state.lock();
            s.calls += 1;
            s.mode.clone()
        };
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
        let mut s = self.state.lock();
        Ok(match req {
            Request::Get { key } => {
                let f = s.data.get(key).cloned();
                if mode == Mode::Recovering {
                    Response::Recovering(f)
                } else {
                    Response::Value(f)
                }
            }
            Request::Put { key, value, version, ttl_ms } => {
                let f = Found { value: Some(value.clone()), version: *version, ttl_ms: *ttl_ms, expiry_seq: 0 };
                Response::Applied(u64::from(apply(&mut s.data, key, f)))
            }
            Request::Remove { key, version } => {
                let existed = s.data.get(key).is_some_and(|f| f.value.is_some());
                let applied =
                    apply(&mut s.data, key, Found { value: None, version: *version, ttl_ms: 0, expiry_seq: 0 });
                Response::Removed { existed, applied }
            }
            Request::Delete { key, version } => {
                let existed = s.data.get(key).is_some_and(|f| f.value.is_some());
                apply(&mut s.data, key, Found { value: None, version: *version, ttl_ms: 0, expiry_seq: 0 });
                Response::Deleted { existed }
            }
            Request::PutBatch { entries } => {
                let n = entries
                    .iter()
                    .filter(|e| {
                        let f = Found {
                            value: e.value.clone(),
                            version: e.version,
                            ttl_ms: e.ttl_ms,
                            expiry_seq: e.expiry_seq,
                        };
                        apply(&mut s.data, &e.key, f)
                    })
                    .count();
                Response::Applied(n as u64)
            }
            // Like the real auxiliary: a recovering one does not run a step from its own copy.
            Request::Apply { .. } if mode == Mode::Recovering => Response::Recovering(None),
            Request::Apply { key, op: tiercache_protocol::Op::IncrBy(d), version }
            | Request::ApplyReconciled { key, op: tiercache_protocol::Op::IncrBy(d), version, .. } => {
                if let Request::ApplyReconciled { base: Some(base), .. } = req {
                    apply(&mut s.data, key, base.clone());
                }
                let old = s.data.get(key).cloned();
                let n: i64 = old
                    .as_ref()
                    .and_then(|f| f.value.as_ref())
                    .map_or(0, |v| String::from_utf8_lossy(v).parse().unwrap());
                let version = (*version).max(old.map_or(0, |f| f.version) + 1);
                let f = Found { value: Some(Bytes::from((n + d).to_string())), version, ttl_ms: 0, expiry_seq: 0 };
                s.data.insert(key.clone(), f.clone());
                Response::Updated { previous: None, written: Some(f) }
            }
            Request::Recover => {
                s.mode = Mode::Recovering;
                Response::Recovering(None)
            }
            _ => Response::Rebalanced { moved: 0, dropped: 0 },
        })
    }
}

/// The in-memory network: one state per auxiliary id.
#[derive(Default, Clone)]
struct Net(Arc<Mutex<HashMap<String, Arc<Mutex<State>>>>>);

impl Net {
    fn state(&self, id: &str) -> Arc<Mutex<State>> {
        self.0
            .lock()
            .entry(id.to_string())
            .or_insert_with(|| Arc::new(Mutex::new(State { mode: Mode::Up, data: HashMap::new(), calls: 0 })))
            .clone()
    }
    fn set(&self, id: &str, mode: Mode) {
        self.state(id).lock().mode = mode;
    }
    fn calls(&self, id: &str) -> usize {
        self.state(id).lock().calls
    }
    fn value(&self, id: &str, key: &str) -> Option<Found> {
        self.state(id).lock().data.get(key.as_bytes()).cloned()
    }
    fn put_raw(&self, id: &str, key: &str, value: &str, version: u64) {
        let f = Found { value: Some(Bytes::copy_from_slice(value.as_bytes())), version, ttl_ms: 0, expiry_seq: 0 };
        self.state(id).lock().data.insert(Bytes::copy_from_slice(key.as_bytes()), f);
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
