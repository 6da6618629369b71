//! Redis transactions with real processes: MULTI / EXEC / DISCARD, WATCH / UNWATCH and hash
//! tags, over two masters and three auxiliaries (REPLICAS=2), with the `redis` crate, raw
//! sockets and redis-py (tests/redis_py_transactions.py). A transaction's keys (and watched
//! keys) must share one hash group, by Redis Cluster's `{tag}` rule; its commands see their
//! own earlier writes, and its writes land together or not at all.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use redis::{Connection, ConnectionLike, RedisResult, Value};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

struct Masters {
    c: Cluster,
    _auxes: Vec<Node>,
    _m1: Node,
    _m2: Node,
    p1: u16,
    p2: u16,
}

fn cluster(zk: &ZooKeeper) -> Masters {
    let c = Cluster::new(zk, &[("REPLICAS", "2")]);
    let auxes: Vec<Node> = (0..3).map(|i| c.auxiliary(&format!("aux-{i}"), &[])).collect();
    let (p1, p2) = (free_port(), free_port());
    let m1 = c.master("master-1", &[("REDIS_PORT", &p1.to_string())]);
    let m2 = c.master("master-2", &[("REDIS_PORT", &p2.to_string())]);
    wait_aux_count(&m1, 3, Duration::from_secs(15));
    wait_aux_count(&m2, 3, Duration::from_secs(15));
    // Past the auxiliaries' catch-up, so a key's primary answers its reads alone.
    wait_until(Duration::from_secs(20), "auxiliaries ready", || {
        auxes
            .iter()
            .all(|a| http().get(format!("{}/health?ready=1", a.url())).send().is_ok_and(|r| r.status().is_success()))
    });
    Masters { c, _auxes: auxes, _m1: m1, _m2: m2, p1, p2 }
}

/// The error line a command must answer, as the server wrote it (`CODE detail`).
fn error(con: &mut Connection, args: &[&[u8]]) -> String {
    match q::<Value>(con, args) {
        Err(e) => format!("{} {}", e.code().unwrap_or("?"), e.detail().unwrap_or_default()),
        Ok(v) => panic!("{:?} answered {v:?}", String::from_utf8_lossy(args[0])),
    }
}

/// An error element of a reply as the server wrote it (`CODE detail`).
fn error_text(v: &Value) -> String {
    match v {
        Value::ServerError(e) => format!("{} {}", e.code(), e.details().unwrap_or_default()),
        other => panic!("expected an error, got {other:?}"),
    }
}

fn set(con: &mut Connection, key: &str, value: &str) {
    assert_eq!(q::<String>(con, &[b"SET", key.as_bytes(), value.as_bytes()]).unwrap(), "OK", "SET {key}");
}

fn value(con: &mut Connection, key: &str) -> Option<String> {
    q(con, &[b"GET", key.as_bytes()]).unwrap()
}

fn watch(con: &mut Connection, key: &str) {
    assert_eq!(q::<String>(con, &[b"WATCH", key.as_bytes()]).unwrap(), "OK", "WATCH {key}");
}

/// Sends `pipe` as a transaction (MULTI, its commands, EXEC: what `redis::pipe().atomic()`
/// sends, in one write) and returns EXEC's reply as it came: an array of the replies, `Nil`
/// when a watched key changed, or an error (EXECABORT, CROSSSLOT, TRYAGAIN), which
/// `Pipeline::query` would turn into one "invalid response" error. A MULTI or QUEUED reply
/// that is an error is the `Err`.
fn exec(con: &mut Connection, pipe: &mut redis::Pipeline) -> RedisResult<Value> {
    let commands = pipe.cmd_iter().count();
    let packed = pipe.atomic().get_packed_pipeline();
    let mut replies = con.req_packed_commands(&packed, commands + 1, 1)?;
    Ok(replies.pop().expect("EXEC's reply"))
}

fn bulk(s: &str) -> Value {
    Value::BulkString(s.as_bytes().to_vec())
}

