//! Test harness for cluster tests: a real ZooKeeper on a free loopback port with a temp data
//! dir, real `tiercache` processes, all killed on drop (even when a test fails), and bounded
//! waits everywhere.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const TOKEN: &str = "test-internal-token";
const ZK_JAR: &str = "/usr/share/java/zookeeper.jar";

/// A loopback port nobody listens on right now and no other test process holds, below the
/// kernel's ephemeral range: a test that restarts a node on the same port must not find it
/// taken by one of the thousands of outgoing connections the tests make (those get ephemeral
/// ports, 32768 and up). Test processes run in parallel and a port is bound only when the node
/// starts, so each port handed out is also claimed with a lock on a file of its own, held
/// until this process exits (the kernel drops it then, even after a crash).
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    static CLAIMED: std::sync::Mutex<Vec<std::fs::File>> = std::sync::Mutex::new(Vec::new());
    let dir = std::env::temp_dir().join("tiercache-test-ports");
    std::fs::create_dir_all(&dir).unwrap();
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
        ^ (u64::from(std::process::id()) << 20);
    for i in 0..1000u64 {
        let x =
            seed.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed)).wrapping_add(i).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let port = 20_000 + (x >> 33) as u16 % 12_000;
        let Ok(lock) = std::fs::File::create(dir.join(port.to_string())) else { continue };
        if lock.try_lock().is_err() {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            CLAIMED.lock().unwrap().push(lock);
            return port;
        }
    }
    panic!("no free loopback port between 20000 and 32000 after 1000 tries");
}

/// Polls `f` until it returns true or `timeout` passes.
pub fn wait_until(timeout: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

/// A child process killed on drop; its output goes to a log file printed when a test fails.
pub struct Proc {
    pub name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Proc {
    pub fn spawn(name: &str, mut cmd: Command, log_dir: &Path) -> Proc {
        let log = log_dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).unwrap();
        cmd.stdout(out.try_clone().unwrap()).stderr(out).stdin(Stdio::null());
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc { name: name.to_string(), child: Some(child), log }
    }

    /// `kill <sig>` to the process, if it is still ours (never to a pid of 0: the whole group).
    pub fn signal(&self, sig: &str) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill").arg(sig).arg(c.id().to_string()).status();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// kill -9.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then wait for the exit (bounded); kill -9 if it does not come.
    pub fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.sigterm();
        self.wait_exit(timeout)
    }

    /// Sends SIGTERM without waiting.
    pub fn sigterm(&self) {
        self.signal("-TERM");
    }

    /// Waits for the exit (bounded); kill -9 if it does not come.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let mut c = self.child.take()?;
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(st)) = c.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        let _ = c.wait();
        None
    }

    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let log = self.log();
            let lines = std::env::var("TIERCACHE_LOG_LINES").ok().and_then(|v| v.parse().ok()).unwrap_or(40);
            let tail: Vec<&str> = log.lines().rev().take(lines).collect();
            eprintln!("---- last lines of {} ----", self.name);
            for l in tail.into_iter().rev() {
                eprintln!("{l}");
            }
        }
    }
}

/// A standalone ZooKeeper from Debian's package.
pub struct ZooKeeper {
    pub port: u16,
    proc: Proc,
    pub dir: tempfile::TempDir,
}

