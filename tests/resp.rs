//! The Redis protocol front end with real processes: two masters over three auxiliaries,
//! written through one and read through the other, with the `redis` crate, raw sockets and
//! (when installed) redis-cli and redis-benchmark.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use redis::{Connection, Value};
use std::io::{Read, Write};
use std::time::Duration;

struct Masters {
    _c: Cluster,
    _auxes: Vec<Node>,
    m1: Node,
    p1: u16,
    p2: u16,
    _m2: Node,
}

fn cluster(zk: &ZooKeeper) -> Masters {
    cluster_with(zk, &[])
}

fn cluster_with(zk: &ZooKeeper, env: &[(&str, &str)]) -> Masters {
    let mut all = vec![("REPLICAS", "2")];
    all.extend_from_slice(env);
    let c = Cluster::new(zk, &all);
    let auxes: Vec<Node> = (0..3).map(|i| c.auxiliary(&format!("aux-{i}"), &[])).collect();
    let (p1, p2) = (free_port(), free_port());
    let m1 = c.master("master-1", &[("REDIS_PORT", &p1.to_string())]);
    let m2 = c.master("master-2", &[("REDIS_PORT", &p2.to_string())]);
    wait_aux_count(&m1, 3, Duration::from_secs(15));
    wait_aux_count(&m2, 3, Duration::from_secs(15));
    Masters { _c: c, _auxes: auxes, m1, p1, p2, _m2: m2 }
}

/// The error text of a command that must fail.
fn error(con: &mut Connection, args: &[&[u8]]) -> String {
    match q::<Value>(con, args) {
        Err(e) => e.to_string(),
        Ok(v) => panic!("{:?} answered {v:?}", String::from_utf8_lossy(args[0])),
    }
}

#[test]
fn strings_and_keys_through_one_master_read_through_another() {
    let zk = ZooKeeper::start();
    let m = cluster(&zk);
    let (mut a, mut b) = (conn(m.p1), conn(m.p2));

    assert_eq!(q::<String>(&mut a, &[b"PING"]).unwrap(), "PONG");
    assert_eq!(q::<String>(&mut a, &[b"PING", b"hi"]).unwrap(), "hi");
    assert_eq!(q::<String>(&mut a, &[b"ECHO", b"x y"]).unwrap(), "x y");
    assert_eq!(q::<String>(&mut a, &[b"SET", b"k", b"v"]).unwrap(), "OK");
    assert_eq!(q::<String>(&mut b, &[b"GET", b"k"]).unwrap(), "v");
    assert_eq!(q::<Option<String>>(&mut b, &[b"GET", b"missing"]).unwrap(), None);

    // Binary keys and values, both ways, and the HTTP API sees the same keyspace.
    let key: &[u8] = b"bin\x00\xff\r\nkey";
    let value: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
    assert_eq!(q::<String>(&mut a, &[b"SET", key, &value]).unwrap(), "OK");
    assert_eq!(q::<Vec<u8>>(&mut b, &[b"GET", key]).unwrap(), value);
    assert_eq!(put(&m.m1, "from-http", "h"), reqwest::StatusCode::OK);
    assert_eq!(q::<String>(&mut b, &[b"GET", b"from-http"]).unwrap(), "h");
    q::<String>(&mut a, &[b"SET", b"from-resp", b"r"]).unwrap();
    assert_eq!(get(&m.m1, "from-resp"), (reqwest::StatusCode::OK, b"r".to_vec()));

    // Expiry.
    assert_eq!(q::<i64>(&mut b, &[b"TTL", b"k"]).unwrap(), -1);
    assert_eq!(q::<i64>(&mut b, &[b"TTL", b"missing"]).unwrap(), -2);
    assert_eq!(q::<String>(&mut a, &[b"SET", b"t", b"v", b"EX", b"100"]).unwrap(), "OK");
    let ttl = q::<i64>(&mut b, &[b"TTL", b"t"]).unwrap();
    assert!((98..=100).contains(&ttl), "{ttl}");
    let pttl = q::<i64>(&mut b, &[b"PTTL", b"t"]).unwrap();
    assert!((98_000..=100_000).contains(&pttl), "{pttl}");
    assert_eq!(q::<i64>(&mut a, &[b"PERSIST", b"t"]).unwrap(), 1);
    assert_eq!(q::<i64>(&mut b, &[b"TTL", b"t"]).unwrap(), -1);
    assert_eq!(q::<i64>(&mut a, &[b"EXPIRE", b"t", b"50"]).unwrap(), 1);
    assert!((48..=50).contains(&q::<i64>(&mut b, &[b"TTL", b"t"]).unwrap()));
    assert_eq!(q::<i64>(&mut a, &[b"EXPIRE", b"missing", b"50"]).unwrap(), 0);
    assert_eq!(q::<String>(&mut a, &[b"PSETEX", b"p", b"1000", b"v"]).unwrap(), "OK");
    assert_eq!(q::<String>(&mut a, &[b"SET", b"short", b"v", b"PX", b"300"]).unwrap(), "OK");
    std::thread::sleep(Duration::from_millis(1300));
    assert_eq!(q::<Option<String>>(&mut b, &[b"GET", b"short"]).unwrap(), None);
    assert_eq!(q::<Option<String>>(&mut b, &[b"GET", b"p"]).unwrap(), None);
    assert_eq!(q::<String>(&mut a, &[b"GETEX", b"k", b"EX", b"200"]).unwrap(), "v");
    assert!((198..=200).contains(&q::<i64>(&mut b, &[b"TTL", b"k"]).unwrap()));
    assert_eq!(q::<String>(&mut a, &[b"GETEX", b"k", b"PERSIST"]).unwrap(), "v");
    assert_eq!(q::<i64>(&mut b, &[b"TTL", b"k"]).unwrap(), -1);
    assert_eq!(q::<Option<String>>(&mut a, &[b"GETEX", b"missing"]).unwrap(), None);
    assert_eq!(q::<i64>(&mut a, &[b"TOUCH", b"k", b"missing", b"k"]).unwrap(), 2);
    assert_eq!(q::<i64>(&mut a, &[b"PEXPIRE", b"k", b"-1"]).unwrap(), 1, "a time in the past deletes");
    assert_eq!(q::<i64>(&mut b, &[b"EXISTS", b"k"]).unwrap(), 0);

    // Many keys.
    assert_eq!(q::<String>(&mut a, &[b"MSET", b"a", b"1", b"b", b"2", b"c", b"3"]).unwrap(), "OK");
    let got: Vec<Option<String>> = q(&mut b, &[b"MGET", b"a", b"nope", b"c"]).unwrap();
    assert_eq!(got, vec![Some("1".into()), None, Some("3".into())]);
    assert_eq!(q::<i64>(&mut b, &[b"EXISTS", b"a", b"b", b"a", b"nope"]).unwrap(), 3);
    assert_eq!(q::<i64>(&mut b, &[b"STRLEN", b"a"]).unwrap(), 1);
    assert_eq!(q::<String>(&mut b, &[b"TYPE", b"a"]).unwrap(), "string");
    assert_eq!(q::<String>(&mut b, &[b"TYPE", b"nope"]).unwrap(), "none");
    assert_eq!(q::<i64>(&mut a, &[b"DEL", b"a", b"b", b"nope"]).unwrap(), 2);
    assert_eq!(q::<i64>(&mut a, &[b"UNLINK", b"c"]).unwrap(), 1);
    assert_eq!(q::<i64>(&mut b, &[b"EXISTS", b"a", b"b", b"c"]).unwrap(), 0);

    // Connection commands.
    assert_eq!(q::<String>(&mut a, &[b"SELECT", b"0"]).unwrap(), "OK");
    assert_eq!(q::<String>(&mut a, &[b"CLIENT", b"SETNAME", b"me"]).unwrap(), "OK");
    assert_eq!(q::<String>(&mut a, &[b"CLIENT", b"GETNAME"]).unwrap(), "me");
    assert!(q::<i64>(&mut a, &[b"CLIENT", b"ID"]).unwrap() > 0);
    // COMMAND, COUNT, LIST and INFO come from the table the server dispatches by: every
    // listed command is served (an arity error at worst, never "unknown command").
    let names: Vec<String> = q(&mut a, &[b"COMMAND", b"LIST"]).unwrap();
    assert_eq!(q::<i64>(&mut a, &[b"COMMAND", b"COUNT"]).unwrap(), names.len() as i64);
    assert!(names.len() >= 42, "{names:?}");
    let all: Vec<Value> = q(&mut a, &[b"COMMAND"]).unwrap();
    assert_eq!(all.len(), names.len());
    for name in &names {
        if ["quit", "reset", "flushall", "flushdb", "hello", "auth"].contains(&name.as_str()) {
            continue;
        }
        if let Err(e) = q::<Value>(&mut b, &[name.as_bytes()]) {
            assert!(!e.to_string().contains("unknown command"), "{name} is listed but not served: {e}");
        }
    }
    let info: Vec<Value> = q(&mut a, &[b"COMMAND", b"INFO", b"get", b"nosuch"]).unwrap();
    match &info[..] {
        [Value::Array(get), Value::Nil] => {
            assert_eq!(get[1], Value::Int(2), "GET's arity");
            assert_eq!((&get[3], &get[4], &get[5]), (&Value::Int(1), &Value::Int(1), &Value::Int(1)), "its key");
        }
        other => panic!("COMMAND INFO get nosuch: {other:?}"),
    }
    let hello: Vec<Value> = q(&mut a, &[b"HELLO", b"2"]).unwrap();
    assert!(hello.len() >= 10);
    let info: String = q(&mut a, &[b"INFO"]).unwrap();
    for field in
        ["redis_version:", "connected_clients:", "used_memory:", "keyspace_hits:", "keyspace_misses:", "db0:keys="]
    {
        assert!(info.contains(field), "INFO misses {field}: {info}");
    }
    let time: Vec<String> = q(&mut a, &[b"TIME"]).unwrap();
    assert_eq!(time.len(), 2);
}