#[test]
fn multi_queues_commands_and_exec_answers_their_replies_in_order() {
    let zk = ZooKeeper::start();
    let m = cluster(&zk);
    let (mut a, mut b) = (conn(m.p1), conn(m.p2));

    assert_eq!(q::<String>(&mut a, &[b"MULTI"]).unwrap(), "OK");
    for cmd in [
        &[b"SET" as &[u8], b"{u1}:a", b"1"][..],
        &[b"INCR", b"{u1}:a"],
        &[b"GET", b"{u1}:a"],
        &[b"SET", b"{u1}:b", b"2"],
        &[b"SET", b"{u1}:t", b"v", b"EX", b"100"],
        &[b"TTL", b"{u1}:t"],
        &[b"APPEND", b"{u1}:t", b"w"],
        &[b"GETDEL", b"{u1}:t"],
        &[b"EXISTS", b"{u1}:t", b"{u1}:a"],
        &[b"PING"],
    ] {
        assert_eq!(q::<String>(&mut a, cmd).unwrap(), "QUEUED", "{:?}", String::from_utf8_lossy(cmd[0]));
    }
    // Queued, not run: the other master sees nothing yet.
    assert_eq!(value(&mut b, "{u1}:a"), None);
    let replies: Vec<Value> = q(&mut a, &[b"EXEC"]).unwrap();
    assert_eq!(
        replies,
        vec![
            Value::Okay,
            Value::Int(2),
            bulk("2"),
            Value::Okay,
            Value::Okay,
            Value::Int(100),
            Value::Int(2),
            bulk("vw"),
            Value::Int(1),
            Value::SimpleString("PONG".into()),
        ],
        "each command saw the transaction's earlier writes"
    );
    for con in [&mut a, &mut b] {
        assert_eq!(value(con, "{u1}:a").as_deref(), Some("2"));
        assert_eq!(value(con, "{u1}:b").as_deref(), Some("2"));
        assert_eq!(value(con, "{u1}:t"), None);
    }

    // The crate's own transactions: `pipe().atomic()`.
    let (incremented, got): (i64, String) = redis::pipe()
        .atomic()
        .cmd("SET")
        .arg("{u2}:x")
        .arg(10)
        .ignore()
        .cmd("INCRBY")
        .arg("{u2}:x")
        .arg(5)
        .cmd("GET")
        .arg("{u2}:x")
        .query(&mut a)
        .unwrap();
    assert_eq!((incremented, got.as_str()), (15, "15"));
    let (got,): (Vec<Option<String>>,) = redis::pipe()
        .atomic()
        .cmd("MSET")
        .arg("{u2}:y")
        .arg("y")
        .arg("{u2}:z")
        .arg("z")
        .ignore()
        .cmd("MGET")
        .arg("{u2}:x")
        .arg("{u2}:y")
        .arg("{u2}:none")
        .query(&mut b)
        .unwrap();
    assert_eq!(got, [Some("15".to_string()), Some("y".into()), None]);

    // Without keys, or without commands.
    assert_eq!(q::<String>(&mut a, &[b"MULTI"]).unwrap(), "OK");
    assert_eq!(q::<String>(&mut a, &[b"PING"]).unwrap(), "QUEUED");
    assert_eq!(q::<String>(&mut a, &[b"ECHO", b"hi"]).unwrap(), "QUEUED");
    assert_eq!(q::<Vec<String>>(&mut a, &[b"EXEC"]).unwrap(), ["PONG", "hi"]);
    assert_eq!(q::<String>(&mut a, &[b"MULTI"]).unwrap(), "OK");
    assert_eq!(q::<Value>(&mut a, &[b"EXEC"]).unwrap(), Value::Array(vec![]));

    // On the wire, as Redis writes it.
    assert_eq!(
        raw(m.p2, b"MULTI\r\nSET {u3}:a 1\r\nINCRBY {u3}:a 4\r\nGET {u3}:a\r\nEXEC\r\nQUIT\r\n"),
        "+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*3\r\n+OK\r\n:5\r\n$1\r\n5\r\n+OK\r\n"
    );
}

