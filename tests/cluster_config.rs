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

/// The issue's case: masters run with REPLICAS=1 and the auxiliaries have no REPLICAS at all.
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

fn rebalance(m: &Node, query: &str) -> (StatusCode, serde_json::Value) {
    let r = http().post(format!("{}/rebalance?{query}", m.url())).bearer_auth(ADMIN).send().unwrap();
    let status = r.status();
    (status, r.json().unwrap_or_default())
}

fn key_hash_of(m: &Node) -> serde_json::Value {
    json(http().get(format!("{}/nodes", m.url())).send().unwrap())["config"]["key_hash"].clone()
}

fn exec_two_tagged_keys(port: u16) -> redis::RedisResult<redis::Value> {
    let c = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let mut con = c.get_connection_with_timeout(Duration::from_secs(5)).unwrap();
    redis::cmd("MULTI").query::<()>(&mut con)?;
    redis::cmd("SET").arg("{t}:a").arg("1").query::<()>(&mut con)?;
    redis::cmd("SET").arg("{t}:b").arg("2").query::<()>(&mut con)?;
    redis::cmd("EXEC").query(&mut con)
}

/// A cluster made before hash tags keeps placing whole keys (its stored configuration has no
/// key_hash), so nothing moves under a running release; the operator switches with a
/// rebalance, which is refused while a member of an older release is registered, keeps the
/// fields of the configuration it does not know, and moves every key to its owners under the
/// new rule.
#[test]
fn an_old_cluster_keeps_whole_keys_until_a_rebalance_switches_it_to_hash_tags() {
    let zk = ZooKeeper::start();
    let c = Cluster::new(&zk, &[("ADMIN_TOKEN", ADMIN)]);
    let config_path = format!("{}/config", c.root);
    zk_write(
        &zk.addr(),
        &config_path,
        br#"{"replicas":2,"virtual_nodes":512,"replicated_for":2,"from_a_newer_release":"kept"}"#,
    );
    let auxes: Vec<Node> = (0..3).map(|i| c.auxiliary(&format!("aux-{i}"), &[])).collect();
    let (p1, p2) = (free_port(), free_port());
    let m1 = c.master("master-1", &[("REDIS_PORT", &p1.to_string())]);
    let m2 = c.master("master-2", &[("REDIS_PORT", &p2.to_string())]);
    for m in [&m1, &m2] {
        wait_aux_count(m, 3, Duration::from_secs(15));
        assert_eq!(key_hash_of(m), "whole");
    }
    for a in &auxes {
        wait_until(Duration::from_secs(20), &format!("{} to be ready", a.id), || ready(a) == StatusCode::OK);
    }
    let err = exec_two_tagged_keys(p1).unwrap_err();
    assert_eq!(err.code(), Some("CROSSSLOT"), "whole keys: two keys are two groups ({err})");
    for i in 0..1000 {
        assert_eq!(put(&m1, &format!("user:{{{}}}:k{i}", i % 20), &format!("v{i}")), StatusCode::OK);
    }

    // A member that does not publish the feature (an older release) holds the switch back.
    let old = format!("{}/masters/old-master", c.root);
    zk_write(&zk.addr(), &old, br#"{"id":"old-master","http_addr":"127.0.0.1:1"}"#);
    wait_until(Duration::from_secs(10), "the old master to be listed", || {
        json(http().get(format!("{}/nodes", m1.url())).send().unwrap())["masters"].to_string().contains("old-master")
    });
    let (s, body) = rebalance(&m1, "key_hash=tagged");
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    assert!(body["error"].as_str().unwrap().contains("old-master"), "names the member: {body}");
    assert_eq!(rebalance(&m1, "key_hash=crc16").0, StatusCode::BAD_REQUEST);
    zk_delete(&zk.addr(), &old);
    wait_until(Duration::from_secs(10), "the old master to be gone", || {
        !json(http().get(format!("{}/nodes", m1.url())).send().unwrap())["masters"].to_string().contains("old-master")
    });

    let (s, body) = rebalance(&m2, "key_hash=tagged");
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["key_hash"], "tagged", "{body}");
    for m in [&m1, &m2] {
        wait_until(Duration::from_secs(5), "every master to place by hash tags", || key_hash_of(m) == "tagged");
    }
    let stored: serde_json::Value = serde_json::from_slice(&zk_read(&zk.addr(), &config_path)).unwrap();
    assert_eq!(stored["from_a_newer_release"], "kept", "a field this release does not know survives: {stored}");
    assert_eq!(stored["key_hash"], "tagged", "{stored}");
    for i in 0..1000 {
        let key = format!("user:{{{}}}:k{i}", i % 20);
        for m in [&m1, &m2] {
            assert_eq!(get(m, &key), (StatusCode::OK, format!("v{i}").into_bytes()), "{key} after the switch");
        }
    }
    // Each key now has exactly REPLICAS copies, on its tag's owners.
    wait_until(Duration::from_secs(20), "2000 copies after the sweep", || {
        auxes.iter().map(|a| aux_keys(a).unwrap_or(0)).sum::<u64>() == 2000
    });
    for port in [p1, p2] {
        assert_eq!(
            exec_two_tagged_keys(port).unwrap(),
            redis::Value::Array(vec![redis::Value::Okay, redis::Value::Okay]),
            "one tag: one group"
        );
    }
}

