//! Writes and their quorum, deletes, owners written around, steps on the primary, and the
//! record of the first write.

use super::*;

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
async fn a_step_does_not_wait_for_a_stalled_replica_once_the_quorum_is_in() {
    let net = Net::default();
    let r = router(&net, &["a", "b"], 2, 1, 1);
    let o = owners(&r, "n");
    net.set(&o[1], Mode::Stalled);
    let started = std::time::Instant::now();
    r.apply(b("n"), tiercache_protocol::Op::IncrBy(1)).await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(150), "waited {:?} for the stalled replica", started.elapsed());
    assert_eq!(net.value(&o[0], "n").unwrap().value, Some(b("1")));
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
    assert!(net.recovering(&o[0]));
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
    fn record(&self) -> futures::future::BoxFuture<'static, Result<Vec<String>, crate::PortError>> {
        *self.calls.lock() += 1;
        let r = self.registered.clone().map_err(crate::PortError::from);
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

#[tokio::test]
async fn a_recovering_primary_takes_the_other_owners_copies_of_a_transactions_keys_as_they_stood_together() {
    let net = Net::default();
    let r = router(&net, &["a", "b", "c"], 2, 2, 1);
    let (ka, kb) = ("{t}:a", "{t}:b");
    let o = owners(&r, ka);
    assert_eq!(o, owners(&r, kb), "one hash group");
    // The other owner holds both counters at 5; the primary comes back from a freeze with
    // older copies, so it commits on top of the other owner's.
    for k in [ka, kb] {
        net.put_raw(&o[0], k, "1", 5);
        net.put_raw(&o[1], k, "5", 10);
    }
    net.set(&o[0], Mode::Recovering);
    // Another master's transaction reaches the other owner between the reads of the two keys.
    let (net2, other) = (net.clone(), o[1].clone());
    net.before_get(&o[1], kb, move || {
        net2.put_raw(&other, ka, "6", 20);
        net2.put_raw(&other, kb, "6", 20);
    });
    let read = r.tx_read(&[b(ka), b(kb)]).await.unwrap();
    let mut overlay = read.overlay();
    let value = |o: &mut crate::tx::Overlay, k: &str| o.get(k.as_bytes()).unwrap().map(|(v, _)| v);
    let (a, bv) = (value(&mut overlay, ka), value(&mut overlay, kb));
    assert_eq!((a.clone(), bv), (Some(b("6")), Some(b("6"))), "a torn base: {a:?}");
}
