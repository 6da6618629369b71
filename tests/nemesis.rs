//! A randomized fault run with a history checker, in the style of Jepsen. Three auxiliaries,
//! two masters, `REPLICAS=2 WRITE_QUORUM=2 READ_QUORUM=1` (W + R > N, so the stale-read check
//! applies); clients over HTTP and RESP through both masters: writers SET increasing sequence
//! numbers on keys of their own, readers GET any key, incrementers INCR shared counters, and
//! transactions increment both counters of a pair (`MULTI; INCR {p}:a; INCR {p}:b; EXEC`). A
//! seeded schedule injects one fault at a time (the next once every node is back as a full
//! replica): kill -9 of an auxiliary and a restart from its snapshot, SIGTERM and a restart,
//! a freeze of an auxiliary (short, or long enough that its ZooKeeper session expires), a
//! freeze of a master, and a network cut between one master and one auxiliary (which the
//! other master and ZooKeeper still reach). Every operation is recorded with its start, end and outcome; the
//! checker then looks for lost acknowledged writes, reads older than a write acknowledged
//! before they began, counters outside [acknowledged, acknowledged + unknown], transactions
//! torn apart (a pair answered or ending apart), and operations that hung.
//!
//! `TIERCACHE_NEMESIS_SEED` (default 1) picks the schedule and `TIERCACHE_NEMESIS_SECONDS`
//! (default 60) its length; the seed is printed on failure and replays the same schedule.
//! `scripts/nemesis.sh --minutes N --seed S` runs longer soaks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// splitmix64: a seeded schedule that replays exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.below(hi - lo + 1))
    }
}

/// What one operation did.
#[derive(Debug, Clone, PartialEq)]
enum Kind {
    /// SET of a sequence number.
    Write(u64),
    /// GET; `Some(n)` for the number read, `Some(0)` for a miss.
    Read,
    /// INCR.
    Incr,
    /// `MULTI; INCR {pair}:a; INCR {pair}:b; EXEC` on the pair named by the key.
    TxIncr,
}

#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    /// Answered: for a read the number read (0 = miss), for an INCR its reply.
    Ok(u64),
    /// Refused before anything could happen (a 503/`TRYAGAIN` for a read).
    Failed,
    /// The client cannot know whether it applied (a timeout, a dropped connection, an error
    /// of a write or an INCR).
    Unknown,
    /// A transaction answered its two counters apart.
    Torn(u64, u64),
}

#[derive(Debug, Clone)]
struct Op {
    client: String,
    key: String,
    kind: Kind,
    start: Instant,
    end: Instant,
    outcome: Outcome,
}

/// What the checker found.
#[derive(Debug, Default)]
struct Findings {
    /// Reads that returned less than a write acknowledged before they began.
    stale_reads: Vec<String>,
    /// Keys whose final value is below their highest acknowledged write.
    lost_writes: Vec<String>,
    /// Counters outside [acknowledged, acknowledged + unknown].
    bad_counters: Vec<String>,
    /// Transactions that answered the two counters of their pair apart, or pairs that ended
    /// apart: one INCR applied without the other.
    torn: Vec<String>,
    /// Operations that took longer than the clients' timeout allows.
    hung: usize,
    ok: usize,
    total: usize,
}

