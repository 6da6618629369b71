//! The master's router over real auxiliary data servers, without sockets: the master's peer
//! seam (`Connect`/`Peer`) is served by the auxiliary's in-memory peers (`MemPeers`), which
//! the auxiliaries also use to reach each other, so quorum writes, steps, transactions and a
//! rebalance run the real code on both sides.
#![allow(clippy::unwrap_used)]

mod memnet;

use bytes::Bytes;
use memnet::{aux, member};
use std::sync::Arc;
use std::time::Duration;
use tiercache_auxiliary::peers::MemPeers;
use tiercache_auxiliary::DataServer;
use tiercache_master::protocol::Op;
use tiercache_master::ReadResult;

/// Three copies of each key, two to acknowledge a write or a read.
fn router(net: &Arc<MemPeers>, ids: &[&str]) -> tiercache_master::Router<memnet::Net> {
    memnet::router(net, ids, 3, 2)
}

fn value(s: &DataServer, key: &str) -> Option<Bytes> {
    s.store.get(key.as_bytes()).and_then(|e| e.value)
}

/// Whether every store holds `want` for `key` within a second: a write is acknowledged once a
/// quorum holds it, and reaches the last owner a moment later, in the background.
async fn all_hold(s: &[Arc<DataServer>], key: &str, want: &str) -> bool {
    for _ in 0..100 {
        if s.iter().all(|s| value(s, key).as_deref() == Some(want.as_bytes())) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

/// A write reaches every owner's store; with one owner gone it is acknowledged by the other
/// two; once back, the newest value is what a read answers.
#[tokio::test]
async fn writes_reach_the_real_stores_and_an_owner_that_was_gone_is_read_around() {
    let net = Arc::new(MemPeers::default());
    let s: Vec<_> = ["a", "b", "c"].iter().map(|id| aux(&net, id)).collect();
    let r = router(&net, &["a", "b", "c"]);
    r.put(Bytes::from("k"), Bytes::from("one"), 0).await.unwrap();
    assert!(all_hold(&s, "k", "one").await);

    net.remove(&member("c").data_addr);
    r.put(Bytes::from("k"), Bytes::from("two"), 0).await.unwrap();
    assert_eq!(value(&s[2], "k").as_deref(), Some(&b"one"[..]), "c missed the write");
    net.add(&member("c").data_addr, s[2].clone());
    for _ in 0..5 {
        assert_eq!(r.get(Bytes::from("k")).await.unwrap(), ReadResult::Hit(Bytes::from("two")));
    }
}

/// An increment runs on the real primary's step and its result reaches the replicas.
#[tokio::test]
async fn increments_run_on_the_real_primary_and_reach_every_owner() {
    let net = Arc::new(MemPeers::default());
    let s: Vec<_> = ["a", "b", "c"].iter().map(|id| aux(&net, id)).collect();
    let r = router(&net, &["a", "b", "c"]);
    for _ in 0..10 {
        r.apply(Bytes::from("n"), Op::IncrBy(5)).await.unwrap();
    }
    assert!(all_hold(&s, "n", "50").await);
}

/// A write that the real primary keeps behind a newer version (another master's, with a
/// clock ahead) runs there as a step instead: the last write acknowledged is what is read.
#[tokio::test]
async fn a_write_behind_a_newer_version_lands_on_top_of_it() {
    let net = Arc::new(MemPeers::default());
    let s: Vec<_> = ["a", "b", "c"].iter().map(|id| aux(&net, id)).collect();
    let r = router(&net, &["a", "b", "c"]);
    // Another master wrote far in this one's future.
    let ahead = u64::MAX / 2;
    for s in &s {
        s.store.put(Bytes::from("k"), Bytes::from("theirs"), ahead, 0).unwrap();
    }
    r.put(Bytes::from("k"), Bytes::from("mine"), 0).await.unwrap();
    assert_eq!(r.get(Bytes::from("k")).await.unwrap(), ReadResult::Hit(Bytes::from("mine")));
    assert!(r.delete(Bytes::from("k")).await.unwrap());
    assert_eq!(r.get(Bytes::from("k")).await.unwrap(), ReadResult::Miss);
}

/// A fourth auxiliary joins: the master's rebalance asks each auxiliary to transfer, and the
/// auxiliaries' real transfers move the keys to it through the same network.
#[tokio::test]
async fn a_rebalance_moves_keys_to_a_new_auxiliary_through_the_real_transfers() {
    let net = Arc::new(MemPeers::default());
    let mut s: Vec<_> = ["a", "b", "c"].iter().map(|id| aux(&net, id)).collect();
    let r = router(&net, &["a", "b", "c"]);
    for i in 0..100 {
        r.put(Bytes::from(format!("k{i}")), Bytes::from(format!("v{i}")), 0).await.unwrap();
    }
    s.push(aux(&net, "d"));
    r.set_members(&["a", "b", "c", "d"].map(member));
    let answers = r.rebalance(vec!["a".into(), "b".into(), "c".into()]).await;
    assert!(answers.iter().all(|(_, a)| a.is_ok()), "{:?}", answers.iter().map(|(_, a)| a).collect::<Vec<_>>());
    let on_d = (0..100).filter(|i| value(&s[3], &format!("k{i}")).is_some()).count();
    assert!(on_d > 0, "no key moved to d");
    for i in 0..100 {
        assert_eq!(r.get(Bytes::from(format!("k{i}"))).await.unwrap(), ReadResult::Hit(Bytes::from(format!("v{i}"))));
    }
}
