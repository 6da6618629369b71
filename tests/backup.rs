//! Snapshots, restore, rebalance and graceful leave, with real processes and ZooKeeper.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use reqwest::StatusCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn aux_keys(n: &Node) -> u64 {
    common::aux_keys(n).unwrap_or(u64::MAX)
}

#[test]
fn backup_then_kill9_every_auxiliary_and_restore() {
    let zk = ZooKeeper::start();
    let c = Cluster::new(&zk, &[("REPLICAS", "2"), ("BACKUP_INTERVAL", "3600"), ("ADMIN_TOKEN", "admin-secret")]);
    let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
    let mut auxes: Vec<Node> =
        (0..3).map(|i| c.auxiliary_on(&format!("aux-{i}"), ports[i].0, ports[i].1, &[])).collect();
    let m = c.master("master-1", &[]);
    wait_aux_count(&m, 3, Duration::from_secs(15));
    for i in 0..300 {
        assert_eq!(put(&m, &format!("keep-{i}"), &format!("v{i}")), StatusCode::OK);
    }
    for i in 0..50 {
        let r = http().put(format!("{}/cache/ttl-{i}?ttl=2", m.url())).body("short").send().unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }

    // Admin token required.
    let r = http().post(format!("{}/backup", m.url())).send().unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(json(r)["error"].as_str().is_some());
    let r = http().post(format!("{}/rebalance", m.url())).bearer_auth("wrong").send().unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let r = http().post(format!("{}/backup", m.url())).bearer_auth("admin-secret").send().unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body = json(r);
    let backups = body["backups"].as_array().unwrap();
    assert_eq!(backups.len(), 3, "{body}");
    let entries: u64 = backups.iter().map(|b| b["entries"].as_u64().unwrap()).sum();
    assert_eq!(entries, 2 * 350, "{body}");
    for b in backups {
        assert_eq!(b["ok"], true);
        assert!(std::path::Path::new(b["file"].as_str().unwrap()).exists());
        assert!(b["bytes"].as_u64().unwrap() > 0 && b["duration_ms"].as_u64().is_some());
    }
    let text = http().get(format!("{}/metrics", auxes[0].url())).send().unwrap().text().unwrap();
    assert!(!text.contains("backup_last_success_timestamp_seconds 0\n"), "{text}");

    for a in auxes.iter_mut() {
        a.proc.kill();
    }
    std::thread::sleep(Duration::from_millis(2500));
    let started = Instant::now();
    let auxes: Vec<Node> = (0..3).map(|i| c.auxiliary_on(&format!("aux-{i}"), ports[i].0, ports[i].1, &[])).collect();
    println!("three auxiliaries restarted and healthy in {:?}", started.elapsed());
    wait_aux_count(&m, 3, Duration::from_secs(20));
    for i in 0..300 {
        assert_eq!(get(&m, &format!("keep-{i}")), (StatusCode::OK, format!("v{i}").into_bytes()), "keep-{i}");
    }
    for i in 0..50 {
        assert_eq!(get(&m, &format!("ttl-{i}")).0, StatusCode::NOT_FOUND, "expired ttl-{i} came back");
    }
    let held: u64 = auxes.iter().map(aux_keys).sum();
    assert_eq!(held, 600, "expired entries skipped on restore");
}

#[test]
fn sigterm_restart_keeps_late_writes_and_survives_a_corrupt_snapshot() {
    let zk = ZooKeeper::start();
    let c = Cluster::new(&zk, &[("REPLICAS", "1"), ("BACKUP_INTERVAL", "3600")]);
    let (p, dp) = (free_port(), free_port());
    let mut aux = c.auxiliary_on("aux-0", p, dp, &[]);
    let m = c.master("master-1", &[]);
    wait_aux_count(&m, 1, Duration::from_secs(15));
    for i in 0..100 {
        assert_eq!(put(&m, &format!("early-{i}"), "v"), StatusCode::OK);
    }
    assert_eq!(http().post(format!("{}/backup", m.url())).send().unwrap().status(), StatusCode::OK);
    for i in 0..100 {
        assert_eq!(put(&m, &format!("late-{i}"), "v"), StatusCode::OK);
    }
    let st = aux.proc.terminate(Duration::from_secs(20)).expect("auxiliary exits on SIGTERM");
    assert!(st.success(), "{st:?}");

    // A newer, corrupt snapshot: reported, set aside, the valid one used.
    let dir = c.dir.path().join("backup-aux-0");
    let bogus = dir.join("snapshot-999999999999999.bin");
    std::fs::write(&bogus, b"TIERSNAP\x01\x00\x00\x00garbage that is not a snapshot").unwrap();
    let aux = c.auxiliary_on("aux-0", p, dp, &[]);
    wait_aux_count(&m, 1, Duration::from_secs(20));
    assert_eq!(aux_keys(&aux), 200);
    for i in 0..100 {
        assert_eq!(get(&m, &format!("late-{i}")).0, StatusCode::OK, "late-{i} written after the last backup");
        assert_eq!(get(&m, &format!("early-{i}")).0, StatusCode::OK);
    }
    assert!(!bogus.exists() && bogus.with_extension("corrupt").exists());
    assert!(aux.proc.log().contains("corrupt"));
}

