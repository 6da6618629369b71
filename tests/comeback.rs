//! Nodes that come back: a whole-cluster restart, a frozen owner resumed, an owner restarted
//! from its snapshot after kill -9. Real processes and a real ZooKeeper; each test prints its
//! figure (stale reads, copies after settling, time to converge).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use reqwest::StatusCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn held(auxes: &[Node]) -> u64 {
    auxes.iter().map(|a| aux_keys(a).unwrap_or(u64::MAX / 8)).sum()
}

/// Runs `f(client, i)` for every i in 0..n on 8 threads, each with its own keep-alive client;
/// returns how many returned false.
fn par_count(n: usize, f: impl Fn(&reqwest::blocking::Client, usize) -> bool + Sync) -> usize {
    let bad = AtomicU64::new(0);
    std::thread::scope(|s| {
        for t in 0..8 {
            let (f, bad) = (&f, &bad);
            s.spawn(move || {
                let client = http();
                for i in (t..n).step_by(8) {
                    if !f(&client, i) {
                        bad.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    bad.load(Ordering::Relaxed) as usize
}

/// SIGTERM to every auxiliary at once and to the master; each exits cleanly.
fn stop_whole_cluster(auxes: &mut [Node], m: &mut Node) {
    for a in auxes.iter() {
        a.proc.sigterm();
    }
    m.proc.terminate(Duration::from_secs(20)).expect("master exits on SIGTERM");
    for a in auxes.iter_mut() {
        let st = a.proc.wait_exit(Duration::from_secs(120)).expect("auxiliary exits on SIGTERM");
        assert!(st.success(), "{st:?}");
    }
}

/// REPLICAS=1 and snapshots on: every auxiliary stopped together hands its keys to peers that
/// are leaving too, so the final snapshots hold keys twice. After the restart the copies on
/// non-owners must be dropped, or a later loss of the owner serves their old values.
/// `TIERCACHE_RESTART_KEYS` sets the number of keys (300; the figure in docs/operations.md used 1000000).
#[test]
fn whole_cluster_restart_drops_stale_copies() {
    let n: usize = std::env::var("TIERCACHE_RESTART_KEYS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let zk = ZooKeeper::start();
    let c = Cluster::new(&zk, &[("REPLICAS", "1"), ("BACKUP_INTERVAL", "3600"), ("CACHE_SIZE", "10000000")]);
    let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
    let start = |i: usize| c.auxiliary_on(&format!("aux-{i}"), ports[i].0, ports[i].1, &[]);
    let mut auxes: Vec<Node> = (0..3).map(start).collect();
    let mut m = c.master("master-1", &[]);
    wait_aux_count(&m, 3, Duration::from_secs(15));
    let url = m.url();
    let put = |c: &reqwest::blocking::Client, i: usize, v: &'static str| {
        c.put(format!("{url}/cache/k{i}")).body(v).send().is_ok_and(|r| r.status() == StatusCode::OK)
    };
    assert_eq!(par_count(n, |c, i| put(c, i, "old")), 0);
    // The whole cluster: every auxiliary at once, and the master.
    stop_whole_cluster(&mut auxes, &mut m);

    let mut auxes: Vec<Node> = (0..3).map(start).collect();
    let before = held(&auxes);
    let m = c.master("master-1", &[]);
    let restarted = Instant::now();
    wait_aux_count(&m, 3, Duration::from_secs(20));
    let mut settled = None;
    let deadline = Instant::now() + Duration::from_secs(40 + n as u64 / 10_000);
    while Instant::now() < deadline {
        if held(&auxes) == n as u64 {
            settled = Some(restarted.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let copies = held(&auxes);

    let url = m.url();
    let put = |c: &reqwest::blocking::Client, i: usize, v: &'static str| {
        c.put(format!("{url}/cache/k{i}")).body(v).send().is_ok_and(|r| r.status() == StatusCode::OK)
    };
    let get = |c: &reqwest::blocking::Client, i: usize| match c.get(format!("{url}/cache/k{i}")).send() {
        Ok(r) => (r.status(), r.bytes().map(|b| b.to_vec()).unwrap_or_default()),
        Err(_) => (StatusCode::IM_A_TEAPOT, vec![]),
    };
    assert_eq!(par_count(n, |c, i| put(c, i, "new")), 0);
    auxes[0].proc.kill();
    wait_aux_count(&m, 2, Duration::from_secs(20));
    // par_count counts the keys for which the closure says false.
    let stale = par_count(n, |c, i| !matches!(get(c, i), (StatusCode::OK, v) if v == b"old"));
    let missing = par_count(n, |c, i| get(c, i).0 != StatusCode::NOT_FOUND);
    println!(
        "whole-cluster restart, REPLICAS=1: {before} copies restored, {copies} copies of {n} keys after settling \
         ({settled:?} after the master started); after kill -9 of one owner: {stale} stale reads, {missing} misses \
         (the keys it held)"
    );
    assert_eq!(stale, 0, "old values served from copies on non-owners");
    assert!(settled.is_some(), "copies never converged to one per key: {copies}");
    assert!(missing < n, "the survivors still serve their own keys");
}

/// Per key, the highest counter a writer saw acknowledged; readers check that a read never
/// returns less than what was acknowledged before it began.
struct Workload {
    stop: Arc<AtomicBool>,
    stale: Arc<AtomicU64>,
    reads: Arc<AtomicU64>,
    writes: Arc<AtomicU64>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

const KEYS: usize = 200;

fn workload(masters: &[&Node]) -> Workload {
    let acked: Arc<Vec<AtomicU64>> = Arc::new((0..KEYS).map(|_| AtomicU64::new(0)).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let (stale, reads, writes) =
        (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let urls: Vec<String> = masters.iter().map(|m| m.url()).collect();
    for i in 0..KEYS {
        assert_eq!(put(masters[0], &format!("c{i}"), "0"), StatusCode::OK);
    }
    let mut threads = Vec::new();
    // Two writers, each owning half of the keys and writing through one master, so versions
    // of a key come from one clock.
    for w in 0..2usize {
        let (acked, stop, writes, url) = (acked.clone(), stop.clone(), writes.clone(), urls[w % urls.len()].clone());
        threads.push(std::thread::spawn(move || {
            let client = http();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let k = w + 2 * (n as usize % (KEYS / 2));
                let counter = n;
                let r = client.put(format!("{url}/cache/c{k}")).body(counter.to_string()).send();
                if r.is_ok_and(|r| r.status() == StatusCode::OK) {
                    acked[k].fetch_max(counter, Ordering::SeqCst);
                    writes.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for r in 0..3usize {
        let (acked, stop, stale, reads, urls) =
            (acked.clone(), stop.clone(), stale.clone(), reads.clone(), urls.clone());
        threads.push(std::thread::spawn(move || {
            let client = http();
            let mut n = r as u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let k = (n as usize * 7919) % KEYS;
                let floor = acked[k].load(Ordering::SeqCst);
                let url = &urls[n as usize % urls.len()];
                let Ok(resp) = client.get(format!("{url}/cache/c{k}")).send() else { continue };
                // A miss of a key with an acknowledged value is as wrong as an old value; a 503
                // (no quorum) is an honest refusal.
                let got: u64 = match resp.status() {
                    StatusCode::OK => resp.text().ok().and_then(|t| t.parse().ok()).unwrap_or(0),
                    StatusCode::NOT_FOUND => 0,
                    _ => continue,
                };
                reads.fetch_add(1, Ordering::Relaxed);
                if got < floor {
                    stale.fetch_add(1, Ordering::Relaxed);
                    eprintln!("stale read of c{k}: {got} < acknowledged {floor}");
                }
            }
        }));
    }
    Workload { stop, stale, reads, writes, threads }
}

impl Workload {
    /// (stale reads, reads, acknowledged writes).
    fn finish(self) -> (u64, u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
        (self.stale.load(Ordering::Relaxed), self.reads.load(Ordering::Relaxed), self.writes.load(Ordering::Relaxed))
    }
}

/// REPLICAS=2, WRITE_QUORUM=2, READ_QUORUM=1: W+R>N, so reads must see every acknowledged
/// write. Three auxiliaries and two masters under overwrites; `fault` does something to aux-0
/// and returns when it is back.
fn no_stale_read_across(what: &str, fault: impl FnOnce(&Cluster, &mut Node)) {
    let zk = ZooKeeper::start();
    let c = Cluster::new(
        &zk,
        &[("REPLICAS", "2"), ("WRITE_QUORUM", "2"), ("READ_QUORUM", "1"), ("REQUEST_TIMEOUT_MS", "500")],
    );
    let mut auxes: Vec<Node> = (0..3).map(|i| c.auxiliary(&format!("aux-{i}"), &[("BACKUP_INTERVAL", "1")])).collect();
    let m1 = c.master("master-1", &[]);
    let m2 = c.master("master-2", &[]);
    wait_aux_count(&m1, 3, Duration::from_secs(15));
    wait_aux_count(&m2, 3, Duration::from_secs(15));
    let load = workload(&[&m1, &m2]);
    std::thread::sleep(Duration::from_secs(2));
    fault(&c, &mut auxes[0]);
    wait_aux_count(&m1, 3, Duration::from_secs(30));
    wait_aux_count(&m2, 3, Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(8));
    let (stale, reads, writes) = load.finish();
    println!("{what}: {stale} stale reads of {reads} ({writes} acknowledged overwrites)");
    assert!(reads > 500 && writes > 500, "the load ran: {reads} reads, {writes} writes");
    assert_eq!(stale, 0, "{what}: reads returned values older than acknowledged writes");
}

#[test]
fn a_frozen_owner_never_serves_an_older_value() {
    no_stale_read_across("SIGSTOP 8 s, SIGCONT", |_, aux| {
        aux.proc.signal("-STOP");
        std::thread::sleep(Duration::from_secs(8));
        aux.proc.signal("-CONT");
    });
}

#[test]
fn a_briefly_frozen_owner_never_serves_an_older_value() {
    // Shorter than the ZooKeeper session: the node never leaves the placement.
    no_stale_read_across("SIGSTOP 2 s, SIGCONT", |_, aux| {
        aux.proc.signal("-STOP");
        std::thread::sleep(Duration::from_secs(2));
        aux.proc.signal("-CONT");
    });
}

#[test]
fn an_owner_restarted_from_its_snapshot_never_serves_an_older_value() {
    no_stale_read_across("kill -9, restart from snapshot 6 s later", |c, aux| {
        let (id, port, data_port) = (aux.id.clone(), aux.port, aux.data_port);
        std::thread::sleep(Duration::from_millis(1500));
        aux.proc.kill();
        std::thread::sleep(Duration::from_secs(6));
        *aux = c.auxiliary_on(&id, port, data_port, &[("BACKUP_INTERVAL", "1")]);
    });
}

/// A freshly formed cluster has missed nothing: an auxiliary that dies in its first seconds,
/// while its peers would still be catching up from their own start, leaves every key readable
/// from the surviving owner (REPLICAS=2, WRITE_QUORUM=2, READ_QUORUM=1).
#[test]
fn an_owner_lost_in_a_fresh_clusters_first_seconds_leaves_every_key_readable() {
    const N: usize = 5000;
    let zk = ZooKeeper::start();
    let c = Cluster::new(&zk, &[("REPLICAS", "2"), ("WRITE_QUORUM", "2"), ("READ_QUORUM", "1")]);
    let started = Instant::now();
    let mut auxes: Vec<Node> = (0..3).map(|i| c.auxiliary(&format!("aux-{i}"), &[])).collect();
    let m = c.master("master-1", &[]);
    wait_aux_count(&m, 3, Duration::from_secs(15));
    let url = m.url();
    let failed_puts = par_count(N, |cl, i| {
        cl.put(format!("{url}/cache/f{i}")).body(format!("v{i}")).send().is_ok_and(|r| r.status() == StatusCode::OK)
    });
    assert_eq!(failed_puts, 0, "every write acknowledged");
    std::thread::sleep(Duration::from_secs(3).saturating_sub(started.elapsed()));
    auxes[2].proc.kill();
    let read_at = started.elapsed();
    let unreadable = par_count(N, |cl, i| {
        cl.get(format!("{url}/cache/f{i}"))
            .send()
            .is_ok_and(|r| r.status() == StatusCode::OK && r.text().is_ok_and(|t| t == format!("v{i}")))
    });
    println!(
        "kill -9 of one auxiliary {:.1} s after the cluster started: {unreadable} of {N} keys unreadable right after",
        read_at.as_secs_f64()
    );
    assert_eq!(unreadable, 0, "keys with a surviving owner must stay readable");
}

/// REPLICAS=1, a whole-cluster stop and start: the copies each node was handed while its peers
/// were leaving too are restored, but never served. Overwrite every key at once after the
/// restart, kill -9 one owner: its keys may be missing, never their overwritten value.
#[test]
fn an_owner_lost_right_after_a_whole_cluster_restart_serves_no_overwritten_value() {
    const N: usize = 300;
    let zk = ZooKeeper::start();
    let c = Cluster::new(&zk, &[("REPLICAS", "1"), ("BACKUP_INTERVAL", "3600")]);
    let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
    let start = |i: usize| c.auxiliary_on(&format!("aux-{i}"), ports[i].0, ports[i].1, &[]);
    let mut auxes: Vec<Node> = (0..3).map(start).collect();
    let mut m = c.master("master-1", &[]);
    wait_aux_count(&m, 3, Duration::from_secs(15));
    let put_all = |url: &str, v: &'static str| {
        par_count(N, |cl, i| {
            cl.put(format!("{url}/cache/o{i}")).body(v).send().is_ok_and(|r| r.status() == StatusCode::OK)
        })
    };
    assert_eq!(put_all(&m.url(), "old"), 0);
    // A cluster that ran a while: its placement has settled.
    std::thread::sleep(Duration::from_secs(6));
    stop_whole_cluster(&mut auxes, &mut m);

    let mut auxes: Vec<Node> = (0..3).map(start).collect();
    let m = c.master("master-1", &[]);
    wait_aux_count(&m, 3, Duration::from_secs(20));
    assert_eq!(put_all(&m.url(), "new"), 0, "every overwrite acknowledged");
    auxes[0].proc.kill();
    wait_aux_count(&m, 2, Duration::from_secs(20));
    let (mut old, mut new, mut missing) = (0, 0, 0);
    let client = http();
    for i in 0..N {
        match client.get(format!("{}/cache/o{i}", m.url())).send() {
            Ok(r) if r.status() == StatusCode::OK => match r.text().unwrap_or_default().as_str() {
                "old" => old += 1,
                _ => new += 1,
            },
            _ => missing += 1,
        }
    }
    println!("after a whole-cluster restart and the loss of one owner: {old} overwritten values served, {new} new, {missing} missing of {N}");
    assert_eq!(old, 0, "overwritten values came back");
}

/// Catch-up is per key range: an auxiliary restarted from its snapshot while another one is
/// dead but still registered (its session has not expired) serves the keys it shares with the
/// live one as soon as that one has answered its catch-up; only the keys it shares with the
/// dead one wait, and they too are served once the dead one's session expires.
/// READ_QUORUM=2 = REPLICAS: a recovering answer would refuse the read.
#[test]
fn a_dead_peer_holds_back_only_the_keys_it_shares() {
    const N: usize = 2000;
    let zk = ZooKeeper::start();
    let env = [("REPLICAS", "2"), ("WRITE_QUORUM", "2"), ("READ_QUORUM", "2"), ("BACKUP_INTERVAL", "3600")];
    let c = Cluster::new(&zk, &env);
    let (port, data_port) = (free_port(), free_port());
    // aux-0 stays registered for 30 s after it dies.
    let mut auxes = [
        c.auxiliary("aux-0", &[("ZK_SESSION_TIMEOUT_MS", "30000")]),
        c.auxiliary_on("aux-1", port, data_port, &[]),
        c.auxiliary("aux-2", &[]),
    ];
    let m = c.master("master-1", &[]);
    wait_aux_count(&m, 3, Duration::from_secs(15));
    let url = m.url();
    let put_all = par_count(N, |cl, i| {
        cl.put(format!("{url}/cache/r{i}")).body(format!("v{i}")).send().is_ok_and(|r| r.status() == StatusCode::OK)
    });
    assert_eq!(put_all, 0, "every write acknowledged");
    let ring = tiercache_placement::Ring::new(&["aux-0", "aux-1", "aux-2"], tiercache_placement::DEFAULT_VIRTUAL_NODES);
    let shared: Vec<usize> = (0..N)
        .filter(|i| {
            let o = ring.owners(format!("r{i}").as_bytes(), 2);
            o.contains(&"aux-1") && o.contains(&"aux-2")
        })
        .collect();
    assert!(shared.len() > N / 5, "{} keys shared by aux-1 and aux-2", shared.len());

    // aux-1 restarts from its snapshot; aux-0 dies meanwhile and stays registered.
    auxes[1].proc.terminate(Duration::from_secs(60)).expect("aux-1 exits on SIGTERM");
    auxes[0].proc.kill();
    let killed = Instant::now();
    auxes[1] = c.auxiliary_on("aux-1", port, data_port, &[]);
    let readable = |keys: &[usize]| {
        par_count(keys.len(), |cl, j| {
            let i = keys[j];
            cl.get(format!("{url}/cache/r{i}"))
                .send()
                .is_ok_and(|r| r.status() == StatusCode::OK && r.text().is_ok_and(|t| t == format!("v{i}")))
        }) == 0
    };
    // What aux-1 answers itself: a recovering answer is not counted by a master.
    let full_replica_for = |keys: &[usize]| {
        let mut conn = AuxConn::open(data_port);
        keys.iter()
            .filter(|i| {
                let key = bytes::Bytes::from(format!("r{i}"));
                matches!(conn.call(&tiercache_protocol::Request::Get { key }), tiercache_protocol::Response::Value(_))
            })
            .count()
    };
    let with_aux_0: Vec<usize> =
        (0..N).filter(|i| ring.owners(format!("r{i}").as_bytes(), 2).contains(&"aux-0")).collect();
    wait_until(Duration::from_secs(20), "aux-1 to serve the keys it shares with the live aux-2", || {
        full_replica_for(&shared) == shared.len()
    });
    let served_after = killed.elapsed();
    let held_back = with_aux_0.len() - full_replica_for(&with_aux_0);
    let h = health(&auxes[1]).expect("aux-1 answers /health");
    let still_registered = aux_count(&m) == 3;
    println!(
        "aux-0 dead, aux-1 back from its snapshot: the {} keys aux-1 shares with the live aux-2 served as a full \
         replica {:.1} s after the kill; {held_back} of the {} keys of aux-0 still recovering (aux-0 registered: \
         {still_registered}); aux-1 health {h}",
        shared.len(),
        served_after.as_secs_f64(),
        with_aux_0.len(),
    );
    assert!(readable(&shared), "the shared keys read through the master");
    assert!(still_registered, "aux-0's session (30 s) outlived the test's wait: nothing was checked");
    assert_eq!(h["catching_up_from"], serde_json::json!(["aux-0"]), "only aux-0's keys wait");
    assert_eq!(held_back, with_aux_0.len(), "keys shared with the dead aux-0 must stay recovering");
    // Once aux-0's session expires, aux-1 and aux-2 own everything and aux-1 pulls again.
    wait_aux_count(&m, 2, Duration::from_secs(45));
    let all: Vec<usize> = (0..N).collect();
    wait_until(Duration::from_secs(30), "every key to be readable after aux-0 left", || {
        full_replica_for(&all) == N && readable(&all)
    });
    println!("every key readable {:.1} s after the kill", killed.elapsed().as_secs_f64());
}

/// Expiry converges on every replica: an owner frozen while `EXPIRE` ran takes the new expiry
/// from its catch-up (an expiry change keeps the version and bumps the expiry sequence, which
/// last-write-wins compares after the version). Before, it kept the value without an expiry,
/// and once the others had expired the key a read counting it brought the value back.
/// REPLICAS=2 over two auxiliaries (both own every key), WRITE_QUORUM=1, READ_QUORUM=2.
#[test]
fn an_owner_that_missed_an_expire_takes_it_on_its_way_back() {
    const N: usize = 100;
    const TTL_S: u64 = 15;
    let zk = ZooKeeper::start();
    let c = Cluster::new(&zk, &[("REPLICAS", "2"), ("WRITE_QUORUM", "1"), ("READ_QUORUM", "2")]);
    let auxes: Vec<Node> = (0..2).map(|i| c.auxiliary(&format!("aux-{i}"), &[])).collect();
    let redis_port = free_port();
    let m = c.master("master-1", &[("REDIS_PORT", &redis_port.to_string())]);
    wait_aux_count(&m, 2, Duration::from_secs(15));
    let mut r = redis::Client::open(format!("redis://127.0.0.1:{redis_port}/")).unwrap().get_connection().unwrap();
    for i in 0..N {
        let _: () = redis::cmd("SET").arg(format!("e{i}")).arg("v").query(&mut r).unwrap();
    }
    auxes[1].proc.signal("-STOP");
    let acked: Vec<usize> = (0..N)
        .filter(|i| redis::cmd("EXPIRE").arg(format!("e{i}")).arg(TTL_S).query::<i64>(&mut r).is_ok_and(|n| n == 1))
        .collect();
    let expired_at = Instant::now() + Duration::from_secs(TTL_S);
    auxes[1].proc.signal("-CONT");
    // Those whose primary is aux-0 (the frozen primary fails its keys' steps meanwhile).
    assert!(acked.len() > N / 4, "EXPIRE acknowledged for {} of {N} keys", acked.len());
    wait_until(Duration::from_secs(15), "aux-1 to catch up", || {
        health(&auxes[1]).is_some_and(|h| h["recovering"].is_null())
    });
    let mut conn = AuxConn::open(auxes[1].data_port);
    let no_expiry = acked
        .iter()
        .filter(|i| {
            let key = bytes::Bytes::from(format!("e{i}"));
            matches!(conn.call(&tiercache_protocol::Request::Get { key }),
                tiercache_protocol::Response::Value(Some(f)) if f.ttl_ms == 0)
        })
        .count();
    std::thread::sleep(expired_at.saturating_duration_since(Instant::now()) + Duration::from_millis(500));
    let back = acked
        .iter()
        .filter(|i| redis::cmd("GET").arg(format!("e{i}")).query::<Option<String>>(&mut r).is_ok_and(|v| v.is_some()))
        .count();
    println!(
        "EXPIRE of {} keys while one owner was frozen: {no_expiry} still without an expiry on it after its catch-up, \
         {back} read back after they expired",
        acked.len()
    );
    assert_eq!(no_expiry, 0, "the frozen owner kept the old expiry");
    assert_eq!(back, 0, "expired keys came back");
}