#[test]
fn errors_in_redis_words_keep_the_connection() {
    let zk = ZooKeeper::start();
    let m = cluster(&zk);
    let mut a = conn(m.p1);
    let e = error(&mut a, &[b"NOSUCH", b"x", b"y"]);
    assert!(e.contains("unknown command 'nosuch', with args beginning with: 'x' 'y'"), "{e}");
    assert!(error(&mut a, &[b"GET"]).contains("wrong number of arguments for 'get' command"));
    assert!(error(&mut a, &[b"SET", b"k", b"v", b"EX"]).contains("syntax error"));
    assert!(error(&mut a, &[b"SET", b"k", b"v", b"EX", b"x"]).contains("value is not an integer or out of range"));
    assert!(error(&mut a, &[b"SET", b"k", b"v", b"EX", b"0"]).contains("invalid expire time in 'set' command"));
    assert!(error(&mut a, &[b"SET", b"k", b"v", b"FOO"]).contains("syntax error"));
    assert!(error(&mut a, &[b"SELECT", b"1"]).contains("DB index is out of range"));
    q::<String>(&mut a, &[b"SET", b"text", b"abc"]).unwrap();
    assert!(error(&mut a, &[b"INCR", b"text"]).contains("value is not an integer or out of range"));
    q::<String>(&mut a, &[b"SET", b"big", b"9223372036854775807"]).unwrap();
    assert!(error(&mut a, &[b"INCR", b"big"]).contains("increment or decrement would overflow"));
    assert!(error(&mut a, &[b"INCRBY", b"big", b"x"]).contains("value is not an integer or out of range"));
    let long_key = vec![b'k'; 2000];
    assert!(error(&mut a, &[b"GET", &long_key]).contains("KEY_MAX_BYTES"));
    // The connection still serves after every error.
    assert_eq!(q::<String>(&mut a, &[b"PING"]).unwrap(), "PONG");
    let metrics = http().get(format!("{}/metrics", m.m1.url())).send().unwrap().text().unwrap();
    assert!(metrics.contains("resp_connections_current 1"), "{metrics}");
}

