//! Cluster tests: a real ZooKeeper, real auxiliaries and masters as processes on free ports.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use reqwest::StatusCode;
use std::time::{Duration, Instant};

#[test]
fn two_masters_three_auxiliaries_serve_the_client_api() {
    let zk = ZooKeeper::start();
    let c = Cluster::new(&zk, &[("REPLICAS", "1"), ("KEY_MAX_BYTES", "64"), ("VALUE_MAX_BYTES", "4096")]);
    let _a: Vec<Node> = (0..3).map(|i| c.auxiliary(&format!("aux-{i}"), &[])).collect();
    let m1 = c.master("master-1", &[]);
    let m2 = c.master("master-2", &[]);
    wait_aux_count(&m1, 3, Duration::from_secs(15));
    wait_aux_count(&m2, 3, Duration::from_secs(15));

    // Write on one master, read on the other.
    for i in 0..200 {
        assert_eq!(put(&m1, &format!("key-{i}"), &format!("value-{i}")), StatusCode::OK);
    }
    for i in 0..200 {
        let (s, body) = get(&m2, &format!("key-{i}"));
        assert_eq!(s, StatusCode::OK, "key-{i}");
        assert_eq!(body, format!("value-{i}").as_bytes());
    }

    // Binary values and odd keys through the path form; read back through both forms.
    let binary: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    let odd = ["with space", "a/b/c", "ünï©ødé ✓", "100%", "q?x=1&y", "+plus+"];
    for k in odd {
        let enc: String = k.bytes().map(|b| format!("%{b:02X}")).collect();
        let r = http().put(format!("{}/cache/{enc}", m1.url())).body(binary.clone()).send().unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{k}");
        let r = http().get(format!("{}/cache/{enc}", m2.url())).send().unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{k}");
        assert_eq!(r.headers()["content-type"], "application/octet-stream");
        assert_eq!(r.bytes().unwrap().to_vec(), binary, "{k}");
        let (s, body) = get(&m2, k);
        assert_eq!((s, body), (StatusCode::OK, binary.clone()), "query form of {k}");
    }
    // In a query a `+` is a space, as in a form; in a path it is itself.
    let r = http().get(format!("{}/cache?key=with+space", m2.url())).send().unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().unwrap().to_vec(), binary);
    let r = http().get(format!("{}/cache/with+space", m2.url())).send().unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // TTL: gone at once after it passes (lazy), reclaimed in the background (active).
    let r = http().put(format!("{}/cache/short?ttl=1", m1.url())).body("soon gone").send().unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(get(&m2, "short").0, StatusCode::OK);
    std::thread::sleep(Duration::from_millis(1300));
    assert_eq!(get(&m2, "short").0, StatusCode::NOT_FOUND);

    // Deletes.
    let r = http().delete(format!("{}/cache/?key=key-1", m2.url())).send().unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(json(r)["deleted"], true);
    assert_eq!(get(&m1, "key-1").0, StatusCode::NOT_FOUND);
    let r = http().delete(format!("{}/cache/key-1", m1.url())).send().unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // Every error is JSON with the right status.
    let cases: Vec<(reqwest::blocking::RequestBuilder, StatusCode)> = vec![
        (http().get(format!("{}/cache/", m1.url())), StatusCode::BAD_REQUEST),
        (http().get(format!("{}/cache/?key=", m1.url())), StatusCode::BAD_REQUEST),
        (http().put(format!("{}/cache/?key=k&value=v&ttl=abc", m1.url())), StatusCode::BAD_REQUEST),
        (http().put(format!("{}/cache/?key=k&value=v&ttl=0", m1.url())), StatusCode::BAD_REQUEST),
        (http().put(format!("{}/cache/?key=k&value=v&ttl=-5", m1.url())), StatusCode::BAD_REQUEST),
        (http().put(format!("{}/cache/?key=k", m1.url())), StatusCode::BAD_REQUEST),
        (http().get(format!("{}/cache/?key=never-written", m1.url())), StatusCode::NOT_FOUND),
        (http().get(format!("{}/no-such-route", m1.url())), StatusCode::NOT_FOUND),
        // `/cache` is matched as a path prefix, not as a string prefix.
        (http().get(format!("{}/cachex?key=k", m1.url())), StatusCode::NOT_FOUND),
        (http().get(format!("{}/cache", m1.url())), StatusCode::BAD_REQUEST),
        (http().post(format!("{}/health", m1.url())), StatusCode::NOT_FOUND),
        (http().get(format!("{}/cache/{}", m1.url(), "k".repeat(65))), StatusCode::PAYLOAD_TOO_LARGE),
        (http().put(format!("{}/cache/?key=k&value={}", m1.url(), "v".repeat(4097))), StatusCode::PAYLOAD_TOO_LARGE),
        (http().put(format!("{}/cache/big", m1.url())).body(vec![1u8; 5000]), StatusCode::PAYLOAD_TOO_LARGE),
        (http().patch(format!("{}/cache/k", m1.url())), StatusCode::METHOD_NOT_ALLOWED),
    ];
    for (req, want) in cases {
        let r = req.send().unwrap();
        let url = r.url().to_string();
        assert_eq!(r.status(), want, "{url}");
        let body: serde_json::Value = r.json().unwrap_or_else(|_| panic!("{url}: error body is not JSON"));
        assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{url}: {body}");
    }

    // A huge body is refused from its Content-Length, without being read.
    let started = Instant::now();
    let big = vec![0u8; 64 << 20];
    let r = http().put(format!("{}/cache/huge", m1.url())).body(big).send();
    if let Ok(r) = r {
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
    assert!(started.elapsed() < Duration::from_secs(5));

    // /nodes lists both masters and three auxiliaries with stats and shares.
    let nodes = json(http().get(format!("{}/nodes", m1.url())).send().unwrap());
    let masters = nodes["masters"].as_array().unwrap();
    assert_eq!(masters.len(), 2, "{nodes}");
    let auxes = nodes["auxiliaries"].as_array().unwrap();
    assert_eq!(auxes.len(), 3, "{nodes}");
    let total_keys: u64 = auxes.iter().map(|a| a["keys"].as_u64().unwrap()).sum();
    assert_eq!(total_keys, 199 + odd.len() as u64, "{nodes}");
    let share: f64 = auxes.iter().map(|a| a["share"].as_f64().unwrap()).sum();
    assert!((share - 1.0).abs() < 0.01);
    for a in auxes {
        assert_eq!(a["status"], "up");
        assert!(a["bytes"].as_u64().unwrap() > 0);
    }

    // Metrics are exposed by masters and auxiliaries.
    let text = http().get(format!("{}/metrics", m1.url())).send().unwrap().text().unwrap();
    assert!(text.contains(r#"cache_operations_total{operation="put",result="ok"}"#));
    assert!(text.contains("cluster_auxiliary_nodes 3"));
    assert!(text.contains("zookeeper_connected 1"));
    let aux_text = http().get(format!("{}/metrics", _a[0].url())).send().unwrap().text().unwrap();
    assert!(aux_text.contains("cache_size_current"));
}

#[test]
fn auxiliary_joins_and_dies_without_errors() {
    let zk = ZooKeeper::start();
    let c = Cluster::new(&zk, &[("REPLICAS", "1")]);
    let mut auxes: Vec<Node> = (0..2).map(|i| c.auxiliary(&format!("aux-{i}"), &[])).collect();
    let m = c.master("master-1", &[]);
    wait_aux_count(&m, 2, Duration::from_secs(15));
    for i in 0..300 {
        assert_eq!(put(&m, &format!("k{i}"), "v"), StatusCode::OK);
    }

    // A third auxiliary joins the placement.
    auxes.push(c.auxiliary("aux-2", &[]));
    wait_aux_count(&m, 3, Duration::from_secs(10));
    for i in 300..600 {
        assert_eq!(put(&m, &format!("k{i}"), "v"), StatusCode::OK);
    }
    let nodes = json(http().get(format!("{}/nodes", m.url())).send().unwrap());
    let newcomer = nodes["auxiliaries"].as_array().unwrap().iter().find(|a| a["id"] == "aux-2").unwrap().clone();
    assert!(newcomer["keys"].as_u64().unwrap() > 50, "newcomer takes writes: {nodes}");

    // kill -9 one: it drops out within the session timeout (4 s) plus a tick and change.
    let killed_at = Instant::now();
    auxes[0].proc.kill();
    wait_aux_count(&m, 2, Duration::from_secs(12));
    let detection = killed_at.elapsed();
    println!("dead auxiliary removed from placement after {detection:?}");
    // Once the master has noticed, nothing errors: keys of the dead node miss, others hit.
    let mut hits = 0;
    for i in 0..600 {
        let (s, _) = get(&m, &format!("k{i}"));
        assert!(s == StatusCode::OK || s == StatusCode::NOT_FOUND, "k{i}: {s}");
        hits += (s == StatusCode::OK) as u32;
        assert_eq!(put(&m, &format!("new{i}"), "v"), StatusCode::OK);
    }
    assert!(hits > 200, "survivors still serve their keys ({hits})");
}

#[test]
fn lru_bound_and_eviction_through_the_cluster() {
    let zk = ZooKeeper::start();
    let c = Cluster::new(&zk, &[("REPLICAS", "1")]);
    let aux = c.auxiliary("aux-0", &[("CACHE_SIZE", "100")]);
    let m = c.master("master-1", &[]);
    wait_aux_count(&m, 1, Duration::from_secs(15));
    for i in 0..300 {
        assert_eq!(put(&m, &format!("k{i:03}"), "value"), StatusCode::OK);
    }
    let health = json(http().get(format!("{}/health", aux.url())).send().unwrap());
    assert_eq!(health["keys"], 100, "{health}");
    assert_eq!(get(&m, "k000").0, StatusCode::NOT_FOUND, "oldest evicted");
    assert_eq!(get(&m, "k299").0, StatusCode::OK, "newest kept");
    let text = http().get(format!("{}/metrics", aux.url())).send().unwrap().text().unwrap();
    assert!(text.contains("cache_evictions_total 200"), "{text}");
}

#[test]
fn no_auxiliary_means_503_and_sigterm_leaves_zookeeper() {
    let zk = ZooKeeper::start();
    let c = Cluster::new(&zk, &[]);
    let mut m1 = c.master("master-1", &[]);
    let m2 = c.master("master-2", &[]);
    let r = http().get(format!("{}/health", m1.url())).send().unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let r = http().put(format!("{}/cache/?key=a&value=b", m1.url())).send().unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(json(r)["error"].as_str().is_some());

    let masters = |n: &Node| {
        json(http().get(format!("{}/nodes", n.url())).send().unwrap())["masters"].as_array().map_or(0, |a| a.len())
    };
    wait_until(Duration::from_secs(10), "two masters registered", || masters(&m2) == 2);
    let status = m1.proc.terminate(Duration::from_secs(15)).expect("master exits on SIGTERM");
    assert!(status.success(), "exit status {status:?}");
    // It deleted its znode itself: gone long before the 4 s session timeout.
    wait_until(Duration::from_secs(2), "master-1 to leave ZooKeeper", || masters(&m2) == 1);
}

#[test]
fn internal_port_refuses_peers_without_the_token() {
    use std::io::{Read, Write};
    let zk = ZooKeeper::start();
    let c = Cluster::new(&zk, &[("REPLICAS", "1")]);
    let aux = c.auxiliary("aux-0", &[]);
    let m = c.master("master-1", &[]);
    wait_aux_count(&m, 1, Duration::from_secs(15));

    let frame = |id: u64, req: &tiercache_protocol::Request| {
        let body = tiercache_protocol::encode(id, req).unwrap();
        let mut out = (body.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(&body);
        out
    };
    let put = tiercache_protocol::Request::Put {
        key: bytes::Bytes::from_static(b"intruder"),
        value: bytes::Bytes::from_static(b"x"),
        version: u64::MAX,
        ttl_ms: 0,
    };
    // Without a hello, and with a wrong token: nothing is stored, the connection is closed.
    for first in [
        frame(1, &put),
        frame(
            1,
            &tiercache_protocol::Request::Hello {
                token: "wrong-token".into(),
                protocol: tiercache_protocol::PROTOCOL_VERSION,
            },
        ),
    ] {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", aux.data_port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(&first).unwrap();
        let _ = s.write_all(&frame(2, &put));
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        assert!(!String::from_utf8_lossy(&buf).contains("Welcome"));
    }
    assert_eq!(get(&m, "intruder").0, StatusCode::NOT_FOUND);

    // A peer of an older release (the protocol-1 handshake, right token) is told why, in the
    // answer and in the auxiliary's log, and gets nothing else either.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", aux.data_port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(&frame(1, &tiercache_protocol::Request::HelloV1 { token: TOKEN.into() })).unwrap();
    let _ = s.write_all(&frame(2, &put));
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).unwrap();
    let (_, answer) = tiercache_protocol::decode::<tiercache_protocol::Response>(&body).unwrap();
    assert_eq!(
        answer,
        tiercache_protocol::Response::Error(tiercache_protocol::RemoteError::ProtocolMismatch {
            theirs: 1,
            ours: tiercache_protocol::PROTOCOL_VERSION
        })
    );
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(rest.is_empty(), "nothing after the refusal");
    wait_until(Duration::from_secs(5), "the mismatch in the auxiliary's log", || {
        aux.proc.log().contains("internal protocol mismatch: the peer speaks version 1")
    });
    assert_eq!(get(&m, "intruder").0, StatusCode::NOT_FOUND);
}

#[test]
fn bad_environment_stops_with_one_line_naming_the_variable() {
    let cases = [
        ("master", "PORT", "not-a-port"),
        ("master", "WRITE_QUORUM", "9"),
        ("auxiliary", "CACHE_SIZE", "-3"),
        ("auxiliary", "ZK_SERVERS", "nohostport"),
        ("master", "LOG_FORMAT", "yaml"),
        ("master", "REDIS_PORT", "70000"),
    ];
    for (role, var, val) in cases {
        let out =
            std::process::Command::new(bin()).arg(role).env("INTERNAL_TOKEN", TOKEN).env(var, val).output().unwrap();
        assert!(!out.status.success(), "{var}={val} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(var), "{err}");
    }
    let out = std::process::Command::new(bin()).arg("master").env_remove("INTERNAL_TOKEN").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("INTERNAL_TOKEN"));
    // Impossible in local mode: more copies than its three auxiliaries.
    let out =
        std::process::Command::new(bin()).arg("local").env("REPLICAS", "5").env("WRITE_QUORUM", "5").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("REPLICAS") && err.trim().lines().count() == 1, "{err}");
}

/// `--version` names the commit, `--help` lists the settings and a flag sets one; a log
/// filter that matches nothing is said, not obeyed in silence; local binds loopback.
#[test]
fn the_binary_says_which_build_it_is_and_what_is_wrong_with_rust_log() {
    let out = std::process::Command::new(bin()).arg("--version").output().unwrap();
    let v = String::from_utf8_lossy(&out.stdout);
    assert!(v.starts_with(&format!("tiercache {} (commit ", env!("CARGO_PKG_VERSION"))), "{v}");
    // --help lists every setting the role reads, from the one table; secrets only as variables.
    let out = std::process::Command::new(bin()).args(["master", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for line in ["--redis-port <REDIS_PORT>", "[env: WRITE_QUORUM] [default: 1]", "--data-threads", "ADMIN_TOKEN"] {
        assert!(help.contains(line), "{line} in {help}");
    }
    assert!(!help.contains("--admin-token") && !help.contains("--internal-token"), "{help}");
    // A flag sets its variable and wins over the environment.
    let dir = tempfile::tempdir().unwrap();
    let (port, redis_port) = (free_port(), free_port());
    let mut cmd = std::process::Command::new(bin());
    cmd.arg("local")
        .args(["--port", &port.to_string(), "--redis-port", &redis_port.to_string()])
        .current_dir(dir.path())
        .env("PORT", "1")
        .env("RUST_LOG", "bogus%%");
    let p = Proc::spawn("local", cmd, dir.path());
    wait_until(Duration::from_secs(10), "the startup line", || p.log().contains("local mode: one master"));
    let log = p.log();
    assert!(log.contains(&format!("http=127.0.0.1:{port} redis=127.0.0.1:{redis_port}")), "{log}");
    assert!(log.contains("RUST_LOG=\"bogus%%\" names no level or module"), "{log}");
    assert!(log.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION"))), "{log}");
    assert!(!log.contains("admin API"), "no warning on loopback: {log}");
}

#[test]
fn local_mode_serves_without_zookeeper_and_restores_its_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let (port, redis_port) = (free_port(), free_port());
    let start_with = |persist: &str| {
        let mut cmd = std::process::Command::new(bin());
        cmd.arg("local")
            .current_dir(dir.path())
            .env_clear()
            .env("PORT", port.to_string())
            .env("REDIS_PORT", redis_port.to_string())
            .env("BIND_ADDR", "127.0.0.1")
            .env("LOCAL_PERSIST", persist)
            .env("RUST_LOG", "info");
        let p = Proc::spawn("local", cmd, dir.path());
        let n = Node { id: "local".into(), port, data_port: 0, proc: p };
        wait_until(Duration::from_secs(20), "local mode to serve", || aux_count(&n) == 3);
        n
    };
    let start = || start_with("1");
    let mut n = start();
    for i in 0..100 {
        assert_eq!(put(&n, &format!("k{i}"), &format!("v{i}")), StatusCode::OK);
    }
    assert_eq!(get(&n, "k7"), (StatusCode::OK, b"v7".to_vec()));
    // The same keyspace over RESP.
    let mut redis = redis::Client::open(format!("redis://127.0.0.1:{redis_port}/")).unwrap().get_connection().unwrap();
    assert_eq!(redis::cmd("GET").arg("k7").query::<String>(&mut redis).unwrap(), "v7");
    let nodes = json(http().get(format!("{}/nodes", n.url())).send().unwrap());
    assert_eq!(nodes["auxiliaries"].as_array().unwrap().len(), 3);
    assert!(nodes["auxiliaries"].as_array().unwrap().iter().all(|a| a["address"] != a["data_address"]), "{nodes}");
    // The store's series as an auxiliary exports them (every copy counted: REPLICAS=2), and
    // nothing about a ZooKeeper it does not have.
    let metrics = http().get(format!("{}/metrics", n.url())).send().unwrap().text().unwrap();
    assert!(metrics.contains("cache_size_current 200"), "{metrics}");
    assert!(metrics.contains("process_resident_memory_bytes") && !metrics.contains("zookeeper_connected"));
    // SIGTERM takes a final snapshot (default BACKUP_DIR=./backup); a restart restores it.
    let st = n.proc.terminate(Duration::from_secs(15)).expect("exits on SIGTERM");
    assert!(st.success(), "{st:?}");
    let mut n = start();
    for i in 0..100 {
        assert_eq!(get(&n, &format!("k{i}")), (StatusCode::OK, format!("v{i}").into_bytes()));
    }
    // LOCAL_PERSIST=0: nothing restored, and nothing written for the next start.
    n.proc.terminate(Duration::from_secs(15)).expect("exits on SIGTERM");
    let mut n = start_with("0");
    assert_eq!(get(&n, "k7").0, StatusCode::NOT_FOUND);
    assert_eq!(put(&n, "forgotten", "v"), StatusCode::OK);
    n.proc.terminate(Duration::from_secs(15)).expect("exits on SIGTERM");
    let n = start();
    assert_eq!(get(&n, "forgotten").0, StatusCode::NOT_FOUND);
    assert_eq!(get(&n, "k7"), (StatusCode::OK, b"v7".to_vec()), "the earlier snapshots stay untouched");
}

/// The backlog of a listening socket, as `ss -ltn` shows it (Send-Q).
fn listen_backlog(port: u16) -> Option<u64> {
    let out = std::process::Command::new("ss").args(["-ltnH", &format!("sport = :{port}")]).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().next()?.split_whitespace().nth(2)?.parse().ok()
}

#[test]
fn the_listen_backlog_is_the_one_asked_for() {
    let somaxconn: u64 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(4096);
    let zk = ZooKeeper::start();
    let c = Cluster::new(&zk, &[]);
    let aux = c.auxiliary("aux-0", &[]);
    let m = c.master("master-1", &[]);
    for (what, port) in [("master HTTP", m.port), ("auxiliary HTTP", aux.port), ("auxiliary data", aux.data_port)] {
        assert_eq!(listen_backlog(port), Some(somaxconn.min(4096)), "{what} port {port}: `ss -ltn` shows the backlog");
    }
}