fn four_letter(port: u16, word: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_millis(1000))).ok()?;
    s.write_all(word.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

impl ZooKeeper {
    pub fn start() -> ZooKeeper {
        assert!(
            Path::new(ZK_JAR).exists(),
            "ZooKeeper is not installed ({ZK_JAR} missing): run `apt-get install -y zookeeper` \
             (scripts/test.sh does it for you)"
        );
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let proc = Self::spawn(port, dir.path());
        let zk = ZooKeeper { port, proc, dir };
        zk.wait_ready();
        zk
    }

    fn spawn(port: u16, dir: &Path) -> Proc {
        let data = dir.join("data");
        std::fs::create_dir_all(&data).unwrap();
        let mut cmd = Command::new("java");
        cmd.args([
            "-Xmx256m",
            "-Dzookeeper.admin.enableServer=false",
            "-Dzookeeper.4lw.commands.whitelist=srvr,ruok",
            "-cp",
            &format!("{ZK_JAR}:/etc/zookeeper/conf"),
            "org.apache.zookeeper.server.ZooKeeperServerMain",
            &port.to_string(),
            data.to_str().unwrap(),
            "2000",
        ]);
        Proc::spawn(&format!("zookeeper-{port}"), cmd, dir)
    }

    fn wait_ready(&self) {
        wait_until(Duration::from_secs(60), "ZooKeeper to serve", || {
            four_letter(self.port, "srvr").is_some_and(|s| s.contains("Mode:"))
        });
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Stops the server (kill -9), keeping its data dir.
    pub fn stop(&mut self) {
        self.proc.kill();
    }

    /// Freezes the server (SIGSTOP): clients hear nothing, not even that a node left.
    pub fn pause(&self) {
        self.proc.signal("-STOP");
    }

    /// Lets a paused server run again (SIGCONT).
    pub fn resume(&self) {
        self.proc.signal("-CONT");
    }

    /// Starts it again on the same port and data.
    pub fn restart(&mut self) {
        self.proc = Self::spawn(self.port, self.dir.path());
        self.wait_ready();
    }
}

/// One tiercache process.
pub struct Node {
    pub id: String,
    pub port: u16,
    pub data_port: u16,
    pub proc: Proc,
}

impl Node {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// Builds tiercache processes that share one ZooKeeper root and a log/backup dir.
pub struct Cluster {
    pub zk_addr: String,
    pub root: String,
    pub dir: tempfile::TempDir,
    pub env: Vec<(String, String)>,
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_tiercache")
}

impl Cluster {
    pub fn new(zk: &ZooKeeper, env: &[(&str, &str)]) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let root = format!("/tc-{}", free_port());
        Cluster {
            zk_addr: zk.addr(),
            root,
            dir,
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    fn command(&self, role: &str, id: &str, port: u16, extra: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(bin());
        cmd.arg(role)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "info")
            .env("PORT", port.to_string())
            .env("BIND_ADDR", "127.0.0.1")
            .env("ADVERTISE_HOST", "127.0.0.1")
            .env("NODE_ID", id)
            .env("ZK_SERVERS", &self.zk_addr)
            .env("ZK_ROOT", &self.root)
            .env("ZK_SESSION_TIMEOUT_MS", "4000")
            .env("INTERNAL_TOKEN", TOKEN)
            .env("BACKUP_INTERVAL", "0")
            // Off unless a test asks for it: masters of parallel tests must not race for 6379.
            .env("REDIS_PORT", "0")
            .env("BACKUP_DIR", self.dir.path().join(format!("backup-{id}")));
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        for (k, v) in extra {
            cmd.env(k, v);
        }
        cmd
    }

    pub fn master(&self, id: &str, extra: &[(&str, &str)]) -> Node {
        let port = free_port();
        let proc = Proc::spawn(id, self.command("master", id, port, extra), self.dir.path());
        let n = Node { id: id.to_string(), port, data_port: 0, proc };
        wait_until(Duration::from_secs(20), &format!("{id} to answer /health"), || {
            http().get(format!("{}/health", n.url())).send().is_ok()
        });
        n
    }

    /// A master running as user `uid` (not root), so that a [`Cut`] can drop its packets
    /// alone.
    pub fn master_as(&self, id: &str, uid: u32, extra: &[(&str, &str)]) -> Node {
        let setpriv =
            ["setpriv".to_string(), format!("--reuid={uid}"), format!("--regid={uid}"), "--clear-groups".into()];
        self.master_under(id, extra, &setpriv)
    }

    /// A master started through `wrapper` (a program and its arguments, followed by the
    /// binary and `master`): `setpriv …`, `sh -c 'ulimit …; exec "$0" "$@"'`.
    pub fn master_under(&self, id: &str, extra: &[(&str, &str)], wrapper: &[String]) -> Node {
        let port = free_port();
        let cmd = self.command("master", id, port, extra);
        let mut wrapped = Command::new(&wrapper[0]);
        wrapped.args(&wrapper[1..]).arg(bin()).arg("master");
        wrapped.env_clear().envs(cmd.get_envs().filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned()))));
        let proc = Proc::spawn(id, wrapped, self.dir.path());
        let n = Node { id: id.to_string(), port, data_port: 0, proc };
        wait_until(Duration::from_secs(20), &format!("{id} to answer /health"), || {
            http().get(format!("{}/health", n.url())).send().is_ok()
        });
        n
    }

    /// A master process without waiting for it to serve (for one expected to stop).
    pub fn master_process(&self, id: &str, extra: &[(&str, &str)]) -> Proc {
        Proc::spawn(id, self.command("master", id, free_port(), extra), self.dir.path())
    }

    pub fn auxiliary(&self, id: &str, extra: &[(&str, &str)]) -> Node {
        self.auxiliary_on(id, free_port(), free_port(), extra)
    }

    pub fn auxiliary_on(&self, id: &str, port: u16, data_port: u16, extra: &[(&str, &str)]) -> Node {
        self.auxiliary_with(id, port, data_port, extra, |cmd| cmd)
    }

    /// An auxiliary whose files (snapshots, its log) may not grow past `kib` KiB: writes beyond
    /// fail with EFBIG, like a full disk fails them with ENOSPC (SIGXFSZ ignored).
    pub fn auxiliary_with_file_limit(&self, id: &str, port: u16, data_port: u16, kib: u64) -> Node {
        self.auxiliary_with(id, port, data_port, &[], |cmd| {
            let mut sh = Command::new("sh");
            // POSIX sh counts ulimit -f in 512-byte blocks.
            sh.arg("-c")
                .arg(format!("trap '' XFSZ; ulimit -f {}; exec \"$0\" \"$@\"", kib * 2))
                .arg(bin())
                .arg("auxiliary");
            sh.env_clear().envs(cmd.get_envs().filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned()))));
            sh
        })
    }

    fn auxiliary_with(
        &self,
        id: &str,
        port: u16,
        data_port: u16,
        extra: &[(&str, &str)],
        wrap: impl FnOnce(Command) -> Command,
    ) -> Node {
        let dp = data_port.to_string();
        let mut all: Vec<(&str, &str)> = vec![("DATA_PORT", dp.as_str())];
        all.extend_from_slice(extra);
        let proc = Proc::spawn(id, wrap(self.command("auxiliary", id, port, &all)), self.dir.path());
        let n = Node { id: id.to_string(), port, data_port, proc };
        wait_until(Duration::from_secs(20), &format!("{id} to answer /health"), || {
            http().get(format!("{}/health", n.url())).send().is_ok_and(|r| r.status().is_success())
        });
        n
    }
}