#[test]
fn junk_and_huge_announcements_get_a_protocol_error_not_a_crash() {
    let zk = ZooKeeper::start();
    let m = cluster(&zk);
    // A bulk of 2 GB announced: refused at once, before any of it is sent.
    let huge = raw(m.p1, b"*2\r\n$3\r\nGET\r\n$2000000000\r\n");
    assert!(huge.starts_with("-ERR Protocol error: invalid bulk length"), "{huge}");
    assert!(huge.contains("VALUE_MAX_BYTES"), "the setting that bounds it is named: {huge}");
    assert!(raw(m.p1, b"*3000000000\r\n").starts_with("-ERR Protocol error: invalid multibulk length"));
    assert!(raw(m.p1, b"*1\r\n:12\r\n").starts_with("-ERR Protocol error: expected '$'"));
    assert!(raw(m.p1, b"*1\r\n$-7\r\n").starts_with("-ERR Protocol error"));
    let junk: Vec<u8> = (0..200_000u32).map(|i| (i * 7919 % 251) as u8 | 0x80).collect();
    assert!(raw(m.p1, &junk).starts_with("-ERR Protocol error"));
    // Inline commands work, as from telnet.
    assert_eq!(raw(m.p1, b"PING\r\nQUIT\r\n"), "+PONG\r\n+OK\r\n");
    // The master is still up.
    assert_eq!(q::<String>(&mut conn(m.p1), &[b"PING"]).unwrap(), "PONG");
}

#[test]
fn a_pipeline_of_ten_thousand_commands_is_answered_in_order() {
    let zk = ZooKeeper::start();
    let m = cluster(&zk);
    let mut a = conn(m.p1);
    let mut pipe = redis::pipe();
    for i in 0..5000 {
        pipe.cmd("SET").arg(format!("p{i}")).arg(i);
        pipe.cmd("GET").arg(format!("p{i}"));
    }
    let replies: Vec<Value> = pipe.query(&mut a).unwrap();
    assert_eq!(replies.len(), 10_000);
    for (i, pair) in replies.chunks(2).enumerate() {
        assert_eq!(pair[1], Value::BulkString(i.to_string().into_bytes()), "reply {i} out of order");
    }
}

