//! Quorum reads, repair, fallback while keys move, and owners that are recovering.

use super::*;
use tiercache_protocol::ManualClock;

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
    net.clear("b");
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
async fn a_suspect_mark_ends_on_the_clock_and_the_owner_is_asked_first_again() {
    let (net, clock) = (Net::default(), Arc::new(ManualClock::new(1_000_000)));
    let r = router_on(&net, &["a", "b", "c"], (2, 2, 1), clock.clone());
    r.put(b("k"), b("v"), 0).await.unwrap();
    let o = owners(&r, "k");
    net.set(&o[0], Mode::Down);
    assert_eq!(r.get(b("k")).await.unwrap(), hit("v"));
    net.set(&o[0], Mode::Up);
    clock.advance(crate::view::SUSPECT_FOR_MS - 1);
    assert_eq!(r.view().nodes[&o[0]].status(), NodeStatus::Suspect);
    clock.advance(1);
    assert_eq!(r.view().nodes[&o[0]].status(), NodeStatus::Up);
    let before = net.calls(&o[0]);
    assert_eq!(r.get(b("k")).await.unwrap(), hit("v"));
    assert_eq!(net.calls(&o[0]), before + 1, "the first owner answers reads again");
}

#[tokio::test]
async fn reads_fall_back_to_the_previous_owners_only_while_keys_move() {
    let (net, clock) = (Net::default(), Arc::new(ManualClock::new(1_000_000)));
    let r = router_on(&net, &["a"], (1, 1, 1), clock.clone());
    r.set_members(&addrs(&["a", "b"]));
    let key = (0..).map(|i| format!("k{i}")).find(|k| owners(&r, k) == ["b"]).unwrap();
    net.put_raw("a", &key, "v", 3);
    clock.advance(crate::view::FALLBACK_MS - 1);
    assert_eq!(r.get(b(&key)).await.unwrap(), hit("v"), "still moving: the previous owner is asked");
    settle().await;
    net.clear("b");
    clock.advance(1);
    assert_eq!(r.get(b(&key)).await.unwrap(), ReadResult::Miss, "the move is over: only the owners count");
}