#[test]
fn keys_of_one_hash_tag_share_a_transaction_and_other_groups_get_crossslot() {
    let zk = ZooKeeper::start();
    let m = cluster(&zk);
    let (mut a, mut b) = (conn(m.p1), conn(m.p2));
    const CROSSSLOT: &str = "CROSSSLOT Keys in request don't hash to the same slot";

    // Redis Cluster's rule: the bytes between the first `{` and the first `}` after it, when
    // there is at least one; else the whole key.
    for (x, y) in [
        ("{user1000}.following", "{user1000}.followers"),
        ("foo{bar}{zap}", "{bar}"),
        ("foo{{bar}}zap", "{{bar}x"),
        ("k", "{k}:x"),
        ("same", "same"),
    ] {
        let got = exec(&mut a, redis::pipe().cmd("SET").arg(x).arg(1).cmd("INCR").arg(x).cmd("SET").arg(y).arg(2));
        assert_eq!(
            got.unwrap(),
            Value::Array(vec![Value::Okay, Value::Int(2), Value::Okay]),
            "{x} and {y} share a group"
        );
        assert_eq!(value(&mut b, y).as_deref(), Some("2"), "{y} through the other master");
    }

    // Keys of different groups: nothing runs.
    for (x, y) in [("a", "b"), ("foo{}{bar}", "{bar}:y"), ("{u1}:a", "{u2}:a"), ("{}", "x{}"), ("{c}", "c}")] {
        let got = exec(&mut a, redis::pipe().cmd("SET").arg(x).arg(1).cmd("SET").arg(y).arg(2)).unwrap();
        assert_eq!(error_text(&got), CROSSSLOT, "{x} and {y}");
        assert_eq!((value(&mut b, x), value(&mut b, y)), (None, None), "{x} and {y} were not written");
    }
    // A command naming keys of two groups, inside MULTI.
    let got = exec(&mut a, redis::pipe().cmd("MSET").arg("m1").arg(1).arg("m2").arg(2)).unwrap();
    assert_eq!(error_text(&got), CROSSSLOT);
    assert_eq!(value(&mut b, "m1"), None);
    // Outside MULTI, the same MSET is no transaction and runs.
    assert_eq!(q::<String>(&mut a, &[b"MSET", b"m1", b"1", b"m2", b"2"]).unwrap(), "OK");
    assert_eq!(value(&mut b, "m2").as_deref(), Some("2"));
    // After CROSSSLOT the connection is out of MULTI.
    assert_eq!(error(&mut a, &[b"EXEC"]), "ERR EXEC without MULTI");

    // A watched key counts: it must be of the transaction's group too.
    watch(&mut a, "{g1}:w");
    let got = exec(&mut a, redis::pipe().cmd("SET").arg("{g2}:x").arg(1)).unwrap();
    assert_eq!(error_text(&got), CROSSSLOT);
    assert_eq!(value(&mut b, "{g2}:x"), None);
    // That EXEC forgot the watch: the same transaction now runs.
    let got = exec(&mut a, redis::pipe().cmd("SET").arg("{g2}:x").arg(1)).unwrap();
    assert_eq!(got, Value::Array(vec![Value::Okay]));
    assert_eq!(value(&mut b, "{g2}:x").as_deref(), Some("1"));
}

/// A command's syntax is checked when it is parsed, before it runs; inside MULTI, as in Redis,
/// a syntax error is that command's own element of EXEC's reply and the others run.
#[test]
fn a_syntax_error_inside_a_transaction_is_that_commands_reply_and_the_others_run() {
    let zk = ZooKeeper::start();
    let m = cluster(&zk);
    let r = raw(m.p1, b"MULTI\r\nSET {s}:a 1\r\nSET {s}:b 2 FOO\r\nINCR {s}:a\r\nEXEC\r\nQUIT\r\n");
    assert_eq!(r, "+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*3\r\n+OK\r\n-ERR syntax error\r\n:2\r\n+OK\r\n");
    let mut b = conn(m.p2);
    assert_eq!((value(&mut b, "{s}:a").as_deref(), value(&mut b, "{s}:b")), (Some("2"), None));
}