/// A configuration that asks for a key-hash rule this release does not know (written by a
/// newer one) stops every node with one line, instead of placing keys another way.
#[test]
fn a_node_that_reads_a_key_hash_it_does_not_know_stops_with_one_line() {
    let zk = ZooKeeper::start();
    let c = Cluster::new(&zk, &[]);
    let mut a = c.auxiliary("aux-0", &[]);
    let mut m = c.master("master-1", &[]);
    wait_aux_count(&m, 1, Duration::from_secs(15));
    assert_eq!(key_hash_of(&m), "tagged", "a new cluster groups keys by their hash tags");
    let path = format!("{}/config", c.root);
    zk_write(&zk.addr(), &path, br#"{"replicas":1,"virtual_nodes":512,"replicated_for":1,"key_hash":"crc16"}"#);
    for n in [&mut a, &mut m] {
        let st = n.proc.wait_exit(Duration::from_secs(15)).unwrap_or_else(|| panic!("{} stops", n.id));
        assert!(!st.success(), "{}: {st:?}", n.id);
        let log = n.proc.log();
        let line = log.lines().find(|l| l.contains("crc16")).unwrap_or_else(|| panic!("{}: {log}", n.id));
        assert!(line.contains("key_hash") && line.contains(&path), "{}: {line}", n.id);
    }
}

/// During a rolling update a master never sends an auxiliary of an older release a request it
/// cannot decode (it would answer under request id 0 and the call would time out): INFO
/// leaves out the expiry counts and EXEC on that auxiliary's keys answers TRYAGAIN at once.
/// The older auxiliary is played by a znode without features pointing at a real one.
#[test]
fn an_older_auxiliary_is_never_sent_a_transaction_or_a_census() {
    let zk = ZooKeeper::start();
    let c = Cluster::new(&zk, &[("REPLICAS", "1"), ("VIRTUAL_NODES", "64")]);
    let a = c.auxiliary("aux-0", &[]);
    let port = free_port();
    let m = c.master("master-1", &[("REDIS_PORT", &port.to_string())]);
    wait_aux_count(&m, 1, Duration::from_secs(15));
    let old = format!("{}/auxiliaries/old-aux", c.root);
    let member = format!(r#"{{"id":"old-aux","http_addr":"127.0.0.1:1","data_addr":"127.0.0.1:{}"}}"#, a.data_port);
    zk_write(&zk.addr(), &old, member.as_bytes());
    wait_aux_count(&m, 2, Duration::from_secs(15));
    let ring =
        tiercache_placement::Ring::new(&["aux-0", "old-aux"], 64).with_key_hash(tiercache_placement::KeyHash::Tagged);
    let on_old = (0..).map(|i| format!("{{k{i}}}:a")).find(|k| ring.owners(k.as_bytes(), 1)[0] == "old-aux").unwrap();

    let mut con = conn(port);
    let started = std::time::Instant::now();
    let info: String = q(&mut con, &[b"INFO", b"keyspace"]).unwrap();
    assert!(info.contains("db0:keys=") && !info.contains("expires="), "{info}");
    let exec = |con: &mut redis::Connection| -> redis::RedisResult<redis::Value> {
        q::<()>(con, &[b"MULTI"])?;
        q::<()>(con, &[b"INCR", on_old.as_bytes()])?;
        q(con, &[b"EXEC"])
    };
    let e = exec(&mut con).unwrap_err();
    assert!(e.to_string().contains("older release"), "{e}");
    assert!(started.elapsed() < Duration::from_millis(900), "answered at once, not after a timeout");

    zk_delete(&zk.addr(), &old);
    wait_aux_count(&m, 1, Duration::from_secs(15));
    let info: String = q(&mut con, &[b"INFO", b"keyspace"]).unwrap();
    assert!(info.contains("expires="), "{info}");
    assert_eq!(exec(&mut con).unwrap(), redis::Value::Array(vec![redis::Value::Int(1)]));
}
