//! Transfers, the catch-up pull and a node closing its writes, between real data servers
//! joined by the in-memory peers (`MemPeers`): no sockets, no threads of their own.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use std::sync::Arc;
use tiercache_auxiliary::peers::MemPeers;
use tiercache_auxiliary::{Auxiliary, DataServer, Metrics};
use tiercache_placement::{KeyHash, Member, Settings as Placement};
use tiercache_protocol::{Request, Response, WireEntry};
use tiercache_wire::WireError;

const PLACEMENT: Placement = Placement { virtual_nodes: 64, replicas: 2, key_hash: KeyHash::Whole };

fn addr(id: &str) -> String {
    format!("{id}:7000")
}

/// Data servers `ids` on one in-memory network.
fn servers(ids: &[&str]) -> (Arc<MemPeers>, Vec<Arc<DataServer>>) {
    let net = Arc::new(MemPeers::default());
    let servers = ids
        .iter()
        .map(|id| {
            let metrics = Arc::new(Metrics::for_auxiliary(prometheus::Registry::new()).unwrap());
            let s = Auxiliary::in_memory(id, metrics, Arc::new(net.clone()), false);
            net.add(&addr(id), s.clone());
            s
        })
        .collect();
    (net, servers)
}

fn members(ids: &[&str]) -> Vec<Member> {
    ids.iter().map(|id| Member::auxiliary(*id, addr(id))).collect()
}

fn key(i: usize) -> Bytes {
    Bytes::from(format!("key-{i}"))
}

fn holds(s: &DataServer, i: usize) -> bool {
    s.store.get(&key(i)).is_some_and(|e| e.value.is_some())
}

/// Every key a node held goes to each of its owners under the new members, and the copies it
/// no longer owns are dropped once they are there.
#[tokio::test]
async fn a_transfer_sends_each_key_to_its_owners_and_drops_what_it_no_longer_owns() {
    let ids = ["a", "b", "c"];
    let (_net, s) = servers(&ids);
    for i in 0..300 {
        s[0].store.put(key(i), Bytes::from("v"), 1, 0).unwrap();
    }
    let (moved, dropped) = s[0].ops.transfer(&members(&ids), PLACEMENT, true, &["a".to_string()]).await.unwrap();
    let ring = PLACEMENT.ring(&ids);
    let mut unowned = 0;
    for i in 0..300 {
        let owners = ring.owners(&key(i), 2);
        for (n, id) in ids.iter().enumerate() {
            assert_eq!(holds(&s[n], i), owners.contains(id), "key {i} on {id} (owners {owners:?})");
        }
        unowned += usize::from(!owners.contains(&"a"));
    }
    assert!(unowned > 0, "some keys must leave a");
    assert_eq!(dropped, unowned as u64);
    assert!(moved >= 300 - unowned as u64, "moved {moved}");
}

/// A transfer to a peer that is gone fails naming it, and keeps every copy: nothing is dropped
/// that its owners may not hold.
#[tokio::test]
async fn a_transfer_to_a_peer_that_is_gone_names_it_and_drops_nothing() {
    let ids = ["a", "b", "c"];
    let (net, s) = servers(&ids);
    for i in 0..300 {
        s[0].store.put(key(i), Bytes::from("v"), 1, 0).unwrap();
    }
    net.remove(&addr("c"));
    let e = s[0].ops.transfer(&members(&ids), PLACEMENT, true, &["a".to_string()]).await.unwrap_err();
    assert_eq!(e.target, "c");
    assert!(matches!(e.cause, WireError::Down(ref id) if id == "c"), "{:?}", e.cause);
    assert!((0..300).all(|i| holds(&s[0], i)), "a dropped a key");
}

/// The catch-up pull: a node asks a peer for what it owns, the peer's real transfer sends it
/// back through the same network.
#[tokio::test]
async fn a_pull_brings_a_node_every_key_it_owns_from_a_peer() {
    let ids = ["a", "b"];
    let (_net, s) = servers(&ids);
    for i in 0..200 {
        s[0].store.put(key(i), Bytes::from(format!("v{i}")), 5, 0).unwrap();
    }
    let one_copy = Placement { replicas: 1, ..PLACEMENT };
    let got = s[1].ops.pull_from(&members(&ids), one_copy, &Member::auxiliary("a", addr("a"))).await.unwrap();
    let ring = one_copy.ring(&ids);
    let owned: Vec<usize> = (0..200).filter(|i| ring.owners(&key(*i), 1) == ["b"]).collect();
    assert!(!owned.is_empty());
    assert_eq!(got, owned.len() as u64);
    for i in owned {
        assert_eq!(s[1].store.get(&key(i)).unwrap().value.unwrap(), format!("v{i}"), "key {i}");
    }
}

/// A node that closed its writes (it hands off for good) is, to a peer, a closed connection.
#[tokio::test]
async fn a_node_that_closed_its_writes_refuses_a_batch_as_a_closed_connection() {
    let (net, s) = servers(&["a", "b"]);
    s[1].close_writes();
    let entry = WireEntry { key: key(1), value: Some(Bytes::from("v")), version: 1, ttl_ms: 0, expiry_seq: 0 };
    let req = Request::PutBatch { entries: vec![entry] };
    let e = net.call("b", &addr("b"), &req, std::time::Duration::from_secs(1)).await.unwrap_err();
    assert!(matches!(e, WireError::Down(_)), "{e:?}");
    assert_eq!(net.call("a", &addr("a"), &req, std::time::Duration::from_secs(1)).await.unwrap(), Response::Applied(1));
}
