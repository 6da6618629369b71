//! One cluster configuration: REPLICAS and VIRTUAL_NODES live in ZooKeeper. The first master
//! publishes them, auxiliaries follow them without any in their environment, a master whose
//! environment disagrees stops with one line, and `PUT /config` changes REPLICAS for the running
//! cluster and re-replicates. Real ZooKeeper, real processes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use reqwest::StatusCode;
use std::time::Duration;

const ADMIN: &str = "config-admin-token";

fn copies(auxes: &[&Node]) -> u64 {
    auxes.iter().map(|a| aux_keys(a).unwrap_or(0)).sum()
}

fn ready(n: &Node) -> StatusCode {
    http().get(format!("{}/health?ready=1", n.url())).send().map(|r| r.status()).unwrap_or(StatusCode::IM_A_TEAPOT)
}

fn put_config(m: &Node, query: &str, token: Option<&str>) -> (StatusCode, serde_json::Value) {
    let mut req = http().put(format!("{}/config?{query}", m.url()));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().unwrap();
    let status = r.status();
    (status, r.json().unwrap_or_default())
}

/// The case: masters run with REPLICAS=1 and the auxiliaries have no REPLICAS at all.
/// Before, a leaving auxiliary used its own default (2) and handed each key to two owners.
#[test]
fn auxiliaries_follow_the_cluster_configuration() {
    let zk = ZooKeeper::start();
    let c = Cluster::new(&zk, &[]);
    let a0 = c.auxiliary("aux-0", &[]);
    // No master yet, so no cluster configuration: alive, not ready.
    assert_eq!(ready(&a0), StatusCode::SERVICE_UNAVAILABLE);
    let health = json(http().get(format!("{}/health", a0.url())).send().unwrap());
    assert_eq!(health["ready"], false, "{health}");
    let a1 = c.auxiliary("aux-1", &[]);
    let mut a2 = c.auxiliary("aux-2", &[("REPLICAS", "3")]);
    let m = c.master("master-1", &[("REPLICAS", "1"), ("ADMIN_TOKEN", ADMIN)]);
    wait_aux_count(&m, 3, Duration::from_secs(15));
    for a in [&a0, &a1, &a2] {
        wait_until(Duration::from_secs(20), &format!("{} to be ready", a.id), || ready(a) == StatusCode::OK);
    }
    assert!(a2.proc.log().contains("ignored"), "a REPLICAS given to an auxiliary is reported as ignored");
    let nodes = json(http().get(format!("{}/nodes", m.url())).send().unwrap());
    assert_eq!(nodes["config"]["replicas"], 1, "{nodes}");

    for i in 0..3000 {
        assert_eq!(put(&m, &format!("k{i}"), "v"), StatusCode::OK);
    }
    assert_eq!(copies(&[&a0, &a1, &a2]), 3000);
    let st = a2.proc.terminate(Duration::from_secs(30)).expect("the auxiliary leaves on SIGTERM");
    assert!(st.success(), "{st:?}");
    wait_aux_count(&m, 2, Duration::from_secs(10));
    // Counted at once, before the coordinator's sweep (5 s after the membership settles) could
    // hide extra copies.
    assert_eq!(copies(&[&a0, &a1]), 3000, "a graceful leave hands each key to exactly REPLICAS owners");
    for i in (0..3000).step_by(7) {
        assert_eq!(get(&m, &format!("k{i}")).0, StatusCode::OK, "k{i}");
    }
}

#[test]
fn a_master_that_disagrees_with_the_cluster_stops_with_one_line() {
    let zk = ZooKeeper::start();
    let c = Cluster::new(&zk, &[]);
    let _a = c.auxiliary("aux-0", &[]);
    let m1 = c.master("master-1", &[("REPLICAS", "2"), ("VIRTUAL_NODES", "64")]);
    wait_aux_count(&m1, 1, Duration::from_secs(15));

    for (var, value, stored) in [("REPLICAS", "3", "2"), ("VIRTUAL_NODES", "128", "64")] {
        let mut p = c.master_process(&format!("bad-{var}"), &[(var, value)]);
        let st = p.wait_exit(Duration::from_secs(15)).expect("a disagreeing master stops");
        assert!(!st.success());
        let log = p.log();
        let line = log.lines().find(|l| l.contains("cluster configuration")).unwrap_or_else(|| panic!("{log}"));
        assert!(
            line.contains(&format!("{var}={value}")) && line.contains(&format!("{var}={stored}")),
            "names the variable and both values: {line}"
        );
    }
    // Without REPLICAS of its own, a master adopts the cluster's (a write quorum of 2 fits).
    let m3 = c.master("master-3", &[("WRITE_QUORUM", "2")]);
    wait_until(Duration::from_secs(10), "master-3 to read the cluster configuration", || ready(&m3) == StatusCode::OK);
    let health = json(http().get(format!("{}/health", m3.url())).send().unwrap());
    assert_eq!(health["placement"]["replicas"], 2, "a master without REPLICAS adopts the cluster's: {health}");
    assert_eq!(health["placement"]["virtual_nodes"], 64, "{health}");
}