pub fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(10)).build().unwrap()
}

pub fn json(r: reqwest::blocking::Response) -> serde_json::Value {
    r.json().unwrap()
}

/// A node's `/health` body, if it answers.
pub fn health(n: &Node) -> Option<serde_json::Value> {
    http().get(format!("{}/health", n.url())).send().ok().and_then(|r| r.json::<serde_json::Value>().ok())
}

/// Number of auxiliaries a master routes to.
pub fn aux_count(master: &Node) -> i64 {
    health(master).and_then(|v| v["auxiliaries"].as_i64()).unwrap_or(-1)
}

pub fn wait_aux_count(master: &Node, n: i64, timeout: Duration) {
    wait_until(timeout, &format!("{} to see {n} auxiliaries", master.id), || aux_count(master) == n);
}

pub fn put(master: &Node, key: &str, value: &str) -> reqwest::StatusCode {
    http()
        .put(format!("{}/cache/", master.url()))
        .query(&[("key", key), ("value", value)])
        .send()
        .map(|r| r.status())
        .unwrap_or(reqwest::StatusCode::IM_A_TEAPOT)
}

pub fn get(master: &Node, key: &str) -> (reqwest::StatusCode, Vec<u8>) {
    match http().get(format!("{}/cache/", master.url())).query(&[("key", key)]).send() {
        Ok(r) => {
            let s = r.status();
            (s, r.bytes().map(|b| b.to_vec()).unwrap_or_default())
        }
        Err(_) => (reqwest::StatusCode::IM_A_TEAPOT, vec![]),
    }
}

/// Live keys an auxiliary reports on `/health`.
pub fn aux_keys(n: &Node) -> Option<u64> {
    health(n).and_then(|v| v["keys"].as_u64())
}

/// A connection to an auxiliary's data port, speaking the internal protocol as a master does
/// (after the token).
pub struct AuxConn {
    conn: TcpStream,
    next_id: u64,
}

impl AuxConn {
    pub fn open(data_port: u16) -> AuxConn {
        let conn = TcpStream::connect(("127.0.0.1", data_port)).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        conn.set_nodelay(true).unwrap();
        let mut c = AuxConn { conn, next_id: 0 };
        let hello =
            tiercache_protocol::Request::Hello { token: TOKEN.into(), protocol: tiercache_protocol::PROTOCOL_VERSION };
        assert_eq!(c.call(&hello), tiercache_protocol::Response::Welcome);
        c
    }