#[test]
fn a_command_refused_while_queueing_aborts_the_whole_transaction() {
    let zk = ZooKeeper::start();
    let m = cluster(&zk);
    let r = raw(m.p1, b"MULTI\r\nSET {q}:a 1\r\nNOSUCH x\r\nGET\r\nSET {q}:b 2\r\nEXEC\r\nGET {q}:a\r\nQUIT\r\n");
    assert_eq!(
        r,
        "+OK\r\n\
         +QUEUED\r\n\
         -ERR unknown command 'nosuch', with args beginning with: 'x' \r\n\
         -ERR wrong number of arguments for 'get' command\r\n\
         +QUEUED\r\n\
         -EXECABORT Transaction discarded because of previous errors.\r\n\
         $-1\r\n\
         +OK\r\n"
    );
    let mut b = conn(m.p2);
    assert_eq!((value(&mut b, "{q}:a"), value(&mut b, "{q}:b")), (None, None), "nothing ran");

    // Through the crate: the refusal is the error of the command's own reply.
    let mut a = conn(m.p1);
    assert_eq!(q::<String>(&mut a, &[b"MULTI"]).unwrap(), "OK");
    assert_eq!(q::<String>(&mut a, &[b"SET", b"{q}:a", b"1"]).unwrap(), "QUEUED");
    assert_eq!(error(&mut a, &[b"SET", b"{q}:a"]), "ERR wrong number of arguments for 'set' command");
    assert_eq!(error(&mut a, &[b"EXEC"]), "EXECABORT Transaction discarded because of previous errors.");
    assert_eq!(value(&mut a, "{q}:a"), None);
    // The next transaction is a fresh one.
    assert_eq!(exec(&mut a, redis::pipe().cmd("SET").arg("{q}:a").arg(1)).unwrap(), Value::Array(vec![Value::Okay]));
    assert_eq!(value(&mut b, "{q}:a").as_deref(), Some("1"));
}

#[test]
fn a_runtime_error_inside_exec_fails_only_its_command() {
    let zk = ZooKeeper::start();
    let m = cluster(&zk);
    let (mut a, mut b) = (conn(m.p1), conn(m.p2));
    set(&mut a, "{r}:text", "abc");
    let got =
        exec(&mut a, redis::pipe().cmd("SET").arg("{r}:n").arg(1).cmd("INCR").arg("{r}:text").cmd("INCR").arg("{r}:n"))
            .unwrap();
    let replies = match got {
        Value::Array(replies) => replies,
        other => panic!("EXEC answered {other:?}"),
    };
    assert_eq!(replies.len(), 3, "{replies:?}");
    assert_eq!(replies[0], Value::Okay);
    assert_eq!(error_text(&replies[1]), "ERR value is not an integer or out of range");
    assert_eq!(replies[2], Value::Int(2), "the commands after the error ran, as in Redis");
    assert_eq!(value(&mut b, "{r}:n").as_deref(), Some("2"));
    assert_eq!(value(&mut b, "{r}:text").as_deref(), Some("abc"));
}

