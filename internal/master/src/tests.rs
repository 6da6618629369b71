//! The master's logic against in-memory peers that fail, stall, recover and hold old versions
//! (no sockets): quorum, read repair, fallback and suspect marking.
#![allow(clippy::unwrap_used)]

use crate::peer::{Connect, Peer};
use crate::view::{AuxAddr, NodeStatus};
use crate::{MasterError, ReadResult, Router, RouterConfig};
use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
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
    fn connect(&self, addr: &AuxAddr) -> MemPeer {
        MemPeer { id: addr.id.clone(), state: self.state(&addr.id) }
    }
}

fn addrs(ids: &[&str]) -> Vec<AuxAddr> {
    ids.iter()
        .map(|id| AuxAddr {
            id: id.to_string(),
            data_addr: format!("{id}:1"),
            http_addr: format!("{id}:2"),
            transactions: true,
        })
        .collect()
}

fn router(net: &Net, ids: &[&str], replicas: usize, write_quorum: usize, read_quorum: usize) -> Router<Net> {
    let cfg = RouterConfig {
        replicas,
        write_quorum,
        read_quorum,
        virtual_nodes: 64,
        request_timeout: Duration::from_millis(200),
    };
    let metrics = Arc::new(Metrics::for_master(prometheus::Registry::new()).unwrap());
    let r = Router::new(cfg, net.clone(), metrics);
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

#[tokio::test]
async fn a_read_returns_the_newest_version_and_repairs_the_older_owner() {
    let net = Net::default();
    let r = router(&net, &["a", "b", "c"], 2, 1, 2);
    let o = owners(&r, "k");
    net.put_raw(&o[0], "k", "old", 1);
    net.put_raw(&o[1], "k", "new", 2);
    assert_eq!(r.get(b("k")).await.unwrap(), hit("new"));
    settle().await;
    assert_eq!(net.value(&o[0], "k").unwrap().version, 2, "read repair");
}

#[tokio::test]
async fn read_repair_fills_an_owner_that_misses_the_key() {
    let net = Net::default();
    let r = router(&net, &["a", "b"], 2, 1, 2);
    let o = owners(&r, "k");
    net.put_raw(&o[1], "k", "v", 5);
    assert_eq!(r.get(b("k")).await.unwrap(), hit("v"));
    settle().await;
    assert_eq!(net.value(&o[0], "k").unwrap().value, Some(b("v")));
}

#[tokio::test]
async fn a_read_moves_on_when_an_owner_is_down_and_marks_it_suspect() {
    let net = Net::default();
    let r = router(&net, &["a", "b", "c"], 2, 2, 1);
    r.put(b("k"), b("v"), 0).await.unwrap();
    let o = owners(&r, "k");
    net.set(&o[0], Mode::Down);
    assert_eq!(r.get(b("k")).await.unwrap(), hit("v"));
    assert_eq!(r.view().nodes[&o[0]].status(), NodeStatus::Suspect);
    // A suspect owner is asked last: the next read does not call it at all.
    let before = net.calls(&o[0]);
    assert_eq!(r.get(b("k")).await.unwrap(), hit("v"));
    assert_eq!(net.calls(&o[0]), before);
}

#[tokio::test]
async fn a_stalled_owner_times_out_and_the_read_is_answered_by_the_next() {
    let net = Net::default();
    let r = router(&net, &["a", "b"], 2, 2, 1);
    r.put(b("k"), b("v"), 0).await.unwrap();
    let o = owners(&r, "k");
    net.set(&o[0], Mode::Stalled);
    assert_eq!(r.get(b("k")).await.unwrap(), hit("v"));
    assert_eq!(r.view().nodes[&o[0]].status(), NodeStatus::Suspect);
}

#[tokio::test]
async fn a_recovering_owner_is_heard_but_not_counted() {
    let net = Net::default();
    let r = router(&net, &["a", "b", "c"], 2, 2, 1);
    let o = owners(&r, "k");
    // The first owner missed the last write: it holds an older version and is catching up.
    net.put_raw(&o[0], "k", "old", 1);
    net.put_raw(&o[1], "k", "new", 2);
    net.set(&o[0], Mode::Recovering);
    assert_eq!(r.get(b("k")).await.unwrap(), hit("new"), "READ_QUORUM=1 must not stop at a recovering owner");
    assert_eq!(net.calls(&o[1]), 1);
}

#[tokio::test]
async fn when_every_owner_is_recovering_the_newest_heard_is_returned() {
    let net = Net::default();
    let r = router(&net, &["a", "b"], 2, 1, 1);
    let o = owners(&r, "k");
    net.put_raw(&o[0], "k", "old", 1);
    net.put_raw(&o[1], "k", "new", 2);
    net.set(&o[0], Mode::Recovering);
    net.set(&o[1], Mode::Recovering);
    assert_eq!(r.get(b("k")).await.unwrap(), hit("new"));
}

#[tokio::test]
async fn a_write_counts_its_quorum_among_the_owners_that_can_answer() {
    let net = Net::default();
    let r = router(&net, &["a", "b", "c"], 2, 2, 1);
    let o = owners(&r, "k");
    net.set(&o[1], Mode::Down);
    r.put(b("k"), b("v"), 0).await.unwrap();
    assert_eq!(net.value(&o[0], "k").unwrap().value, Some(b("v")));
    assert!(net.value(&o[1], "k").is_none());
}

#[tokio::test]
async fn an_owner_that_only_times_out_still_counts_toward_the_write_quorum() {
    // It may be cut off from this master alone and serve another master's reads: a write it
    // lacks must not be acknowledged at WRITE_QUORUM=2, nor once it is marked suspect.
    let net = Net::default();
    let r = router(&net, &["a", "b", "c"], 2, 2, 1);
    let o = owners(&r, "k");
    net.set(&o[1], Mode::Stalled);
    for _ in 0..2 {
        assert!(r.put(b("k"), b("v"), 0).await.is_err(), "acknowledged without a live owner");
    }
    // Its primary duty does not pass either (it may be running steps for another master).
    net.set(&o[1], Mode::Up);
    net.set(&o[0], Mode::Stalled);
    let r1 = router(&net, &["a", "b", "c"], 2, 1, 1);
    assert!(r1.put(b("k"), b("w"), 0).await.is_err(), "acknowledged without the primary");
}

#[tokio::test]
async fn a_write_fails_when_no_owner_answers() {
    let net = Net::default();
    let r = router(&net, &["a", "b"], 2, 1, 1);
    net.set("a", Mode::Down);
    net.set("b", Mode::Down);
    assert!(matches!(r.put(b("k"), b("v"), 0).await, Err(MasterError::Quorum { got: 0, .. })));
}

#[tokio::test]
async fn a_write_does_not_wait_for_a_stalled_owner_once_the_quorum_is_in() {
    let net = Net::default();
    let r = router(&net, &["a", "b"], 2, 1, 1);
    let o = owners(&r, "k");
    net.set(&o[1], Mode::Stalled);
    let started = std::time::Instant::now();
    r.put(b("k"), b("v"), 0).await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(150), "waited {:?} for the stalled owner", started.elapsed());
}