#[test]
fn a_failed_snapshot_cleans_up_and_a_failed_final_one_exits_non_zero() {
    let zk = ZooKeeper::start();
    let c = Cluster::new(&zk, &[("REPLICAS", "1"), ("BACKUP_INTERVAL", "3600")]);
    let dir = c.dir.path().join("backup-aux-0");
    std::fs::create_dir_all(&dir).unwrap();
    // Left by a snapshot a crash cut short.
    let leftover = dir.join(".snapshot-000000000000001.bin.tmp");
    std::fs::write(&leftover, vec![0u8; 4096]).unwrap();
    let temp_files = || {
        std::fs::read_dir(&dir)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".tmp"))
            .count()
    };
    let snapshots = || {
        std::fs::read_dir(&dir)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".bin"))
            .count()
    };
    let (p, dp) = (free_port(), free_port());
    let mut aux = c.auxiliary_with_file_limit("aux-0", p, dp, 128);
    assert!(!leftover.exists(), "a stale temporary file is removed at start");
    let m = c.master("master-1", &[("ADMIN_TOKEN", "admin-secret")]);
    wait_aux_count(&m, 1, Duration::from_secs(15));
    for i in 0..100 {
        assert_eq!(put(&m, &format!("small-{i}"), "v"), StatusCode::OK);
    }
    let backup = || http().post(format!("{}/backup", m.url())).bearer_auth("admin-secret").send().unwrap();
    assert_eq!(backup().status(), StatusCode::OK, "a small snapshot fits");
    assert_eq!(snapshots(), 1);

    let big = "x".repeat(300);
    for i in 0..1000 {
        assert_eq!(put(&m, &format!("big-{i}"), &big), StatusCode::OK);
    }
    for attempt in 0..3 {
        let r = backup();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE, "attempt {attempt}");
        let body = json(r).to_string();
        assert!(body.contains("os error"), "the OS error is reported: {body}");
        assert_eq!(temp_files(), 0, "attempt {attempt} left its temporary file");
        assert_eq!(snapshots(), 1, "the valid snapshot stays");
    }
    assert!(aux.proc.log().contains("snapshot failed"), "the auxiliary logs it too");

    let st = aux.proc.terminate(Duration::from_secs(20)).expect("auxiliary exits on SIGTERM");
    assert!(!st.success(), "a failed final snapshot must show in the exit status: {st:?}");
    assert_eq!(temp_files(), 0);
    assert!(aux.proc.log().contains("final snapshot failed"));

    let aux = c.auxiliary_on("aux-0", p, dp, &[]);
    assert_eq!(aux_keys(&aux), 100, "the last valid snapshot is the one restored");
}