#[test]
fn transaction_commands_out_of_place_answer_redis_errors() {
    let zk = ZooKeeper::start();
    let m = cluster(&zk);
    let (mut a, mut b) = (conn(m.p1), conn(m.p2));
    assert_eq!(error(&mut a, &[b"EXEC"]), "ERR EXEC without MULTI");
    assert_eq!(error(&mut a, &[b"DISCARD"]), "ERR DISCARD without MULTI");

    assert_eq!(q::<String>(&mut a, &[b"MULTI"]).unwrap(), "OK");
    assert_eq!(q::<String>(&mut a, &[b"SET", b"{n}:a", b"1"]).unwrap(), "QUEUED");
    assert_eq!(error(&mut a, &[b"MULTI"]), "ERR MULTI calls can not be nested");
    assert_eq!(error(&mut a, &[b"WATCH", b"{n}:a"]), "ERR WATCH inside MULTI is not allowed");
    // As in Redis, neither spoils the transaction: they ran (and failed), they were not queued.
    assert_eq!(q::<Vec<Value>>(&mut a, &[b"EXEC"]).unwrap(), [Value::Okay]);
    assert_eq!(value(&mut b, "{n}:a").as_deref(), Some("1"));

    // DISCARD drops what was queued.
    assert_eq!(q::<String>(&mut a, &[b"MULTI"]).unwrap(), "OK");
    assert_eq!(q::<String>(&mut a, &[b"SET", b"{n}:b", b"1"]).unwrap(), "QUEUED");
    assert_eq!(q::<String>(&mut a, &[b"DISCARD"]).unwrap(), "OK");
    assert_eq!(error(&mut a, &[b"EXEC"]), "ERR EXEC without MULTI");
    assert_eq!(value(&mut b, "{n}:b"), None);
    assert_eq!(value(&mut a, "{n}:b"), None, "GET runs at once again");

    // So does RESET.
    assert_eq!(q::<String>(&mut a, &[b"MULTI"]).unwrap(), "OK");
    assert_eq!(q::<String>(&mut a, &[b"SET", b"{n}:c", b"1"]).unwrap(), "QUEUED");
    assert_eq!(q::<String>(&mut a, &[b"RESET"]).unwrap(), "RESET");
    assert_eq!(error(&mut a, &[b"EXEC"]), "ERR EXEC without MULTI");
    assert_eq!(value(&mut b, "{n}:c"), None);

    // QUIT inside MULTI runs at once.
    assert_eq!(raw(m.p1, b"MULTI\r\nSET {n}:d 1\r\nQUIT\r\n"), "+OK\r\n+QUEUED\r\n+OK\r\n");
    assert_eq!(value(&mut b, "{n}:d"), None);
}