#[test]
fn redis_cli_and_redis_benchmark_run_unmodified() {
    let have = |bin: &str| std::process::Command::new(bin).arg("--version").output().is_ok();
    assert!(
        have("redis-cli") && have("redis-benchmark"),
        "redis-cli and redis-benchmark are missing: apt-get install -y redis-tools (scripts/test.sh does it)"
    );
    let zk = ZooKeeper::start();
    let m = cluster(&zk);
    let port = m.p1.to_string();
    let cli = |args: &[&str]| {
        let out = std::process::Command::new("redis-cli").args(["-p", &port]).args(args).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(cli(&["SET", "cli", "hello"]), "OK");
    assert_eq!(cli(&["GET", "cli"]), "hello");
    assert_eq!(cli(&["PING"]), "PONG");
    let out = std::process::Command::new("redis-benchmark")
        .args(["-p", &m.p2.to_string(), "-t", "set,get", "-n", "2000", "-c", "8", "-q"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text} {}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("SET:") && text.contains("GET:"), "{text}");
    println!("redis-benchmark through a tiercache master: {}", text.replace('\n', " "));
}

#[test]
fn read_modify_write_commands_run_as_one_step() {
    let zk = ZooKeeper::start();
    let m = cluster(&zk);
    let (mut a, mut b) = (conn(m.p1), conn(m.p2));
    // Conditional SET.
    assert_eq!(q::<Option<String>>(&mut a, &[b"SET", b"c", b"1", b"XX"]).unwrap(), None);
    assert_eq!(q::<Option<String>>(&mut a, &[b"SET", b"c", b"1", b"NX"]).unwrap(), Some("OK".into()));
    assert_eq!(q::<Option<String>>(&mut b, &[b"SET", b"c", b"2", b"NX"]).unwrap(), None);
    assert_eq!(q::<Option<String>>(&mut b, &[b"SET", b"c", b"3", b"XX", b"GET"]).unwrap(), Some("1".into()));
    assert_eq!(q::<String>(&mut a, &[b"GET", b"c"]).unwrap(), "3");
    assert_eq!(q::<i64>(&mut a, &[b"SETNX", b"c", b"4"]).unwrap(), 0);
    assert_eq!(q::<i64>(&mut a, &[b"SETNX", b"d", b"4"]).unwrap(), 1);
    q::<String>(&mut a, &[b"SET", b"e", b"v", b"EX", b"100"]).unwrap();
    q::<String>(&mut a, &[b"SET", b"e", b"w", b"KEEPTTL"]).unwrap();
    assert!(q::<i64>(&mut b, &[b"TTL", b"e"]).unwrap() > 90, "KEEPTTL kept the expiry");
    // EXPIRETIME / PEXPIRETIME: the Unix time of the expiry; -1 without one, -2 when absent.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let at = q::<i64>(&mut b, &[b"EXPIRETIME", b"e"]).unwrap();
    assert!((now + 90..=now + 101).contains(&at), "{at} vs {now}");
    assert!((q::<i64>(&mut b, &[b"PEXPIRETIME", b"e"]).unwrap() - at * 1000).abs() < 2000);
    assert_eq!(q::<i64>(&mut b, &[b"EXPIRETIME", b"c"]).unwrap(), -1);
    assert_eq!(q::<i64>(&mut b, &[b"PEXPIRETIME", b"nosuch"]).unwrap(), -2);
    // GETSET: the value before, and the expiry goes (as in Redis).
    assert_eq!(q::<Option<String>>(&mut b, &[b"GETSET", b"e", b"x"]).unwrap(), Some("w".into()));
    assert_eq!(q::<i64>(&mut a, &[b"TTL", b"e"]).unwrap(), -1);
    assert_eq!(q::<Option<String>>(&mut a, &[b"GETSET", b"fresh", b"1"]).unwrap(), None);
    // GETRANGE, Redis's examples.
    q::<String>(&mut a, &[b"SET", b"str", b"This is a string"]).unwrap();
    assert_eq!(q::<String>(&mut b, &[b"GETRANGE", b"str", b"0", b"3"]).unwrap(), "This");
    assert_eq!(q::<String>(&mut b, &[b"GETRANGE", b"str", b"-3", b"-1"]).unwrap(), "ing");
    assert_eq!(q::<String>(&mut b, &[b"GETRANGE", b"str", b"10", b"100"]).unwrap(), "string");
    assert_eq!(q::<String>(&mut b, &[b"GETRANGE", b"nosuch", b"0", b"-1"]).unwrap(), "");
    // INCR family, APPEND, GETDEL.
    assert_eq!(q::<i64>(&mut a, &[b"INCR", b"n"]).unwrap(), 1);
    assert_eq!(q::<i64>(&mut b, &[b"INCRBY", b"n", b"41"]).unwrap(), 42);
    assert_eq!(q::<i64>(&mut a, &[b"DECR", b"n"]).unwrap(), 41);
    assert_eq!(q::<i64>(&mut b, &[b"DECRBY", b"n", b"-9"]).unwrap(), 50);
    assert_eq!(q::<String>(&mut b, &[b"GET", b"n"]).unwrap(), "50");
    assert_eq!(q::<i64>(&mut a, &[b"APPEND", b"s", b"ab"]).unwrap(), 2);
    assert_eq!(q::<i64>(&mut b, &[b"APPEND", b"s", b"cd"]).unwrap(), 4);
    assert_eq!(q::<String>(&mut a, &[b"GETDEL", b"s"]).unwrap(), "abcd");
    assert_eq!(q::<Option<String>>(&mut b, &[b"GETDEL", b"s"]).unwrap(), None);
    assert_eq!(q::<Option<String>>(&mut b, &[b"GET", b"s"]).unwrap(), None);

    // Two masters incrementing one key at once lose no increment.
    const EACH: i64 = 300;
    let threads: Vec<_> = [m.p1, m.p2]
        .into_iter()
        .map(|p| {
            std::thread::spawn(move || {
                let mut c = conn(p);
                for _ in 0..EACH {
                    q::<i64>(&mut c, &[b"INCR", b"counter"]).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // Replicas catch up in the background (WRITE_QUORUM=1); a lost increment never does.
    wait_until(Duration::from_secs(5), "both masters to read every increment", || {
        q::<i64>(&mut a, &[b"GET", b"counter"]).ok() == Some(2 * EACH)
            && q::<i64>(&mut b, &[b"GET", b"counter"]).ok() == Some(2 * EACH)
    });
}

#[test]
fn a_client_password_guards_both_doors_and_only_the_admin_flushes() {
    let zk = ZooKeeper::start();
    let m = cluster_with(&zk, &[("CLIENT_PASSWORD", "client-secret"), ("ADMIN_TOKEN", "admin-secret")]);
    let mut a = conn(m.p1);
    assert!(error(&mut a, &[b"GET", b"k"]).contains("Authentication required"));
    assert!(error(&mut a, &[b"AUTH", b"wrong"]).contains("invalid username-password pair"));
    assert!(error(&mut a, &[b"AUTH", b"admin", b"client-secret"]).contains("invalid username-password pair"));
    // HELLO: refused unauthenticated, or authenticates and switches to RESP3 in one step.
    assert!(raw(m.p1, b"HELLO 3\r\nQUIT\r\n").starts_with("-NOAUTH HELLO must be called"));
    assert!(raw(m.p1, b"HELLO 3 AUTH default wrong\r\nQUIT\r\n").starts_with("-WRONGPASS"));
    let r = raw(m.p1, b"HELLO 3 AUTH default client-secret\r\nGET nothing\r\nQUIT\r\n");
    assert!(r.starts_with("%7\r\n") && r.ends_with("_\r\n+OK\r\n"), "{r:?}");
    assert_eq!(q::<String>(&mut a, &[b"AUTH", b"client-secret"]).unwrap(), "OK");
    for i in 0..50 {
        q::<String>(&mut a, &[b"SET", format!("k{i}").as_bytes(), b"v"]).unwrap();
    }
    // Each key once, though REPLICAS=2 (the second copies land in the background).
    wait_until(Duration::from_secs(5), "DBSIZE 50", || q::<i64>(&mut a, &[b"DBSIZE"]).ok() == Some(50));
    let info: String = q(&mut a, &[b"INFO", b"keyspace"]).unwrap();
    assert!(info.contains("db0:keys=50"), "{info}");
    assert!(error(&mut a, &[b"FLUSHALL"]).contains("no permissions to run the 'flushall' command"));

    // HTTP: the client API wants the password, the admin API the token.
    let url = format!("{}/cache/k1", m.m1.url());
    let r = http().get(&url).send().unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::UNAUTHORIZED);
    assert!(json(r)["error"].as_str().unwrap().contains("CLIENT_PASSWORD"));
    assert_eq!(http().get(&url).bearer_auth("client-secret").send().unwrap().status(), reqwest::StatusCode::OK);
    let flush = format!("{}/flush", m.m1.url());
    assert_eq!(
        http().post(&flush).bearer_auth("client-secret").send().unwrap().status(),
        reqwest::StatusCode::UNAUTHORIZED
    );

    let mut admin = conn(m.p2);
    assert_eq!(q::<String>(&mut admin, &[b"AUTH", b"admin", b"admin-secret"]).unwrap(), "OK");
    assert_eq!(q::<String>(&mut admin, &[b"FLUSHALL"]).unwrap(), "OK");
    assert_eq!(q::<i64>(&mut a, &[b"DBSIZE"]).unwrap(), 0);
    assert_eq!(q::<Option<String>>(&mut a, &[b"GET", b"k1"]).unwrap(), None);
    q::<String>(&mut a, &[b"SET", b"after", b"v"]).unwrap();
    let r = http().post(&flush).bearer_auth("admin-secret").send().unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    assert_eq!(q::<i64>(&mut a, &[b"DBSIZE"]).unwrap(), 0);
}

#[test]
fn scan_walks_the_whole_cluster() {
    let zk = ZooKeeper::start();
    let m = cluster(&zk);
    let mut a = conn(m.p1);
    const N: usize = 1000;
    let mut pipe = redis::pipe();
    for i in 0..N {
        pipe.cmd("SET").arg(format!("scan:{i}")).arg("v").ignore();
    }
    pipe.cmd("SET").arg("other").arg("v").ignore();
    pipe.query::<()>(&mut a).unwrap();
    wait_until(Duration::from_secs(10), "every first owner to hold its keys", || {
        q::<i64>(&mut a, &[b"DBSIZE"]).ok() == Some(N as i64 + 1)
    });
    let walk = |con: &mut Connection, pattern: &[u8]| {
        let mut seen = std::collections::HashSet::new();
        let (mut cursor, mut steps) = (0u64, 0);
        loop {
            let (next, keys): (u64, Vec<String>) =
                q(con, &[b"SCAN", cursor.to_string().as_bytes(), b"MATCH", pattern, b"COUNT", b"50"]).unwrap();
            seen.extend(keys);
            steps += 1;
            if next == 0 {
                return (seen, steps);
            }
            cursor = next;
        }
    };
    let (all, steps) = walk(&mut conn(m.p2), b"*");
    assert_eq!(all.len(), N + 1, "every key at least once");
    assert!(steps > 3, "a walk in steps, not one reply ({steps})");
    let (some, _) = walk(&mut conn(m.p2), b"scan:1??");
    assert_eq!(some.len(), 100, "{some:?}");
    assert!(some.iter().all(|k| k.starts_with("scan:1") && k.len() == 8));
    let (_, typed): (u64, Vec<String>) = q(&mut a, &[b"SCAN", b"0", b"TYPE", b"hash"]).unwrap();
    assert!(typed.is_empty(), "every value is a string");
    // KEYS: the same walk, whole, each key once.
    let mut keys: Vec<String> = q(&mut conn(m.p2), &[b"KEYS", b"scan:1??"]).unwrap();
    keys.sort();
    let mut expected: Vec<String> = some.into_iter().collect();
    expected.sort();
    assert_eq!(keys, expected);
    assert_eq!(q::<Vec<String>>(&mut a, &[b"KEYS", b"*"]).unwrap().len(), N + 1);
}

/// What tools ask on connect: CONFIG GET, FUNCTION FLUSH/LIST, INFO; what they must not be
/// told: that this is a Redis Cluster, or that the data is the master's memory.
#[test]
fn tools_that_read_config_info_and_functions_on_connect_are_answered_truly() {
    let zk = ZooKeeper::start();
    let m = cluster(&zk);
    let mut a = conn(m.p1);
    let policy: Vec<String> = q(&mut a, &[b"CONFIG", b"GET", b"maxmemory-policy"]).unwrap();
    assert_eq!(policy, ["maxmemory-policy", "allkeys-lru"]);
    let max: Vec<String> = q(&mut a, &[b"CONFIG", b"GET", b"maxclients", b"databases"]).unwrap();
    assert_eq!(max, ["databases", "1", "maxclients", "10000"]);
    let max: Vec<String> = q(&mut a, &[b"CONFIG", b"GET", b"max*"]).unwrap();
    assert_eq!(max.iter().step_by(2).collect::<Vec<_>>(), ["maxmemory", "maxmemory-policy", "maxclients"]);
    let all: Vec<String> = q(&mut a, &[b"CONFIG", b"GET", b"*"]).unwrap();
    assert!(all.chunks(2).any(|kv| kv[0] == "port" && kv[1] == m.p1.to_string()), "{all:?}");
    assert!(all.chunks(2).any(|kv| kv[0] == "requirepass" && kv[1].is_empty()), "{all:?}");
    let e = error(&mut a, &[b"CONFIG", b"SET", b"maxmemory", b"1gb"]);
    assert!(e.contains("can't set immutable config"), "{e}");
    let e = error(&mut a, &[b"CONFIG", b"SET", b"nosuch", b"1"]);
    assert!(e.contains("Unknown option or number of arguments for CONFIG SET - 'nosuch'"), "{e}");
    assert_eq!(q::<String>(&mut a, &[b"CONFIG", b"RESETSTAT"]).unwrap(), "OK");
    assert_eq!(q::<String>(&mut a, &[b"FUNCTION", b"FLUSH"]).unwrap(), "OK");
    assert!(q::<Vec<Value>>(&mut a, &[b"FUNCTION", b"LIST"]).unwrap().is_empty());
    assert!(error(&mut a, &[b"DEBUG", b"SLEEP", b"0"]).contains("not supported"));
    // COMMAND DOCS, what redis-cli's hints and `help SET` read: every command served has one.
    let docs: Vec<Value> = q(&mut a, &[b"COMMAND", b"DOCS"]).unwrap();
    let served: i64 = q(&mut a, &[b"COMMAND", b"COUNT"]).unwrap();
    assert_eq!(docs.len() as i64, 2 * served, "a name and its fields for every command");
    let set: Vec<Value> = q(&mut a, &[b"COMMAND", b"DOCS", b"set", b"nosuch"]).unwrap();
    let text = format!("{set:?}");
    assert!(matches!(&set[..], [Value::BulkString(n), Value::Array(_)] if n == b"set"), "{text}");
    for field in ["summary", "since", "group", "string", "arguments", "expiration", "KEEPTTL", "NX", "optional"] {
        assert!(text.contains(field), "{field} in {text}");
    }

    q::<()>(&mut a, &[b"SET", b"k", b"v"]).unwrap();
    // Both copies: the second may be written a moment after the SET is acknowledged, and an
    // auxiliary slow to answer INFO's count (1 s, under a loaded machine) is left out of that
    // INFO; the count is the cluster's as soon as both answer.
    let mut info = String::new();
    wait_until(Duration::from_secs(10), "INFO counts both copies", || {
        info = q(&mut a, &[b"INFO"]).unwrap();
        info.contains("tiercache_cluster_entries:2")
    });
    for line in [
        "redis_mode:standalone",
        "cluster_enabled:0",
        "evicted_keys:0",
        "role:master",
        "arch_bits:64",
        &format!("tcp_port:{}", m.p1),
    ] {
        assert!(info.contains(line), "{line} in {info}");
    }
    assert!(!info.contains("redis_mode:cluster"));
    // The master's own memory: megabytes of a running process, not the 3 bytes of data.
    let used = info.lines().find_map(|l| l.strip_prefix("used_memory:")).unwrap().trim().parse::<u64>().unwrap();
    assert!(used > 1 << 20, "{used}");
    let only: String = q(&mut a, &[b"INFO", b"cluster"]).unwrap();
    assert_eq!(only.trim(), "# Cluster\r\ncluster_enabled:0");
}

/// EXPIRE racing SETs from another master never brings back an overwritten value: it changes
/// only the expiry, keeping the value's version, so every later SET still wins.
#[test]
fn expire_racing_writes_never_undoes_one() {
    let zk = ZooKeeper::start();
    let m = cluster(&zk);
    // Past the auxiliaries' catch-up, so reads go to the primary alone.
    wait_until(Duration::from_secs(20), "auxiliaries ready", || {
        m._auxes
            .iter()
            .all(|a| http().get(format!("{}/health?ready=1", a.url())).send().is_ok_and(|r| r.status().is_success()))
    });
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let expirer = {
        let (stop, port) = (stop.clone(), m.p2);
        std::thread::spawn(move || {
            let mut c = conn(port);
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for cmd in [
                    &[b"EXPIRE" as &[u8], b"race", b"1000"][..],
                    &[b"PERSIST", b"race"],
                    &[b"GETEX", b"race", b"EX", b"900"],
                ] {
                    q::<Value>(&mut c, cmd).unwrap();
                    n += 1;
                }
            }
            n
        })
    };
    let mut w = conn(m.p1);
    let mut last = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while std::time::Instant::now() < deadline {
        last += 1;
        q::<String>(&mut w, &[b"SET", b"race", last.to_string().as_bytes()]).unwrap();
        // Read back at once: an EXPIRE that rewrote the value it had read would show here.
        let got: i64 = q(&mut w, &[b"GET", b"race"]).unwrap();
        assert!(got >= last, "read {got} right after SET {last} was acknowledged");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let expires = expirer.join().unwrap();
    assert!(expires > 100 && last > 100, "the race ran ({last} SETs, {expires} expiry commands)");
    for port in [m.p1, m.p2] {
        let got: i64 = q(&mut conn(port), &[b"GET", b"race"]).unwrap();
        assert_eq!(got, last, "the last acknowledged SET, through port {port}");
    }
    // The expiry commands themselves still work.
    assert_eq!(q::<i64>(&mut w, &[b"EXPIRE", b"race", b"500"]).unwrap(), 1);
    assert!(q::<i64>(&mut conn(m.p2), &[b"TTL", b"race"]).unwrap() > 400);
    assert_eq!(q::<i64>(&mut w, &[b"PERSIST", b"race"]).unwrap(), 1);
    assert_eq!(q::<i64>(&mut conn(m.p2), &[b"TTL", b"race"]).unwrap(), -1);
    assert_eq!(q::<i64>(&mut w, &[b"PERSIST", b"race"]).unwrap(), 0);
    assert_eq!(q::<i64>(&mut w, &[b"EXPIRE", b"nope", b"5"]).unwrap(), 0);
}

/// HELLO 3 switches a connection to RESP3 (a map for HELLO, `_` for a null) and HELLO 2 or
/// RESET back; other connections stay on RESP2.
#[test]
fn hello_3_speaks_resp3_until_told_otherwise() {
    let zk = ZooKeeper::start();
    let m = cluster(&zk);
    let r = raw(
        m.p1,
        b"HELLO 3\r\nGET nothing\r\nMGET a b\r\nSET k v\r\nGET k\r\nHELLO 2\r\nGET nothing\r\nHELLO 3\r\nRESET\r\nGET nothing\r\nHELLO 4\r\nQUIT\r\n",
    );
    let (hello3, rest) = r.split_once("_\r\n").unwrap_or_else(|| panic!("{r:?}"));
    assert!(hello3.starts_with("%7\r\n") && hello3.contains("$5\r\nproto\r\n:3\r\n"), "{hello3:?}");
    assert!(rest.starts_with("*2\r\n_\r\n_\r\n+OK\r\n$1\r\nv\r\n*14\r\n"), "{rest:?}");
    assert!(
        rest.contains(":2\r\n") && rest.ends_with("+RESET\r\n$-1\r\n-NOPROTO unsupported protocol version\r\n+OK\r\n"),
        "{rest:?}"
    );
    assert_eq!(raw(m.p2, b"GET nothing\r\nQUIT\r\n"), "$-1\r\n+OK\r\n");
}

/// `MAX_CLIENTS`: past it a client gets Redis's error and is closed, and a slot freed is
/// taken again; a limit the open-file limit cannot hold is lowered at start with a line.
#[test]
fn clients_past_max_clients_are_refused_in_redis_words() {
    let zk = ZooKeeper::start();
    let c = Cluster::new(&zk, &[("REPLICAS", "1")]);
    let _aux = c.auxiliary("aux-0", &[]);
    let port = free_port();
    let m = c.master("master-1", &[("REDIS_PORT", &port.to_string()), ("MAX_CLIENTS", "3")]);
    wait_aux_count(&m, 1, Duration::from_secs(15));
    let mut open: Vec<Connection> = (0..3).map(|_| conn(port)).collect();
    for con in &mut open {
        assert_eq!(q::<String>(con, &[b"PING"]).unwrap(), "PONG");
    }
    let mut fourth = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    fourth.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = fourth.write_all(b"PING\r\n");
    let mut answer = String::new();
    let _ = fourth.read_to_string(&mut answer);
    assert_eq!(answer, "-ERR max number of clients reached\r\n");
    let metrics = http().get(format!("{}/metrics", m.url())).send().unwrap().text().unwrap();
    assert!(metrics.contains("resp_connections_rejected_total 1"), "{metrics}");
    drop(open.pop());
    wait_until(Duration::from_secs(5), "a freed slot to be taken again", || {
        redis::Client::open(format!("redis://127.0.0.1:{port}/"))
            .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(2)))
            .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
            .is_ok()
    });

    // An open-file limit of 300 holds 300 - 128 reserved = 172 clients, not 10,000.
    let p2 = free_port();
    let wrapper = ["sh".to_string(), "-c".into(), "ulimit -n 300; exec \"$0\" \"$@\"".into()];
    let m2 = c.master_under("master-2", &[("REDIS_PORT", &p2.to_string())], &wrapper);
    wait_until(Duration::from_secs(5), "the lowered limit in the log", || {
        m2.proc.log().contains("MAX_CLIENTS lowered") && m2.proc.log().contains("lowered_to=172")
    });

    // A stop drains: idle connections are closed (not left to the exit), and the master exits.
    let mut idle = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    idle.write_all(b"PING\r\n").unwrap();
    let mut pong = [0u8; 7];
    idle.read_exact(&mut pong).unwrap();
    assert_eq!(&pong, b"+PONG\r\n");
    let mut m = m;
    let status = m.proc.terminate(Duration::from_secs(20)).expect("the master exits on SIGTERM");
    assert!(status.success(), "{status:?}");
    let mut rest = Vec::new();
    assert!(idle.read_to_end(&mut rest).is_ok_and(|n| n == 0), "the idle connection was closed: {rest:?}");
    assert!(m.proc.log().contains("draining HTTP requests and RESP connections"));
}

/// The string and key commands programs call beyond GET and SET, with Redis's replies and
/// errors, written through one master and read through the other; the multi-key ones group
/// keys by hash tag and refuse keys of two groups as Redis Cluster does. INFO counts the keys
/// that expire.
#[test]
fn renames_copies_ranges_floats_and_objects_answer_as_redis_does() {
    let zk = ZooKeeper::start();
    let m = cluster(&zk);
    let (mut a, mut b) = (conn(m.p1), conn(m.p2));
    q::<()>(&mut a, &[b"SET", b"{u1}:name", b"alice", b"EX", b"100"]).unwrap();
    assert_eq!(q::<String>(&mut a, &[b"RENAME", b"{u1}:name", b"{u1}:who"]).unwrap(), "OK");
    assert_eq!(q::<Option<String>>(&mut b, &[b"GET", b"{u1}:name"]).unwrap(), None);
    assert_eq!(q::<String>(&mut b, &[b"GET", b"{u1}:who"]).unwrap(), "alice");
    let ttl: i64 = q(&mut b, &[b"TTL", b"{u1}:who"]).unwrap();
    assert!((95..=100).contains(&ttl), "the expiry moves with the value: {ttl}");
    assert!(error(&mut a, &[b"RENAME", b"{u1}:none", b"{u1}:x"]).contains("no such key"));
    assert!(error(&mut a, &[b"RENAME", b"{u1}:who", b"{u2}:who"]).contains("hash to the same slot"));
    q::<()>(&mut a, &[b"SET", b"{u1}:other", b"bob"]).unwrap();
    assert_eq!(q::<i64>(&mut a, &[b"RENAMENX", b"{u1}:who", b"{u1}:other"]).unwrap(), 0);
    assert_eq!(q::<i64>(&mut a, &[b"COPY", b"{u1}:who", b"{u1}:other"]).unwrap(), 0, "no REPLACE");
    assert_eq!(q::<i64>(&mut a, &[b"COPY", b"{u1}:who", b"{u1}:other", b"REPLACE"]).unwrap(), 1);
    assert_eq!(q::<String>(&mut b, &[b"GET", b"{u1}:other"]).unwrap(), "alice");
    assert!(error(&mut a, &[b"COPY", b"{u1}:who", b"{u1}:x", b"DB", b"1"]).contains("out of range"));

    assert_eq!(q::<i64>(&mut a, &[b"MSETNX", b"{m}:1", b"a", b"{m}:2", b"b"]).unwrap(), 1);
    assert_eq!(q::<i64>(&mut b, &[b"MSETNX", b"{m}:2", b"x", b"{m}:3", b"y"]).unwrap(), 0);
    assert_eq!(q::<Option<String>>(&mut a, &[b"GET", b"{m}:3"]).unwrap(), None, "all or nothing");
    assert!(error(&mut a, &[b"MSETNX", b"p", b"1", b"q", b"2"]).contains("hash to the same slot"));

    assert_eq!(q::<i64>(&mut a, &[b"SETRANGE", b"r", b"3", b"xyz"]).unwrap(), 6);
    assert_eq!(q::<Vec<u8>>(&mut b, &[b"GET", b"r"]).unwrap(), b"\0\0\0xyz");
    assert_eq!(q::<i64>(&mut b, &[b"SETRANGE", b"r", b"1", b"A"]).unwrap(), 6);
    assert_eq!(q::<Vec<u8>>(&mut a, &[b"GET", b"r"]).unwrap(), b"\0A\0xyz");
    assert_eq!(q::<i64>(&mut a, &[b"SETRANGE", b"absent", b"5", b""]).unwrap(), 0);
    assert_eq!(q::<i64>(&mut a, &[b"EXISTS", b"absent"]).unwrap(), 0);
    assert!(error(&mut a, &[b"SETRANGE", b"r", b"-1", b"x"]).contains("offset is out of range"));
    assert!(error(&mut a, &[b"SETRANGE", b"r", b"99999999999", b"x"]).contains("VALUE_MAX_BYTES"));

    q::<()>(&mut a, &[b"SET", b"f", b"10.50"]).unwrap();
    assert_eq!(q::<String>(&mut a, &[b"INCRBYFLOAT", b"f", b"0.1"]).unwrap(), "10.6");
    assert_eq!(q::<String>(&mut b, &[b"INCRBYFLOAT", b"f", b"-5"]).unwrap(), "5.6");
    q::<()>(&mut a, &[b"SET", b"f", b"5.0e3"]).unwrap();
    assert_eq!(q::<String>(&mut b, &[b"INCRBYFLOAT", b"f", b"2.0e2"]).unwrap(), "5200");
    assert!(error(&mut a, &[b"INCRBYFLOAT", b"{u1}:other", b"1"]).contains("not a valid float"));
    assert!(error(&mut a, &[b"INCRBYFLOAT", b"f", b"abc"]).contains("not a valid float"));

    assert_eq!(q::<String>(&mut a, &[b"OBJECT", b"ENCODING", b"f"]).unwrap(), "int");
    assert_eq!(q::<String>(&mut a, &[b"OBJECT", b"ENCODING", b"{u1}:other"]).unwrap(), "embstr");
    assert_eq!(q::<Option<String>>(&mut a, &[b"OBJECT", b"ENCODING", b"absent"]).unwrap(), None);
    assert!(error(&mut a, &[b"OBJECT", b"FREQ", b"f"]).contains("LFU"));
    let key: String = q(&mut a, &[b"RANDOMKEY"]).unwrap();
    assert_eq!(q::<i64>(&mut b, &[b"EXISTS", key.as_bytes()]).unwrap(), 1, "{key}");

    // INFO counts each key once, and the ones with an expiry.
    let info: String = q(&mut b, &[b"INFO", b"keyspace"]).unwrap();
    let line = info.lines().find(|l| l.starts_with("db0:")).unwrap_or_else(|| panic!("{info}"));
    // {u1}:who and {u1}:other (COPY takes the expiry along), {m}:1, {m}:2, r, f.
    assert!(line.starts_with("db0:keys=6,expires=2,avg_ttl="), "{line}");
    let avg: u64 = line.rsplit('=').next().unwrap().parse().unwrap();
    assert!((90_000..=100_000).contains(&avg), "{line}");
}

/// A SET acknowledged right after another master's step on the key (in the same millisecond,
/// by a master whose clock is a little behind) is what the next read sees: it never hides
/// behind the older step's version.
#[test]
fn a_set_right_after_another_masters_step_is_never_hidden() {
    let zk = ZooKeeper::start();
    let m = cluster(&zk);
    let (mut a, mut b) = (conn(m.p1), conn(m.p2));
    for i in 0..300 {
        let v = format!("set-{i}");
        q::<()>(&mut b, &[b"SET", b"k", b"1"]).unwrap();
        q::<i64>(&mut b, &[b"INCR", b"k"]).unwrap();
        q::<()>(&mut a, &[b"SET", b"k", v.as_bytes()]).unwrap();
        assert_eq!(q::<String>(&mut b, &[b"GET", b"k"]).unwrap(), v, "round {i}");
    }
}

/// A DEL acknowledged right after another master's step on the key is what the next read sees.
#[test]
fn a_del_right_after_another_masters_step_is_never_hidden() {
    let zk = ZooKeeper::start();
    let m = cluster(&zk);
    let (mut a, mut b) = (conn(m.p1), conn(m.p2));
    for i in 0..300 {
        q::<()>(&mut b, &[b"SET", b"d", b"1"]).unwrap();
        q::<i64>(&mut b, &[b"INCR", b"d"]).unwrap();
        assert_eq!(q::<i64>(&mut a, &[b"DEL", b"d"]).unwrap(), 1, "round {i}");
        assert_eq!(q::<i64>(&mut b, &[b"EXISTS", b"d"]).unwrap(), 0, "round {i}");
    }
}

/// Many clients writing one hot key through two masters at once (redis-benchmark's default
/// `key:__rand_int__`): every SET and DEL is acknowledged, as Redis would, and the last one
/// written is what a read sees afterwards. A write kept out by a concurrent newer one is not an
/// error (it failed with TRYAGAIN after three tries before: the compose smoke's redis-benchmark).
#[test]
fn concurrent_writes_to_one_hot_key_through_two_masters_all_succeed() {
    let zk = ZooKeeper::start();
    let m = cluster(&zk);
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    let workers: Vec<_> = (0..16)
        .map(|w| {
            let port = if w % 2 == 0 { m.p1 } else { m.p2 };
            std::thread::spawn(move || {
                let mut c = conn(port);
                let mut n = 0u64;
                while std::time::Instant::now() < deadline {
                    let v = format!("{w}-{n}");
                    q::<()>(&mut c, &[b"SET", b"hot", v.as_bytes()]).unwrap_or_else(|e| panic!("SET {v}: {e}"));
                    if n.is_multiple_of(7) {
                        q::<i64>(&mut c, &[b"DEL", b"hot"]).unwrap_or_else(|e| panic!("DEL: {e}"));
                    }
                    n += 1;
                }
                n
            })
        })
        .collect();
    let total: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    assert!(total > 100, "only {total} writes in 3 s");
    let (mut a, mut b) = (conn(m.p1), conn(m.p2));
    q::<()>(&mut a, &[b"SET", b"hot", b"last"]).unwrap();
    assert_eq!(q::<String>(&mut b, &[b"GET", b"hot"]).unwrap(), "last");
}