    pub fn call(&mut self, req: &tiercache_protocol::Request) -> tiercache_protocol::Response {
        self.next_id += 1;
        let body = tiercache_protocol::encode(self.next_id, req).unwrap();
        let mut frame = (body.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(&body);
        self.conn.write_all(&frame).unwrap();
        let mut len = [0u8; 4];
        self.conn.read_exact(&mut len).unwrap();
        let mut buf = vec![0u8; u32::from_be_bytes(len) as usize];
        self.conn.read_exact(&mut buf).unwrap();
        tiercache_protocol::decode::<tiercache_protocol::Response>(&buf).unwrap().1
    }
}

/// A network cut between the processes of one user and one loopback port: their packets to it
/// are dropped (an iptables rule on the owner's uid), so connections time out as across a
/// severed link, while every other process still reaches the port. Healed on drop.
pub struct Cut {
    uid: u32,
    port: u16,
}

impl Cut {
    fn rule(&self, op: &str) -> std::process::Output {
        Command::new("iptables")
            .args([op, "OUTPUT", "-o", "lo", "-p", "tcp", "--dport", &self.port.to_string()])
            .args(["-m", "owner", "--uid-owner", &self.uid.to_string(), "-j", "DROP"])
            .output()
            .expect("iptables runs (scripts/test.sh installs it; the tests run as root)")
    }

    pub fn new(uid: u32, port: u16) -> Cut {
        let cut = Cut { uid, port };
        let out = cut.rule("-A");
        assert!(out.status.success(), "iptables -A failed: {}", String::from_utf8_lossy(&out.stderr));
        cut
    }
}

impl Drop for Cut {
    fn drop(&mut self) {
        let _ = self.rule("-D");
    }
}

/// A user id for a process a test may cut off, distinct per test (its port).
pub fn uid_for(port: u16) -> u32 {
    40_000 + u32::from(port)
}

/// Writes `data` at `path` in ZooKeeper (creating it and its parents, persistent), as a hand
/// edit or an older release would.
pub fn zk_write(zk_addr: &str, path: &str, data: &[u8]) {
    zk_run(zk_addr, |client| async move {
        let parent = &path[..path.rfind('/').unwrap()];
        let acl = zookeeper_client::CreateMode::Persistent.with_acls(zookeeper_client::Acls::anyone_all());
        if !parent.is_empty() {
            client.mkdir(parent, &acl).await.unwrap();
        }
        match client.create(path, data, &acl).await {
            Ok(_) => {}
            Err(zookeeper_client::Error::NodeExists) => {
                client.set_data(path, data, None).await.unwrap();
            }
            Err(e) => panic!("create {path}: {e}"),
        }
    })
}

/// Deletes `path` from ZooKeeper.
pub fn zk_delete(zk_addr: &str, path: &str) {
    zk_run(zk_addr, |client| async move { client.delete(path, None).await.unwrap() })
}

/// The data at `path` in ZooKeeper.
pub fn zk_read(zk_addr: &str, path: &str) -> Vec<u8> {
    zk_run(zk_addr, |client| async move { client.get_data(path).await.unwrap().0 })
}

fn zk_run<T, F: std::future::Future<Output = T>>(zk_addr: &str, f: impl FnOnce(zookeeper_client::Client) -> F) -> T {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let client = tokio::time::timeout(Duration::from_secs(10), zookeeper_client::Client::connect(zk_addr))
            .await
            .expect("ZooKeeper answers")
            .unwrap();
        tokio::time::timeout(Duration::from_secs(10), f(client)).await.expect("ZooKeeper answers in time")
    })
}

/// A connection to a master's Redis port.
pub fn conn(port: u16) -> redis::Connection {
    let c = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let con = c.get_connection_with_timeout(Duration::from_secs(5)).unwrap();
    con.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    con
}

/// One command, its words as bytes.
pub fn q<T: redis::FromRedisValue>(con: &mut redis::Connection, args: &[&[u8]]) -> redis::RedisResult<T> {
    let mut cmd = redis::cmd(std::str::from_utf8(args[0]).unwrap());
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(con)
}

/// Sends raw bytes and returns what came back before the server closed or went quiet.
pub fn raw(port: u16, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(bytes);
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}