#[test]
fn a_watched_key_changed_through_the_other_master_aborts_exec() {
    let zk = ZooKeeper::start();
    let m = cluster(&zk);
    let (mut a, mut b) = (conn(m.p1), conn(m.p2));
    let set_mine = |con: &mut Connection, key: &str| exec(con, redis::pipe().cmd("SET").arg(key).arg("mine")).unwrap();
    let ran = Value::Array(vec![Value::Okay]);

    // A write through the other master between WATCH and EXEC: a null, nothing written.
    set(&mut a, "{w}:k", "original");
    watch(&mut a, "{w}:k");
    set(&mut b, "{w}:k", "other");
    assert_eq!(set_mine(&mut a, "{w}:k"), Value::Nil);
    assert_eq!(value(&mut a, "{w}:k").as_deref(), Some("other"));
    assert_eq!(value(&mut b, "{w}:k").as_deref(), Some("other"));
    // EXEC forgot the watch, even aborted: the same transaction now runs.
    assert_eq!(set_mine(&mut a, "{w}:k"), ran);
    assert_eq!(value(&mut b, "{w}:k").as_deref(), Some("mine"));

    // The crate's `pipe().atomic()` sees the null as `None`.
    watch(&mut a, "{w}:k");
    set(&mut b, "{w}:k", "other again");
    let got: Option<(String,)> = redis::pipe().atomic().cmd("SET").arg("{w}:k").arg("mine").query(&mut a).unwrap();
    assert_eq!(got, None);
    assert_eq!(value(&mut b, "{w}:k").as_deref(), Some("other again"));

    // Nothing changed: EXEC runs, and a GET between WATCH and MULTI read what was watched.
    watch(&mut a, "{w}:k");
    assert_eq!(value(&mut a, "{w}:k").as_deref(), Some("other again"));
    let got = exec(&mut a, redis::pipe().cmd("SET").arg("{w}:k").arg("second").cmd("GET").arg("{w}:k")).unwrap();
    assert_eq!(got, Value::Array(vec![Value::Okay, bulk("second")]));

    // A missing key that another client creates.
    watch(&mut a, "{w}:new");
    set(&mut b, "{w}:new", "theirs");
    assert_eq!(set_mine(&mut a, "{w}:new"), Value::Nil);
    assert_eq!(value(&mut a, "{w}:new").as_deref(), Some("theirs"));

    // A key that another client deletes.
    watch(&mut a, "{w}:k");
    assert_eq!(q::<i64>(&mut b, &[b"DEL", b"{w}:k"]).unwrap(), 1);
    assert_eq!(set_mine(&mut a, "{w}:k"), Value::Nil);
    assert_eq!(value(&mut a, "{w}:k"), None);

    // An EXPIRE by another client changes only the expiry, and aborts all the same.
    set(&mut a, "{w}:e", "kept");
    watch(&mut a, "{w}:e");
    assert_eq!(q::<i64>(&mut b, &[b"EXPIRE", b"{w}:e", b"100"]).unwrap(), 1);
    assert_eq!(set_mine(&mut a, "{w}:e"), Value::Nil);
    assert_eq!(value(&mut a, "{w}:e").as_deref(), Some("kept"));
    let ttl: i64 = q(&mut a, &[b"TTL", b"{w}:e"]).unwrap();
    assert!((90..=100).contains(&ttl), "the other client's expiry stands: {ttl}");

    // A watched key the transaction does not touch, of its group.
    watch(&mut a, "{w}:flag");
    set(&mut b, "{w}:flag", "up");
    assert_eq!(exec(&mut a, redis::pipe().cmd("INCR").arg("{w}:count")).unwrap(), Value::Nil);
    assert_eq!(value(&mut b, "{w}:count"), None);

    // Several watched keys, one of them changed.
    watch(&mut a, "{w}:p");
    assert_eq!(q::<String>(&mut a, &[b"WATCH", b"{w}:q", b"{w}:r"]).unwrap(), "OK");
    set(&mut b, "{w}:r", "changed");
    assert_eq!(set_mine(&mut a, "{w}:p"), Value::Nil);
    assert_eq!(value(&mut b, "{w}:p"), None);

    // On the wire, Redis's null array, as clients that tell it from a null bulk expect.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", m.p1)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"WATCH {w}:z\r\n").unwrap();
    let mut ok = [0u8; 5];
    s.read_exact(&mut ok).unwrap();
    assert_eq!(&ok, b"+OK\r\n");
    set(&mut b, "{w}:z", "theirs");
    s.write_all(b"MULTI\r\nSET {w}:z mine\r\nEXEC\r\nQUIT\r\n").unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    assert_eq!(out, "+OK\r\n+QUEUED\r\n*-1\r\n+OK\r\n");
}

#[test]
fn unwatch_discard_and_reset_forget_the_watched_keys() {
    let zk = ZooKeeper::start();
    let m = cluster(&zk);
    let (mut a, mut b) = (conn(m.p1), conn(m.p2));
    let ran = Value::Array(vec![Value::Okay]);
    for (key, forget) in [("{f}:u", "UNWATCH"), ("{f}:d", "MULTI"), ("{f}:r", "RESET")] {
        set(&mut a, key, "original");
        watch(&mut a, key);
        set(&mut b, key, "other");
        let answer: String = q(&mut a, &[forget.as_bytes()]).unwrap();
        assert_eq!(answer, if forget == "RESET" { "RESET" } else { "OK" }, "{forget}");
        if forget == "MULTI" {
            assert_eq!(q::<String>(&mut a, &[b"SET", key.as_bytes(), b"queued"]).unwrap(), "QUEUED");
            assert_eq!(q::<String>(&mut a, &[b"DISCARD"]).unwrap(), "OK");
        }
        let got = exec(&mut a, redis::pipe().cmd("SET").arg(key).arg("mine")).unwrap();
        assert_eq!(got, ran, "{forget} forgot the watch on {key}");
        assert_eq!(value(&mut b, key).as_deref(), Some("mine"));
    }
}