#[test]
fn fourth_auxiliary_joins_under_reads_without_a_miss() {
    let zk = ZooKeeper::start();
    let c = Cluster::new(&zk, &[("REPLICAS", "2")]);
    let mut auxes: Vec<Node> = (0..3).map(|i| c.auxiliary(&format!("aux-{i}"), &[])).collect();
    let m1 = c.master("master-1", &[]);
    let m2 = c.master("master-2", &[]);
    wait_aux_count(&m1, 3, Duration::from_secs(15));
    wait_aux_count(&m2, 3, Duration::from_secs(15));
    const N: usize = 3000;
    for i in 0..N {
        assert_eq!(put(&m1, &format!("k{i}"), &format!("v{i}")), StatusCode::OK);
    }

    let stop = Arc::new(AtomicBool::new(false));
    let (reads, misses) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let readers: Vec<_> = [m1.url(), m2.url()]
        .into_iter()
        .map(|url| {
            let (stop, reads, misses) = (stop.clone(), reads.clone(), misses.clone());
            std::thread::spawn(move || {
                let client = http();
                let mut i = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    i = (i + 7919) % N;
                    let r = client.get(format!("{url}/cache/k{i}")).send();
                    reads.fetch_add(1, Ordering::Relaxed);
                    if !r.is_ok_and(|r| r.status() == StatusCode::OK) {
                        misses.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();

    std::thread::sleep(Duration::from_millis(500));
    let joined = Instant::now();
    auxes.push(c.auxiliary("aux-3", &[]));
    wait_aux_count(&m1, 4, Duration::from_secs(10));
    wait_aux_count(&m2, 4, Duration::from_secs(10));
    // Done when every key is held exactly twice (no leftovers on old owners).
    wait_until(Duration::from_secs(30), "rebalance to settle at REPLICAS copies", || {
        auxes.iter().map(aux_keys).sum::<u64>() == 2 * N as u64
    });
    let settled = joined.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().unwrap();
    }
    let newcomer = aux_keys(&auxes[3]);
    let (reads, misses) = (reads.load(Ordering::Relaxed), misses.load(Ordering::Relaxed));
    let nodes = json(http().get(format!("{}/nodes", m1.url())).send().unwrap());
    println!(
        "join under reads: {reads} reads, {misses} misses, settled {settled:?} after start, newcomer holds {newcomer} \
         of {} copies; coordinator {} rebalance {}",
        2 * N,
        nodes["coordinator"],
        nodes["rebalance"]
    );
    assert_eq!(misses, 0);
    assert!(reads > 100);
    let quarter = (2 * N / 4) as f64;
    assert!((newcomer as f64 - quarter).abs() < quarter * 0.25, "newcomer holds {newcomer}");
    let text = http().get(format!("{}/metrics", auxes[0].url())).send().unwrap().text().unwrap();
    assert!(text.contains("rebalance_keys_moved_total"));
    for i in (0..N).step_by(37) {
        assert_eq!(get(&m2, &format!("k{i}")), (StatusCode::OK, format!("v{i}").into_bytes()));
    }
    // POST /rebalance runs the same transfer on demand: nothing left to move now.
    let r = http().post(format!("{}/rebalance", m2.url())).send().unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body = json(r);
    assert_eq!(body["nodes"].as_array().unwrap().len(), 4, "{body}");
    assert_eq!(auxes.iter().map(aux_keys).sum::<u64>(), 2 * N as u64);
}

#[test]
fn sigterm_on_one_of_three_loses_nothing_with_one_replica() {
    let zk = ZooKeeper::start();
    let (_c, mut auxes, m) = one_replica_cluster(&zk, 3);
    const N: usize = 1000;
    for i in 0..N {
        assert_eq!(put(&m, &format!("k{i}"), &format!("v{i}")), StatusCode::OK);
    }
    let leaving = aux_keys(&auxes[1]);
    assert!(leaving > 100);
    let st = auxes[1].proc.terminate(Duration::from_secs(30)).expect("exits on SIGTERM");
    assert!(st.success(), "{st:?}");
    wait_aux_count(&m, 2, Duration::from_secs(10));
    for i in 0..N {
        assert_eq!(get(&m, &format!("k{i}")), (StatusCode::OK, format!("v{i}").into_bytes()), "k{i} lost");
    }
    assert_eq!(aux_keys(&auxes[0]) + aux_keys(&auxes[2]), N as u64);
}

#[test]
fn sigterm_under_writes_keeps_every_acknowledged_write() {
    let zk = ZooKeeper::start();
    let (_c, mut auxes, m) = one_replica_cluster(&zk, 3);

    let writer = Writer::start(&m);
    std::thread::sleep(Duration::from_secs(1));
    let st = auxes[1].proc.terminate(Duration::from_secs(30)).expect("exits on SIGTERM");
    assert!(st.success(), "{st:?}");
    std::thread::sleep(Duration::from_secs(1));
    let (sent, acked) = writer.stop();
    println!("scale-in under writes: {sent} writes sent, {} acknowledged", acked.len());
    assert!(acked.len() as u64 >= sent * 99 / 100, "writes kept succeeding ({} of {sent})", acked.len());
    assert_all_readable(&m, &acked);
}

#[test]
fn sigterm_while_a_master_still_routes_to_the_node_loses_no_acknowledged_write() {
    // ZooKeeper frozen: the master never hears that the auxiliary left and keeps sending it
    // writes through the whole hand-off and after. The node must refuse what it could no
    // longer hand off rather than acknowledge it.
    let zk = ZooKeeper::start();
    let (_c, mut auxes, m) = one_replica_cluster(&zk, 3);

    let writer = Writer::start(&m);
    std::thread::sleep(Duration::from_secs(1));
    zk.pause();
    let st = auxes[1].proc.terminate(Duration::from_secs(30)).expect("exits on SIGTERM");
    assert!(st.success(), "{st:?}");
    assert!(auxes[1].proc.log().contains("handed keys"), "the hand-off ran");
    std::thread::sleep(Duration::from_millis(500));
    let (sent, acked) = writer.stop();
    zk.resume();
    println!("hand-off with a master that still routes to the node: {sent} writes sent, {} acknowledged", acked.len());
    assert!(acked.len() as u64 > sent / 2, "writes to the other nodes kept succeeding");
    assert!((acked.len() as u64) < sent, "the master did route writes to the leaving node");
    // ZooKeeper back: the node's session expires and the master drops it.
    wait_aux_count(&m, 2, Duration::from_secs(60));
    assert_all_readable(&m, &acked);
}

#[test]
fn two_auxiliaries_leaving_together_lose_no_acknowledged_write() {
    // A scale-in by two (`--scale aux-extra=0` with two extras): each leaver read a view that
    // still held the other, so it may pick the other as a target of its hand-off.
    let zk = ZooKeeper::start();
    let (_c, mut auxes, m) = one_replica_cluster(&zk, 4);

    let writer = Writer::start(&m);
    std::thread::sleep(Duration::from_secs(2));
    auxes[1].proc.sigterm();
    auxes[2].proc.sigterm();
    for a in [1, 2] {
        let st = auxes[a].proc.wait_exit(Duration::from_secs(40)).expect("exits on SIGTERM");
        assert!(st.success(), "aux-{a}: {st:?}");
    }
    std::thread::sleep(Duration::from_secs(1));
    let (sent, acked) = writer.stop();
    println!("two auxiliaries leaving together: {sent} writes sent, {} acknowledged", acked.len());
    wait_aux_count(&m, 2, Duration::from_secs(30));
    assert_all_readable(&m, &acked);
}

/// `n` auxiliaries and one master with REPLICAS=1, the master seeing every auxiliary. The
/// cluster comes first so it is dropped last (it holds the logs and data directories).
fn one_replica_cluster(zk: &ZooKeeper, n: usize) -> (Cluster, Vec<Node>, Node) {
    let c = Cluster::new(zk, &[("REPLICAS", "1")]);
    let auxes: Vec<Node> = (0..n).map(|i| c.auxiliary(&format!("aux-{i}"), &[])).collect();
    let m = c.master("master-1", &[]);
    wait_aux_count(&m, n as i64, Duration::from_secs(15));
    (c, auxes, m)
}

/// A thread writing w1, w2, ... through a master until stopped, recording what was acknowledged.
struct Writer {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<(u64, Vec<u64>)>,
}

impl Writer {
    fn start(m: &Node) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let (url, flag) = (m.url(), stop.clone());
        let thread = std::thread::spawn(move || {
            let client = http();
            let mut acked = Vec::new();
            let mut n = 0u64;
            while !flag.load(Ordering::Relaxed) {
                n += 1;
                let r = client.put(format!("{url}/cache/w{n}")).body(format!("v{n}")).send();
                if r.is_ok_and(|r| r.status() == StatusCode::OK) {
                    acked.push(n);
                }
            }
            (n, acked)
        });
        Writer { stop, thread }
    }

    /// Stops writing: (writes sent, the acknowledged ones).
    fn stop(self) -> (u64, Vec<u64>) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

fn assert_all_readable(m: &Node, acked: &[u64]) {
    for n in acked {
        assert_eq!(get(m, &format!("w{n}")), (StatusCode::OK, format!("v{n}").into_bytes()), "acknowledged w{n} lost");
    }
}

#[test]
fn coordinator_failover_still_rebalances() {
    let zk = ZooKeeper::start();
    let c = Cluster::new(&zk, &[("REPLICAS", "2")]);
    let mut auxes: Vec<Node> = (0..2).map(|i| c.auxiliary(&format!("aux-{i}"), &[])).collect();
    let coordinator = |n: &Node| {
        json(http().get(format!("{}/nodes", n.url())).send().unwrap())["coordinator"].as_str().map(String::from)
    };
    let mut m1 = c.master("master-1", &[]);
    // master-2 starts only once master-1 is in the election, so "first registered" is certain.
    wait_until(Duration::from_secs(10), "master-1 to be elected", || coordinator(&m1).as_deref() == Some("master-1"));
    let m2 = c.master("master-2", &[]);
    wait_aux_count(&m2, 2, Duration::from_secs(15));
    wait_until(Duration::from_secs(10), "master-2 to see the coordinator", || coordinator(&m2).is_some());
    assert_eq!(coordinator(&m2).as_deref(), Some("master-1"), "the first master registered leads");
    const N: usize = 1000;
    for i in 0..N {
        assert_eq!(put(&m2, &format!("k{i}"), "v"), StatusCode::OK);
    }
    // The coordinator dies without a goodbye: its election znode goes with its session.
    m1.proc.kill();
    wait_until(Duration::from_secs(15), "master-2 to take over", || coordinator(&m2).as_deref() == Some("master-2"));
    auxes.push(c.auxiliary("aux-2", &[]));
    wait_aux_count(&m2, 3, Duration::from_secs(10));
    wait_until(Duration::from_secs(30), "the new coordinator to rebalance onto aux-2", || {
        auxes.iter().map(aux_keys).sum::<u64>() == 2 * N as u64 && aux_keys(&auxes[2]) > (N / 3) as u64
    });
}