/// Checks a history against the final state (`finals`: key → number read at the end, after
/// the faults stopped and every node caught up).
fn check(history: &[Op], finals: &HashMap<String, u64>, longest: Duration) -> Findings {
    let mut f = Findings { total: history.len(), ..Findings::default() };
    // Per key, the acknowledged writes by end time.
    let mut acked: HashMap<&str, Vec<(Instant, u64)>> = HashMap::new();
    let mut incr: HashMap<&str, (u64, u64)> = HashMap::new();
    // Offsets from the first operation, to line findings up with the printed fault schedule.
    let t0 = history.iter().map(|o| o.start).min();
    let at = |op: &Op| t0.map_or(0.0, |t| op.start.duration_since(t).as_secs_f64());
    for op in history {
        if matches!(op.outcome, Outcome::Ok(_)) {
            f.ok += 1;
        }
        if op.end.duration_since(op.start) > longest {
            f.hung += 1;
        }
        match (&op.kind, &op.outcome) {
            (Kind::Write(n), Outcome::Ok(_)) => acked.entry(&op.key).or_default().push((op.end, *n)),
            (Kind::Incr | Kind::TxIncr, Outcome::Ok(_)) => incr.entry(&op.key).or_default().0 += 1,
            (Kind::Incr | Kind::TxIncr, Outcome::Unknown) => incr.entry(&op.key).or_default().1 += 1,
            (Kind::TxIncr, Outcome::Torn(a, b)) => {
                f.torn.push(format!("{} answered {a} and {b} at {:.1} s", op.key, at(op)))
            }
            _ => {}
        }
    }
    // Sorted by end, with the running maximum: the floor of a read is one binary search.
    for w in acked.values_mut() {
        w.sort_by_key(|(end, _)| *end);
        let mut highest = 0;
        for (_, n) in w.iter_mut() {
            highest = highest.max(*n);
            *n = highest;
        }
    }
    let first = history.iter().map(|o| o.start).min();
    for op in history {
        let (Kind::Read, Outcome::Ok(got)) = (&op.kind, &op.outcome) else { continue };
        let Some(w) = acked.get(op.key.as_str()) else { continue };
        // Every write acknowledged before the read began: the highest of them is the floor.
        let before = w.partition_point(|(end, _)| *end < op.start);
        let floor = before.checked_sub(1).map_or(0, |i| w[i].1);
        if *got < floor {
            let at = first.map_or(0.0, |t| op.start.duration_since(t).as_secs_f64());
            f.stale_reads.push(format!(
                "{} read {} = {got} < {floor} acknowledged before it began ({at:.2} s after the first operation)",
                op.client, op.key
            ));
        }
    }
    for (key, w) in &acked {
        let highest = w.iter().map(|(_, n)| *n).max().unwrap_or(0);
        let got = finals.get(*key).copied().unwrap_or(0);
        if got < highest {
            f.lost_writes.push(format!("{key} ends at {got} < {highest} acknowledged"));
        }
    }
    for (key, (ok, unknown)) in &incr {
        // A pair's two counters each count every transaction of the pair.
        let is_pair = history.iter().any(|o| o.key == *key && o.kind == Kind::TxIncr);
        let counters = if is_pair { vec![format!("{key}:a"), format!("{key}:b")] } else { vec![key.to_string()] };
        let ends: Vec<u64> = counters.iter().map(|c| finals.get(c).copied().unwrap_or(0)).collect();
        for (c, got) in counters.iter().zip(&ends) {
            if got < ok || *got > ok + unknown {
                f.bad_counters.push(format!("{c} ends at {got}, {ok} acknowledged, {unknown} unknown"));
            }
        }
        if ends.windows(2).any(|w| w[0] != w[1]) {
            f.torn.push(format!("{key} ends apart: {ends:?}"));
        }
    }
    f
}

#[test]
fn the_checker_finds_stale_reads_lost_writes_and_bad_counters() {
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let op = |key: &str, kind: Kind, start: u64, end: u64, outcome: Outcome| Op {
        client: "c".into(),
        key: key.into(),
        kind,
        start: at(start),
        end: at(end),
        outcome,
    };
    let history = vec![
        op("k", Kind::Write(1), 0, 10, Outcome::Ok(0)),
        op("k", Kind::Write(2), 20, 30, Outcome::Ok(0)),
        // Concurrent with write 2: either answer is fine.
        op("k", Kind::Read, 25, 40, Outcome::Ok(1)),
        // Began after write 2 was acknowledged: 1 is stale.
        op("k", Kind::Read, 35, 40, Outcome::Ok(1)),
        op("n", Kind::Incr, 0, 5, Outcome::Ok(1)),
        op("n", Kind::Incr, 6, 9, Outcome::Unknown),
        op("n", Kind::Incr, 10, 5000, Outcome::Ok(2)),
        op("{p}", Kind::TxIncr, 0, 5, Outcome::Ok(1)),
        op("{p}", Kind::TxIncr, 6, 9, Outcome::Torn(3, 2)),
    ];
    let finals: HashMap<String, u64> =
        [("k", 1), ("n", 4), ("{p}:a", 1), ("{p}:b", 2)].map(|(k, n)| (k.to_string(), n)).into();
    let f = check(&history, &finals, Duration::from_secs(2));
    assert_eq!(f.stale_reads.len(), 1, "{:?}", f.stale_reads);
    assert_eq!(f.lost_writes.len(), 1, "{:?}", f.lost_writes);
    assert_eq!(f.bad_counters.len(), 2, "n, and {{p}}:b above its one acknowledged: {:?}", f.bad_counters);
    assert_eq!(f.torn.len(), 2, "one answered apart, one ended apart: {:?}", f.torn);
    assert_eq!(f.hung, 1);
    let finals: HashMap<String, u64> = [("k".to_string(), 2), ("n".to_string(), 3)].into();
    let f = check(&history[..3], &finals, Duration::from_secs(2));
    assert!(f.stale_reads.is_empty() && f.lost_writes.is_empty() && f.bad_counters.is_empty());
}