/// Transactions through both masters at once never interleave: every `MULTI; INCR {c}:n;
/// INCR {c}:m; EXEC` sees the two counters equal, each count is seen once, none is lost.
#[test]
fn transactions_through_both_masters_are_atomic_and_isolated() {
    const THREADS: usize = 4;
    const EACH: usize = 200;
    let zk = ZooKeeper::start();
    let m = cluster(&zk);
    let started = Instant::now();
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let port = if t % 2 == 0 { m.p1 } else { m.p2 };
            std::thread::spawn(move || {
                let mut c = conn(port);
                let (mut seen, mut tryagain) = (Vec::with_capacity(EACH), 0u32);
                let deadline = Instant::now() + Duration::from_secs(120);
                while seen.len() < EACH {
                    assert!(Instant::now() < deadline, "thread {t}: {} of {EACH} transactions in 120 s", seen.len());
                    let got = exec(&mut c, redis::pipe().cmd("INCR").arg("{c}:n").cmd("INCR").arg("{c}:m")).unwrap();
                    match &got {
                        Value::Array(r) => match r.as_slice() {
                            [Value::Int(n1), Value::Int(n2)] => {
                                assert_eq!(n1, n2, "thread {t}: a transaction saw the counters apart");
                                seen.push(*n1);
                            }
                            _ => panic!("thread {t}: EXEC answered {got:?}"),
                        },
                        // Other writers kept changing the keys: nothing ran; a client retries.
                        Value::ServerError(e) if e.code() == "TRYAGAIN" => tryagain += 1,
                        _ => panic!("thread {t}: EXEC answered {got:?}"),
                    }
                }
                (seen, tryagain)
            })
        })
        .collect();
    let (mut all, mut tryagain) = (Vec::new(), 0);
    for w in workers {
        let (seen, t) = w.join().unwrap();
        all.extend(seen);
        tryagain += t;
    }
    let total = (THREADS * EACH) as i64;
    all.sort_unstable();
    let misplaced = all.iter().zip(1..).find(|(got, want)| **got != *want);
    assert!(
        all.len() as i64 == total && misplaced.is_none(),
        "{} counts seen for {total} transactions; the first out of place (seen, expected): {misplaced:?}",
        all.len()
    );
    println!(
        "{total} transactions through two masters in {:.1} s; {tryagain} answered TRYAGAIN and were sent again",
        started.elapsed().as_secs_f64()
    );
    for port in [m.p1, m.p2] {
        let mut c = conn(port);
        wait_until(Duration::from_secs(5), &format!("port {port} to read both counters at {total}"), || {
            q::<i64>(&mut c, &[b"GET", b"{c}:n"]).ok() == Some(total)
                && q::<i64>(&mut c, &[b"GET", b"{c}:m"]).ok() == Some(total)
        });
    }
}