#[tokio::test]
async fn a_refusal_by_the_owners_is_typed_not_a_string() {
    let net = Net::default();
    let r = router(&net, &["a", "b"], 2, 1, 1);
    let too_large = RemoteError::TooLarge { size: 10, limit: 5 };
    net.set("a", Mode::Refusing(too_large.clone()));
    net.set("b", Mode::Refusing(too_large.clone()));
    match r.put(b("k"), b("v"), 0).await {
        Err(MasterError::Refused { error, .. }) => assert_eq!(error, too_large),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_delete_leaves_a_tombstone_that_an_older_write_cannot_undo() {
    let net = Net::default();
    let r = router(&net, &["a", "b"], 2, 2, 1);
    r.put(b("k"), b("v"), 0).await.unwrap();
    assert!(r.delete(b("k")).await.unwrap());
    assert_eq!(r.get(b("k")).await.unwrap(), ReadResult::Miss);
    assert!(!r.delete(b("k")).await.unwrap(), "nothing live to delete");
    // A late copy of the first write (version 1) does not bring the key back.
    for o in owners(&r, "k") {
        let late = Request::Put { key: b("k"), value: b("v"), version: 1, ttl_ms: 0 };
        r.view().nodes[&o].call(&late).await.unwrap();
    }
    assert_eq!(r.get(b("k")).await.unwrap(), ReadResult::Miss);
}

#[tokio::test]
async fn a_miss_on_the_new_owner_falls_back_to_the_previous_one_and_copies_the_key() {
    let net = Net::default();
    let r = router(&net, &["a"], 1, 1, 1);
    r.set_members(&addrs(&["a", "b"]));
    // A key that moved from a to b.
    let key = (0..).map(|i| format!("k{i}")).find(|k| owners(&r, k) == ["b"]).unwrap();
    net.put_raw("a", &key, "v", 3);
    assert_eq!(r.get(b(&key)).await.unwrap(), hit("v"));
    settle().await;
    assert_eq!(net.value("b", &key).unwrap().version, 3, "copied to its new owner");
}

#[tokio::test]
async fn no_fallback_once_the_previous_owner_is_gone_and_the_move_is_old() {
    let net = Net::default();
    let r = router(&net, &["a", "b"], 1, 1, 1);
    r.set_members(&addrs(&["b"]));
    let key = (0..).map(|i| format!("k{i}")).find(|k| owners(&r, k) == ["b"]).unwrap();
    net.put_raw("a", &key, "v", 3);
    // Within the departed window a is still asked...
    assert_eq!(r.get(b(&key)).await.unwrap(), hit("v"));
    // ...and a node that fails is skipped without delaying the miss.
    net.state("b").lock().data.clear();
    net.set("a", Mode::Down);
    assert_eq!(r.get(b(&key)).await.unwrap(), ReadResult::Miss);
}

#[tokio::test]
async fn a_recovering_owner_cannot_bring_back_a_value_the_counted_owners_no_longer_hold() {
    let net = Net::default();
    let r = router(&net, &["a", "b"], 2, 1, 1);
    let o = owners(&r, "k");
    // The recovering owner kept an old value; since then the key expired or its tombstone
    // was purged on the owner that stayed: that owner's miss is the answer.
    net.put_raw(&o[0], "k", "old", 1);
    net.set(&o[0], Mode::Recovering);
    assert_eq!(r.get(b("k")).await.unwrap(), ReadResult::Miss);
}

#[tokio::test]
async fn a_recovering_owner_alone_is_not_enough_when_another_owner_is_unreachable() {
    let net = Net::default();
    let r = router(&net, &["a", "b"], 2, 1, 1);
    let o = owners(&r, "k");
    net.put_raw(&o[0], "k", "old", 1);
    net.set(&o[0], Mode::Recovering);
    net.set(&o[1], Mode::Down);
    assert!(
        matches!(r.get(b("k")).await, Err(MasterError::Quorum { .. })),
        "the unreachable owner may hold the newer write"
    );
}

#[tokio::test]
async fn an_owner_written_around_is_told_to_catch_up_and_not_counted_meanwhile() {
    let net = Net::default();
    let r = router(&net, &["a", "b"], 2, 2, 1);
    let o = owners(&r, "k");
    r.put(b("k"), b("v1"), 0).await.unwrap();
    // A blip too short for the node to notice: the write is acknowledged by the other owner.
    net.set(&o[0], Mode::Down);
    r.put(b("k"), b("v2"), 0).await.unwrap();
    net.set(&o[0], Mode::Up);
    assert_eq!(net.value(&o[0], "k").unwrap().value, Some(b("v1")), "it missed the write");
    assert_eq!(r.get(b("k")).await.unwrap(), hit("v2"), "its old value does not count");
    // Once reachable it is told, and answers as recovering to every master from then on.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(net.state(&o[0]).lock().mode, Mode::Recovering);
}

#[tokio::test]
async fn increments_from_two_masters_run_on_the_primary_and_reach_the_replica() {
    let net = Net::default();
    let (m1, m2) = (router(&net, &["a", "b", "c"], 2, 2, 1), router(&net, &["a", "b", "c"], 2, 2, 1));
    let o = owners(&m1, "n");
    for _ in 0..50 {
        let (x, y) = tokio::join!(
            m1.apply(b("n"), tiercache_protocol::Op::IncrBy(1)),
            m2.apply(b("n"), tiercache_protocol::Op::IncrBy(1))
        );
        x.unwrap();
        y.unwrap();
    }
    assert_eq!(net.value(&o[0], "n").unwrap().value, Some(b("100")), "no increment lost on the primary");
    assert_eq!(net.value(&o[1], "n").unwrap().value, Some(b("100")), "replicated with its version");
    // The primary down: the next owner is the primary now.
    net.set(&o[0], Mode::Down);
    m1.apply(b("n"), tiercache_protocol::Op::IncrBy(1)).await.unwrap();
    assert_eq!(net.value(&o[1], "n").unwrap().value, Some(b("101")));
}

#[tokio::test]
async fn a_write_is_acknowledged_only_once_the_primary_holds_it() {
    let net = Net::default();
    let r = router(&net, &["a", "b"], 2, 1, 1);
    let o = owners(&r, "n");
    // The other owner answers first; WRITE_QUORUM=1 is met by it alone.
    net.set(&o[0], Mode::Slow(Duration::from_millis(100)));
    r.put(b("n"), b("10"), 0).await.unwrap();
    assert_eq!(net.value(&o[0], "n").unwrap().value, Some(b("10")), "acknowledged before the primary had it");
    // So the primary's read-modify-write step starts from every acknowledged write.
    let (_, written) = r.apply(b("n"), tiercache_protocol::Op::IncrBy(1)).await.unwrap();
    assert_eq!(written.unwrap().value, Some(b("11")));

    // An unreachable primary hands the duty to the next owner, where apply then runs.
    net.set(&o[0], Mode::Down);
    r.put(b("n"), b("20"), 0).await.unwrap();
    let (_, written) = r.apply(b("n"), tiercache_protocol::Op::IncrBy(1)).await.unwrap();
    assert_eq!(written.unwrap().value, Some(b("21")));
    assert_eq!(net.value(&o[1], "n").unwrap().value, Some(b("21")));
}

#[tokio::test]
async fn a_read_sees_the_connections_own_write_while_the_primary_is_recovering() {
    let net = Net::default();
    let r = router(&net, &["a", "b"], 2, 1, 1);
    let o = owners(&r, "k");
    // The primary holds the acknowledged write but is recovering, so it is asked last; the
    // other owner has not received the write yet.
    net.set(&o[0], Mode::Recovering);
    assert_eq!(r.get(b("k")).await.unwrap(), ReadResult::Miss, "marks the primary as recovering");
    net.put_raw(&o[0], "k", "mine", 10 << 16);
    assert_eq!(r.read(b("k")).await.unwrap(), None, "without a floor the other owner's miss counts");
    let found = r.read_at_least(b("k"), 10 << 16).await.unwrap().unwrap();
    assert_eq!(found.value, Some(b("mine")), "an answer older than the floor does not count");
    // The other owner catches up: its answer counts again.
    net.put_raw(&o[1], "k", "mine", 10 << 16);
    net.set(&o[0], Mode::Down);
    assert_eq!(r.read_at_least(b("k"), 10 << 16).await.unwrap().unwrap().value, Some(b("mine")));
}

#[tokio::test]
async fn a_recovering_primary_increments_from_the_newest_copy_of_the_other_owners() {
    let net = Net::default();
    let r = router(&net, &["a", "b", "c"], 2, 2, 1);
    let o = owners(&r, "n");
    // The primary comes back from a freeze with its old value; the stand-in counted on.
    net.put_raw(&o[0], "n", "5", 1 << 16);
    net.put_raw(&o[1], "n", "9", 5 << 16);
    net.set(&o[0], Mode::Recovering);
    let (_, written) = r.apply(b("n"), tiercache_protocol::Op::IncrBy(1)).await.unwrap();
    assert_eq!(written.unwrap().value, Some(b("10")), "no acknowledged increment lost");
    assert_eq!(net.value(&o[1], "n").unwrap().value, Some(b("10")));
    // No other owner answers: the step refuses rather than guess.
    net.set(&o[1], Mode::Down);
    assert!(r.apply(b("n"), tiercache_protocol::Op::IncrBy(1)).await.is_err());
    assert_eq!(net.value(&o[0], "n").unwrap().value, Some(b("10")), "not applied");
}

/// A `WriteRecord` that counts its calls and lists `registered`, or fails.
struct Record {
    calls: Arc<Mutex<usize>>,
    registered: Result<Vec<String>, String>,
}

impl crate::WriteRecord for Record {
    fn record(&self) -> futures::future::BoxFuture<'static, Result<Vec<String>, String>> {
        *self.calls.lock() += 1;
        let r = self.registered.clone();
        Box::pin(async move { r })
    }
}

#[tokio::test]
async fn the_first_write_is_recorded_once_and_reaches_every_auxiliary_registered_then() {
    let net = Net::default();
    let calls = Arc::new(Mutex::new(0));
    let r = router(&net, &["a", "b"], 2, 1, 1);
    r.set_write_record(Arc::new(Record { calls: calls.clone(), registered: Err("no session".into()) }));
    assert!(matches!(r.put(b("k"), b("v"), 0).await, Err(MasterError::NotRecorded(_))), "not recorded: not written");
    assert!(net.value("a", "k").is_none() && net.value("b", "k").is_none());
    // "c" registered, but this master's placement does not have it yet: the write waits, then fails.
    r.set_write_record(Arc::new(Record { calls: calls.clone(), registered: Ok(vec!["a".into(), "c".into()]) }));
    assert!(matches!(r.put(b("k"), b("v"), 0).await, Err(MasterError::NotRecorded(_))));
    r.set_members(&addrs(&["a", "b", "c"]));
    r.put(b("k"), b("v"), 0).await.unwrap();
    r.put(b("k"), b("w"), 0).await.unwrap();
    assert_eq!(*calls.lock(), 3, "recorded once, then no more calls");
}