/// The clients' timeouts: an operation longer than this plus slack hung.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(3);
const WRITER_KEYS: usize = 25;
const COUNTERS: usize = 4;
const PAIRS: usize = 2;

/// One client's connection: HTTP through a master's port, or RESP through its Redis port.
enum Client {
    Http { http: reqwest::blocking::Client, url: String },
    Resp { port: u16, con: Option<redis::Connection> },
}

impl Client {
    fn http(url: String) -> Client {
        Client::Http { http: reqwest::blocking::Client::builder().timeout(CLIENT_TIMEOUT).build().unwrap(), url }
    }

    fn resp(port: u16) -> Client {
        Client::Resp { port, con: None }
    }

    fn con(port: u16, con: &mut Option<redis::Connection>) -> Option<&mut redis::Connection> {
        if con.is_none() {
            let c = redis::Client::open(format!("redis://127.0.0.1:{port}/")).ok()?;
            let c = c.get_connection_with_timeout(CLIENT_TIMEOUT).ok()?;
            c.set_read_timeout(Some(CLIENT_TIMEOUT)).ok()?;
            c.set_write_timeout(Some(CLIENT_TIMEOUT)).ok()?;
            *con = Some(c);
        }
        con.as_mut()
    }

    fn write(&mut self, key: &str, n: u64) -> Outcome {
        match self {
            Client::Http { http, url } => match http.put(format!("{url}/cache/{key}")).body(n.to_string()).send() {
                Ok(r) if r.status().is_success() => Outcome::Ok(0),
                _ => Outcome::Unknown,
            },
            Client::Resp { port, con } => {
                let Some(c) = Self::con(*port, con) else { return Outcome::Failed };
                match redis::cmd("SET").arg(key).arg(n).query::<()>(c) {
                    Ok(()) => Outcome::Ok(0),
                    Err(e) => {
                        if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() {
                            *con = None;
                        }
                        Outcome::Unknown
                    }
                }
            }
        }
    }

    fn read(&mut self, key: &str) -> Outcome {
        match self {
            Client::Http { http, url } => match http.get(format!("{url}/cache/{key}")).send() {
                Ok(r) if r.status() == reqwest::StatusCode::NOT_FOUND => Outcome::Ok(0),
                Ok(r) if r.status().is_success() => {
                    r.text().ok().and_then(|t| t.parse().ok()).map_or(Outcome::Failed, Outcome::Ok)
                }
                _ => Outcome::Failed,
            },
            Client::Resp { port, con } => {
                let Some(c) = Self::con(*port, con) else { return Outcome::Failed };
                match redis::cmd("GET").arg(key).query::<Option<u64>>(c) {
                    Ok(v) => Outcome::Ok(v.unwrap_or(0)),
                    Err(e) => {
                        if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() {
                            *con = None;
                        }
                        Outcome::Failed
                    }
                }
            }
        }
    }