/// The optimistic increment of Redis's documentation (WATCH, GET, MULTI, SET v+1, EXEC, again
/// on a null) from threads through both masters: every increment counted once.
#[test]
fn watch_retry_loops_through_both_masters_lose_no_increment() {
    const THREADS: usize = 4;
    const EACH: i64 = 100;
    let zk = ZooKeeper::start();
    let m = cluster(&zk);
    let started = Instant::now();
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let port = if t % 2 == 0 { m.p1 } else { m.p2 };
            std::thread::spawn(move || {
                let mut c = conn(port);
                let mut aborted = 0u32;
                let deadline = Instant::now() + Duration::from_secs(120);
                for i in 0..EACH {
                    loop {
                        assert!(Instant::now() < deadline, "thread {t}: {i} of {EACH} increments in 120 s");
                        watch(&mut c, "{o}:k");
                        let seen: Option<i64> = q(&mut c, &[b"GET", b"{o}:k"]).unwrap();
                        let next = seen.unwrap_or(0) + 1;
                        match exec(&mut c, redis::pipe().cmd("SET").arg("{o}:k").arg(next)).unwrap() {
                            Value::Nil => aborted += 1,
                            Value::Array(r) if r == [Value::Okay] => break,
                            other => panic!("thread {t}: EXEC answered {other:?}"),
                        }
                    }
                }
                aborted
            })
        })
        .collect();
    let aborted: u32 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    let total = THREADS as i64 * EACH;
    println!(
        "{total} optimistic increments through two masters in {:.1} s; {aborted} EXECs aborted by a watched change",
        started.elapsed().as_secs_f64()
    );
    for port in [m.p1, m.p2] {
        let mut c = conn(port);
        wait_until(Duration::from_secs(5), &format!("port {port} to read {total}"), || {
            q::<i64>(&mut c, &[b"GET", b"{o}:k"]).ok() == Some(total)
        });
    }
}

/// Where scripts/test.sh installs redis-py when PATH's python3 lacks it.
fn redis_py_venv() -> PathBuf {
    if let Some(dir) = std::env::var_os("TIERCACHE_REDIS_PY_VENV").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let cache = match std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache"),
    };
    cache.join("tiercache").join("redis-py-venv")
}

/// A python3 that imports redis-py: the install script's virtualenv when it made one, else
/// PATH's. Fails the test (never skips it) when there is none.
fn python_with_redis_py() -> PathBuf {
    let in_venv = redis_py_venv().join("bin").join("python3");
    let python = if in_venv.is_file() { in_venv } else { PathBuf::from("python3") };
    let imports = Command::new(&python).args(["-c", "import redis"]).output();
    assert!(
        imports.as_ref().is_ok_and(|o| o.status.success()),
        "redis-py is missing: `{} -c 'import redis'` failed ({}): run scripts/test.sh, which installs it",
        python.display(),
        match &imports {
            Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
            Err(e) => e.to_string(),
        }
    );
    python
}

#[test]
fn redis_py_pipelines_watch_transactions_and_scans_work_unmodified() {
    let python = python_with_redis_py();
    let zk = ZooKeeper::start();
    let m = cluster(&zk);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("redis_py_transactions.py");
    let mut cmd = Command::new(&python);
    cmd.arg(&script).arg(m.p1.to_string()).arg(m.p2.to_string()).env("PYTHONUNBUFFERED", "1");
    let mut run = Proc::spawn("redis-py", cmd, m.c.dir.path());
    let status = run.wait_exit(Duration::from_secs(180));
    let out = run.log();
    let ended = match status {
        Some(s) => s.to_string(),
        None => "still running after 180 s: killed".to_string(),
    };
    assert!(
        status.is_some_and(|s| s.success()),
        "`{} {} {} {}` failed ({ended}):\n{out}",
        python.display(),
        script.display(),
        m.p1,
        m.p2
    );
    print!("{out}");
}

/// FLUSHALL reaches every key of the cluster, so it cannot be one isolated step with a
/// transaction's others: refused while queueing, which aborts the transaction.
#[test]
fn flushall_is_refused_inside_a_transaction() {
    let zk = ZooKeeper::start();
    let m = cluster(&zk);
    let mut a = conn(m.p1);
    set(&mut a, "{f}:a", "kept");
    assert_eq!(q::<String>(&mut a, &[b"MULTI"]).unwrap(), "OK");
    assert_eq!(q::<String>(&mut a, &[b"SET", b"{f}:a", b"1"]).unwrap(), "QUEUED");
    assert!(error(&mut a, &[b"FLUSHALL"]).contains("not allowed inside a transaction"));
    assert!(error(&mut a, &[b"EXEC"]).starts_with("EXECABORT"));
    assert_eq!(value(&mut a, "{f}:a").as_deref(), Some("kept"), "nothing ran");
}