#[test]
fn put_config_changes_replicas_for_the_running_cluster() {
    let zk = ZooKeeper::start();
    let c = Cluster::new(&zk, &[("ADMIN_TOKEN", ADMIN)]);
    let a0 = c.auxiliary("aux-0", &[]);
    let a1 = c.auxiliary("aux-1", &[]);
    let mut a2 = c.auxiliary("aux-2", &[]);
    let m1 = c.master("master-1", &[("REPLICAS", "1")]);
    // master-1 publishes first: a master without REPLICAS that got there before it would
    // publish the default (2), and master-1 would rightly stop.
    wait_until(Duration::from_secs(10), "master-1 to publish the configuration", || {
        http().get(format!("{}/config", m1.url())).send().is_ok_and(|r| r.status().is_success())
    });
    let m2 = c.master("master-2", &[]);
    wait_aux_count(&m1, 3, Duration::from_secs(15));
    wait_aux_count(&m2, 3, Duration::from_secs(15));
    for a in [&a0, &a1, &a2] {
        wait_until(Duration::from_secs(20), &format!("{} to be ready", a.id), || ready(a) == StatusCode::OK);
    }
    for i in 0..600 {
        assert_eq!(put(&m1, &format!("k{i}"), &format!("v{i}")), StatusCode::OK);
    }
    assert_eq!(copies(&[&a0, &a1, &a2]), 600);

    // Refused: no token, a bad value, a setting that cannot change, nothing to change.
    assert_eq!(put_config(&m2, "replicas=2", None).0, StatusCode::UNAUTHORIZED);
    for q in ["replicas=0", "replicas=two", "replicas=99", "virtual_nodes=8", "", "colour=red"] {
        let (s, body) = put_config(&m2, q, Some(ADMIN));
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}: {body}");
        assert!(body["error"].is_string(), "{q}: {body}");
    }

    // Through the master that did not publish: every node follows, the keys get a second copy.
    let (s, body) = put_config(&m2, "replicas=2", Some(ADMIN));
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["config"]["replicas"], 2, "{body}");
    for m in [&m1, &m2] {
        wait_until(Duration::from_secs(5), "every master to show REPLICAS=2", || {
            json(http().get(format!("{}/nodes", m.url())).send().unwrap())["config"]["replicas"] == 2
        });
    }
    wait_until(Duration::from_secs(30), "1200 copies of 600 keys", || copies(&[&a0, &a1, &a2]) == 1200);
    wait_until(Duration::from_secs(10), "the re-replication to be recorded", || {
        json(http().get(format!("{}/config", m2.url())).send().unwrap())["replicated_for"] == 2
    });
    // Any one auxiliary may now die without losing a key.
    a2.proc.kill();
    for i in 0..600 {
        let (s, v) = get(&m2, &format!("k{i}"));
        assert_eq!((s, v), (StatusCode::OK, format!("v{i}").into_bytes()), "k{i}");
    }
    drop(a2);
    wait_aux_count(&m1, 2, Duration::from_secs(15));

    // And back down: copies no longer owned are dropped.
    let (s, body) = put_config(&m1, "replicas=1", Some(ADMIN));
    assert_eq!(s, StatusCode::OK, "{body}");
    wait_until(Duration::from_secs(30), "600 copies again", || copies(&[&a0, &a1]) == 600);
    // A master restarted with the old value in its environment now stops and says why.
    let mut p = c.master_process("master-old-env", &[("REPLICAS", "2")]);
    assert!(p.wait_exit(Duration::from_secs(15)).is_some_and(|s| !s.success()));
    assert!(p.log().contains("REPLICAS=2") && p.log().contains("REPLICAS=1"), "{}", p.log());
    // So does one whose write quorum no longer fits the cluster's REPLICAS.
    let mut p = c.master_process("master-quorum", &[("WRITE_QUORUM", "2")]);
    assert!(p.wait_exit(Duration::from_secs(15)).is_some_and(|s| !s.success()));
    assert!(p.log().contains("WRITE_QUORUM=2 is more than the cluster's REPLICAS=1"), "{}", p.log());
}