    fn incr(&mut self, key: &str) -> Outcome {
        let Client::Resp { port, con } = self else { unreachable!("INCR goes over RESP") };
        let Some(c) = Self::con(*port, con) else { return Outcome::Failed };
        match redis::cmd("INCR").arg(key).query::<u64>(c) {
            Ok(n) => Outcome::Ok(n),
            Err(e) => {
                if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() {
                    *con = None;
                }
                Outcome::Unknown
            }
        }
    }

    /// Increments both counters of a pair in one transaction.
    fn tx_incr(&mut self, pair: &str) -> Outcome {
        let Client::Resp { port, con } = self else { unreachable!("EXEC goes over RESP") };
        let Some(c) = Self::con(*port, con) else { return Outcome::Failed };
        let (a, b) = (format!("{pair}:a"), format!("{pair}:b"));
        match redis::pipe().atomic().incr(&a, 1).incr(&b, 1).query::<(u64, u64)>(c) {
            Ok((x, y)) if x == y => Outcome::Ok(x),
            Ok((x, y)) => Outcome::Torn(x, y),
            // A TRYAGAIN may come after the primary committed (the replicas missed it): the
            // client cannot tell, so every error counts as unknown.
            Err(e) => {
                if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() {
                    *con = None;
                }
                Outcome::Unknown
            }
        }
    }
}

/// The clients: `(name, client, role)`; each records its operations until `stop`.
fn run_clients(
    clients: Vec<(String, Client, &'static str)>,
    stop: Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<Vec<Op>>> {
    clients
        .into_iter()
        .enumerate()
        .map(|(idx, (name, mut client, role))| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut ops = Vec::new();
                let mut n = 0u64;
                let mut rng = Rng(idx as u64 + 1000);
                while !stop.load(Ordering::Relaxed) {
                    let start = Instant::now();
                    let (key, kind, outcome) = match role {
                        "writer" => {
                            n += 1;
                            let key = format!("{name}-{}", n as usize % WRITER_KEYS);
                            let o = client.write(&key, n);
                            (key, Kind::Write(n), o)
                        }
                        "reader" => {
                            // Any writer's key: writers are w0..w3.
                            let key = format!("w{}-{}", rng.below(4), rng.below(WRITER_KEYS as u64));
                            let o = client.read(&key);
                            (key, Kind::Read, o)
                        }
                        "tx" => {
                            let key = format!("{{pair-{}}}", rng.below(PAIRS as u64));
                            let o = client.tx_incr(&key);
                            (key, Kind::TxIncr, o)
                        }
                        _ => {
                            let key = format!("counter-{}", rng.below(COUNTERS as u64));
                            let o = client.incr(&key);
                            (key, Kind::Incr, o)
                        }
                    };
                    if matches!(outcome, Outcome::Failed | Outcome::Unknown) {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    ops.push(Op { client: name.clone(), key, kind, start, end: Instant::now(), outcome });
                }
                ops
            })
        })
        .collect()
}

/// Every auxiliary answers `/health` as a full replica and each master sees all three.
fn all_back(auxes: &[Node], masters: &[&Node]) -> bool {
    auxes.iter().all(|a| health(a).is_some_and(|h| h["recovering"].is_null()))
        && masters.iter().all(|m| aux_count(m) == 3)
}

#[test]
fn a_seeded_fault_schedule_loses_no_acknowledged_write() {
    let seed: u64 = std::env::var("TIERCACHE_NEMESIS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    let seconds: u64 = std::env::var("TIERCACHE_NEMESIS_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    println!("nemesis: seed {seed}, {seconds} s (TIERCACHE_NEMESIS_SEED={seed} replays this schedule)");
    let mut rng = Rng(seed);
    let zk = ZooKeeper::start();
    let env = [("REPLICAS", "2"), ("WRITE_QUORUM", "2"), ("READ_QUORUM", "1"), ("BACKUP_INTERVAL", "2")];
    let c = Cluster::new(&zk, &env);
    let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
    let start_aux = |i: usize| c.auxiliary_on(&format!("aux-{i}"), ports[i].0, ports[i].1, &[]);
    let mut auxes: Vec<Node> = (0..3).map(start_aux).collect();
    let redis_ports = [free_port(), free_port()];
    // Each master as a user of its own, so a cut can drop its packets alone.
    let uids = [uid_for(redis_ports[0]), uid_for(redis_ports[1])];
    let m1 = c.master_as("master-1", uids[0], &[("REDIS_PORT", &redis_ports[0].to_string())]);
    let m2 = c.master_as("master-2", uids[1], &[("REDIS_PORT", &redis_ports[1].to_string())]);
    wait_aux_count(&m1, 3, Duration::from_secs(15));
    wait_aux_count(&m2, 3, Duration::from_secs(15));
    let masters = [&m1, &m2];

    // Writers: one per protocol and master, each with keys of its own (a key's versions then
    // come from one master's clock). Readers: both protocols, both masters. Incrementers:
    // RESP through both masters on shared counters.
    let clients: Vec<(String, Client, &str)> = vec![
        ("w0".into(), Client::http(m1.url()), "writer"),
        ("w1".into(), Client::http(m2.url()), "writer"),
        ("w2".into(), Client::resp(redis_ports[0]), "writer"),
        ("w3".into(), Client::resp(redis_ports[1]), "writer"),
        ("r0".into(), Client::http(m1.url()), "reader"),
        ("r1".into(), Client::resp(redis_ports[1]), "reader"),
        ("i0".into(), Client::resp(redis_ports[0]), "incr"),
        ("i1".into(), Client::resp(redis_ports[1]), "incr"),
        ("t0".into(), Client::resp(redis_ports[0]), "tx"),
        ("t1".into(), Client::resp(redis_ports[1]), "tx"),
    ];
    let stop = Arc::new(AtomicBool::new(false));
    let threads = run_clients(clients, stop.clone());
    let faults: Arc<Mutex<Vec<String>>> = Arc::default();
    let began = Instant::now();
    let deadline = began + Duration::from_secs(seconds);
    let mut stuck = None;
    std::thread::sleep(Duration::from_secs(2));
    while Instant::now() < deadline {
        let i = rng.below(3) as usize;
        let what = match rng.below(6) {
            0 => {
                let down = rng.millis(500, 3000);
                auxes[i].proc.kill();
                std::thread::sleep(down);
                auxes[i] = start_aux(i);
                format!("kill -9 aux-{i}, restart from its snapshot after {} ms", down.as_millis())
            }
            1 => {
                auxes[i].proc.terminate(Duration::from_secs(60)).expect("exits on SIGTERM");
                auxes[i] = start_aux(i);
                format!("SIGTERM aux-{i}, restart")
            }
            2 => {
                let d = rng.millis(300, 3000);
                auxes[i].proc.signal("-STOP");
                std::thread::sleep(d);
                auxes[i].proc.signal("-CONT");
                format!("SIGSTOP aux-{i} for {} ms", d.as_millis())
            }
            3 => {
                // Longer than its 4 s session: ZooKeeper drops it, and it registers again.
                let d = rng.millis(5000, 7000);
                auxes[i].proc.signal("-STOP");
                std::thread::sleep(d);
                auxes[i].proc.signal("-CONT");
                format!("SIGSTOP aux-{i} for {} ms (session lost)", d.as_millis())
            }
            4 => {
                let (j, d) = (rng.below(2) as usize, rng.millis(1000, 6000));
                let cut = Cut::new(uids[j], auxes[i].data_port);
                std::thread::sleep(d);
                drop(cut);
                format!("cut {} from aux-{i} for {} ms", masters[j].id, d.as_millis())
            }
            _ => {
                let m = masters[i % 2];
                let d = rng.millis(300, 3000);
                m.proc.signal("-STOP");
                std::thread::sleep(d);
                m.proc.signal("-CONT");
                format!("SIGSTOP {} for {} ms", m.id, d.as_millis())
            }
        };
        let at = began.elapsed();
        // One fault at a time: the next once every node has been back as a full replica for a
        // second (a resumed node notices its stall at its next heartbeat, and a master's notice
        // that it wrote around a node may start a recovery a moment later).
        let back = Instant::now();
        let mut since: Option<Instant> = None;
        while back.elapsed() < Duration::from_secs(60) && since.is_none_or(|t| t.elapsed() < Duration::from_secs(1)) {
            since = if all_back(&auxes, &masters) { since.or(Some(Instant::now())) } else { None };
            std::thread::sleep(Duration::from_millis(100));
        }
        let took = back.elapsed();
        faults.lock().unwrap().push(format!(
            "{:>5.1} s: {what}; back {:.1} s later",
            at.as_secs_f64(),
            took.as_secs_f64()
        ));
        if since.is_none() {
            stuck = Some(what);
            break;
        }
        std::thread::sleep(rng.millis(200, 1500));
    }
    stop.store(true, Ordering::Relaxed);
    let history: Vec<Op> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();

    // The final state, read through a master once everything is back.
    let mut finals = HashMap::new();
    let mut reader = Client::resp(redis_ports[0]);
    let keys: Vec<String> = (0..4)
        .flat_map(|w| (0..WRITER_KEYS).map(move |k| format!("w{w}-{k}")))
        .chain((0..COUNTERS).map(|k| format!("counter-{k}")))
        .chain((0..PAIRS).flat_map(|k| ["a", "b"].map(|c| format!("{{pair-{k}}}:{c}"))))
        .collect();
    for key in keys {
        let mut got = None;
        for _ in 0..50 {
            if let Outcome::Ok(n) = reader.read(&key) {
                got = Some(n);
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        finals.insert(key.clone(), got.unwrap_or_else(|| panic!("seed {seed}: {key} unreadable after the faults")));
    }
    let f = check(&history, &finals, CLIENT_TIMEOUT * 2 + Duration::from_secs(1));
    let count = |k: fn(&Kind) -> bool, ok: bool| {
        history.iter().filter(|o| k(&o.kind) && (!ok || matches!(o.outcome, Outcome::Ok(_)))).count()
    };
    let ratio = |k: fn(&Kind) -> bool| count(k, true) as f64 / count(k, false).max(1) as f64 * 100.0;
    fn is_write(k: &Kind) -> bool {
        matches!(k, Kind::Write(_))
    }
    fn is_read(k: &Kind) -> bool {
        *k == Kind::Read
    }
    fn is_incr(k: &Kind) -> bool {
        *k == Kind::Incr
    }
    fn is_tx(k: &Kind) -> bool {
        *k == Kind::TxIncr
    }
    println!("nemesis seed {seed}: faults\n  {}", faults.lock().unwrap().join("\n  "));
    println!(
        "nemesis seed {seed}: {} operations in {:.0} s ({} writes {:.1} % acknowledged, {} reads {:.1} % answered, \
         {} INCRs {:.1} % acknowledged, {} transactions {:.1} % acknowledged); {} stale reads, {} lost writes, \
         {} bad counters, {} torn transactions, {} hung",
        f.total,
        began.elapsed().as_secs_f64(),
        count(is_write, false),
        ratio(is_write),
        count(is_read, false),
        ratio(is_read),
        count(is_incr, false),
        ratio(is_incr),
        count(is_tx, false),
        ratio(is_tx),
        f.stale_reads.len(),
        f.lost_writes.len(),
        f.bad_counters.len(),
        f.torn.len(),
        f.hung
    );
    for line in f.stale_reads.iter().chain(&f.lost_writes).chain(&f.bad_counters).chain(&f.torn).take(20) {
        println!("  {line}");
    }
    assert!(stuck.is_none(), "seed {seed}: not back 60 s after {stuck:?}");
    assert!(f.stale_reads.is_empty(), "seed {seed}: stale reads");
    assert!(f.lost_writes.is_empty(), "seed {seed}: acknowledged writes lost");
    assert!(f.bad_counters.is_empty(), "seed {seed}: counters outside [acknowledged, acknowledged + unknown]");
    assert!(f.torn.is_empty(), "seed {seed}: transactions that applied one INCR without the other");
    assert_eq!(f.hung, 0, "seed {seed}: operations that outlived the clients' timeouts");
    assert!(count(is_read, false) > 100 && count(is_write, false) > 100, "seed {seed}: the clients ran");
}
