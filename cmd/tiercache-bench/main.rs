//! `tiercache-bench`: the project's load generator and measuring tools.
//!
//! - `http`: keep-alive HTTP/1.1 load against a master (or any server, with `--path` for a
//!   fixed reference URL), printing requests/s, errors and latency percentiles.
//! - `fill`: loads entries straight into an auxiliary over the internal protocol (for memory,
//!   snapshot and restore measurements).
//! - `placement`: balance and movement of the placement ring.

use anyhow::{bail, Context, Result};
use bytes::{Buf, BytesMut};
use clap::{Parser, Subcommand};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Parser)]
#[command(about = "tiercache load generator and measuring tools")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// HTTP load: GET/PUT mix on /cache/{key}, or GET of a fixed path.
    Http(HttpOpts),
    /// Fill an auxiliary with entries over the internal protocol.
    Fill(FillOpts),
    /// Placement balance (max/mean keys per node) and fraction moved on a join.
    Placement {
        /// Virtual nodes per auxiliary.
        #[arg(long, default_value_t = 512)]
        virtual_nodes: u32,
        /// Keys to place.
        #[arg(long, default_value_t = 1_000_000)]
        keys: usize,
    },
}

#[derive(clap::Args, Clone)]
struct HttpOpts {
    /// Base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    url: String,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Seconds to run (ignored when --requests is given).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Total requests to send instead of a duration.
    #[arg(long)]
    requests: Option<u64>,
    /// Bytes per value written.
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// Distinct keys used.
    #[arg(long, default_value_t = 10_000)]
    keys: u64,
    /// Fraction of GETs (the rest are PUTs).
    #[arg(long, default_value_t = 0.9)]
    get_ratio: f64,
    /// TTL in seconds for PUTs.
    #[arg(long)]
    ttl: Option<u64>,
    /// GET this fixed path instead of /cache/{key} (reference servers).
    #[arg(long)]
    path: Option<String>,
    /// Write every key once before measuring.
    #[arg(long)]
    preload: bool,
    /// Target total requests/s (open pacing per connection); unlimited when absent.
    #[arg(long)]
    rate: Option<f64>,
    /// Runtime worker threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Write the summary as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// A label printed with the results.
    #[arg(long, default_value = "tiercache")]
    label: String,
}

#[derive(clap::Args)]
struct FillOpts {
    /// host:port of the auxiliary's DATA_PORT.
    #[arg(long)]
    data_addr: String,
    /// INTERNAL_TOKEN.
    #[arg(long, env = "INTERNAL_TOKEN")]
    token: String,
    /// Entries to write.
    #[arg(long, default_value_t = 1_000_000)]
    entries: u64,
    /// Bytes per value.
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// Time to live of every entry in seconds (0 = none).
    #[arg(long, default_value_t = 0)]
    ttl: u64,
}

/// 16-byte keys, as in the benchmark targets.
fn key_of(i: u64) -> String {
    format!("key:{i:012}")
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*: fast and good enough to spread keys.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545F4914F6CDD1D)
    }
}

#[derive(Default)]
struct TaskResult {
    latencies_us: Vec<u32>,
    ok: u64,
    not_found: u64,
    errors: u64,
}

fn host_port(url: &str) -> Result<String> {
    let rest = url.strip_prefix("http://").context("only http:// URLs")?;
    let hp = rest.split('/').next().unwrap_or(rest);
    Ok(if hp.contains(':') { hp.to_string() } else { format!("{hp}:80") })
}

/// Reads one HTTP response; returns its status.
async fn read_response(stream: &mut TcpStream, buf: &mut BytesMut) -> Result<u16> {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut headers);
        if let httparse::Status::Complete(head) = resp.parse(buf)? {
            let status = resp.code.unwrap_or(0);
            let len: usize = resp
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok())
                .unwrap_or(0);
            while buf.len() < head + len {
                if stream.read_buf(buf).await? == 0 {
                    bail!("connection closed mid-body");
                }
            }
            buf.advance(head + len);
            return Ok(status);
        }
        if stream.read_buf(buf).await? == 0 {
            bail!("connection closed");
        }
    }
}

async fn connection_task(opts: HttpOpts, index: usize, seed: u64, deadline: Option<Instant>, quota: u64) -> TaskResult {
    let mut res = TaskResult::default();
    let Ok(addr) = host_port(&opts.url) else { return res };
    let host = addr.clone();
    let value = vec![b'x'; opts.value_size];
    let mut rng = Rng(seed | 1);
    let mut req = Vec::with_capacity(256 + opts.value_size);
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut stream: Option<TcpStream> = None;
    let mut pacing = opts.rate.map(|r| {
        let per_conn = r / opts.connections as f64;
        let period = Duration::from_secs_f64(1.0 / per_conn.max(0.001));
        // Each connection starts at its own phase of the period: intervals started together
        // tick together, which sends all connections' requests as one burst per period.
        let phase = period.mul_f64(index as f64 / opts.connections as f64);
        let mut iv = tokio::time::interval_at(tokio::time::Instant::now() + phase, period);
        iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        iv
    });
    let mut sent = 0u64;
    loop {
        if deadline.is_some_and(|d| Instant::now() >= d) || (deadline.is_none() && sent >= quota) {
            break;
        }
        if let Some(p) = pacing.as_mut() {
            p.tick().await;
        }
        sent += 1;
        req.clear();
        let is_get = opts.path.is_some() || (rng.next() % 10_000) as f64 / 10_000.0 < opts.get_ratio;
        if let Some(path) = &opts.path {
            req.extend_from_slice(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes());
        } else {
            let key = key_of(rng.next() % opts.keys.max(1));
            if is_get {
                req.extend_from_slice(format!("GET /cache/{key} HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes());
            } else {
                let ttl = opts.ttl.map(|t| format!("?ttl={t}")).unwrap_or_default();
                req.extend_from_slice(
                    format!(
                        "PUT /cache/{key}{ttl} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\n\r\n",
                        value.len()
                    )
                    .as_bytes(),
                );
                req.extend_from_slice(&value);
            }
        }
        if stream.is_none() {
            match TcpStream::connect(&addr).await {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    buf.clear();
                    stream = Some(s);
                }
                Err(_) => {
                    res.errors += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
        }
        let Some(s) = stream.as_mut() else { continue };
        let t = Instant::now();
        let outcome = async {
            s.write_all(&req).await?;
            read_response(s, &mut buf).await
        }
        .await;
        match outcome {
            Ok(status) => {
                res.latencies_us.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
                match status {
                    200..=299 => res.ok += 1,
                    404 if is_get => res.not_found += 1,
                    _ => res.errors += 1,
                }
            }
            Err(_) => {
                res.errors += 1;
                stream = None;
            }
        }
    }
    res
}

fn pct(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

async fn run_http(opts: HttpOpts) -> Result<serde_json::Value> {
    if opts.preload && opts.path.is_none() {
        let mut pre = opts.clone();
        pre.get_ratio = 0.0;
        let per = opts.keys.div_ceil(opts.connections as u64);
        let tasks: Vec<_> = (0..opts.connections)
            .map(|c| {
                let mut o = pre.clone();
                o.rate = None;
                tokio::spawn(async move {
                    // Sequential keys per connection so every key is written once.
                    let mut r = TaskResult::default();
                    let addr = host_port(&o.url).unwrap_or_default();
                    let Ok(mut s) = TcpStream::connect(&addr).await else { return r };
                    let mut buf = BytesMut::new();
                    let value = vec![b'x'; o.value_size];
                    for i in (c as u64 * per)..((c as u64 + 1) * per).min(o.keys) {
                        let mut req = format!(
                            "PUT /cache/{} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\n\r\n",
                            key_of(i),
                            value.len()
                        )
                        .into_bytes();
                        req.extend_from_slice(&value);
                        if s.write_all(&req).await.is_err() {
                            r.errors += 1;
                            break;
                        }
                        match read_response(&mut s, &mut buf).await {
                            Ok(200) => r.ok += 1,
                            _ => r.errors += 1,
                        }
                    }
                    r
                })
            })
            .collect();
        let mut errors = 0;
        for t in tasks {
            errors += t.await.map(|r| r.errors).unwrap_or(1);
        }
        if errors > 0 {
            bail!("preload failed for {errors} keys");
        }
    }
    let started = Instant::now();
    let deadline = opts.requests.is_none().then(|| started + Duration::from_secs_f64(opts.duration));
    let quota = opts.requests.map(|r| r.div_ceil(opts.connections as u64)).unwrap_or(0);
    let tasks: Vec<_> = (0..opts.connections)
        .map(|c| {
            tokio::spawn(connection_task(
                opts.clone(),
                c,
                0x9E37_79B9_7F4A_7C15u64.wrapping_mul(c as u64 + 1),
                deadline,
                quota,
            ))
        })
        .collect();
    let mut all = TaskResult::default();
    for t in tasks {
        let r = t.await?;
        all.ok += r.ok;
        all.not_found += r.not_found;
        all.errors += r.errors;
        all.latencies_us.extend(r.latencies_us);
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.latencies_us.sort_unstable();
    let total = all.latencies_us.len() as f64;
    let mean = if total > 0.0 { all.latencies_us.iter().map(|&x| x as f64).sum::<f64>() / total / 1000.0 } else { 0.0 };
    let summary = serde_json::json!({
        "label": opts.label,
        "url": opts.url,
        "path": opts.path,
        "connections": opts.connections,
        "get_ratio": opts.get_ratio,
        "value_size": opts.value_size,
        "rate_target": opts.rate,
        "seconds": elapsed,
        "requests": total as u64,
        "requests_per_sec": total / elapsed,
        "ok": all.ok,
        "not_found": all.not_found,
        "errors": all.errors,
        "latency_ms": {
            "mean": mean,
            "p50": pct(&all.latencies_us, 0.50),
            "p90": pct(&all.latencies_us, 0.90),
            "p99": pct(&all.latencies_us, 0.99),
            "p999": pct(&all.latencies_us, 0.999),
            "max": pct(&all.latencies_us, 1.0),
        },
    });
    println!(
        "{:<28} {:>10.0} req/s  ok {:>8}  404 {:>7}  errors {:>5}  p50 {:>6.3} ms  p90 {:>6.3}  p99 {:>6.3}  p99.9 {:>6.3}",
        opts.label,
        total / elapsed,
        all.ok,
        all.not_found,
        all.errors,
        pct(&all.latencies_us, 0.5),
        pct(&all.latencies_us, 0.9),
        pct(&all.latencies_us, 0.99),
        pct(&all.latencies_us, 0.999)
    );
    if let Some(path) = &opts.json {
        std::fs::write(path, serde_json::to_vec_pretty(&summary)?)?;
    }
    Ok(summary)
}

async fn frame_roundtrip(
    s: &mut TcpStream,
    buf: &mut BytesMut,
    id: u64,
    req: &tiercache_protocol::Request,
) -> Result<tiercache_protocol::Response> {
    let body = tiercache_protocol::encode(id, req)?;
    s.write_all(&(body.len() as u32).to_be_bytes()).await?;
    s.write_all(&body).await?;
    loop {
        if buf.len() >= 4 {
            let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
            if buf.len() >= 4 + len {
                let (_, resp) = tiercache_protocol::decode::<tiercache_protocol::Response>(&buf[4..4 + len])?;
                buf.advance(4 + len);
                return Ok(resp);
            }
        }
        if s.read_buf(buf).await? == 0 {
            bail!("connection closed");
        }
    }
}

async fn run_fill(o: FillOpts) -> Result<()> {
    let mut s = TcpStream::connect(&o.data_addr).await.with_context(|| format!("connect {}", o.data_addr))?;
    let mut buf = BytesMut::new();
    match frame_roundtrip(
        &mut s,
        &mut buf,
        0,
        &tiercache_protocol::Request::Hello { token: o.token.clone(), protocol: tiercache_protocol::PROTOCOL_VERSION },
    )
    .await?
    {
        tiercache_protocol::Response::Welcome => {}
        other => bail!("refused: {other:?}"),
    }
    // Incompressible printable values, like the ones given to Redis, so snapshot sizes compare.
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut value_of = move || {
        bytes::Bytes::from(
            (0..o.value_size).map(|_| b"0123456789abcdef"[(rng.next() >> 60) as usize]).collect::<Vec<u8>>(),
        )
    };
    let started = Instant::now();
    let mut written = 0u64;
    let mut i = 0u64;
    while i < o.entries {
        let end = (i + 1000).min(o.entries);
        let entries = (i..end)
            .map(|k| tiercache_protocol::WireEntry {
                key: bytes::Bytes::from(key_of(k)),
                value: Some(value_of()),
                version: 1,
                ttl_ms: o.ttl * 1000,
                expiry_seq: 0,
            })
            .collect();
        match frame_roundtrip(&mut s, &mut buf, i + 1, &tiercache_protocol::Request::PutBatch { entries }).await? {
            tiercache_protocol::Response::Applied(n) => written += n,
            other => bail!("unexpected answer {other:?}"),
        }
        i = end;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "filled {written} entries of {} bytes in {secs:.2} s ({:.0} entries/s)",
        o.value_size,
        written as f64 / secs
    );
    Ok(())
}

fn run_placement(virtual_nodes: u32, keys: usize) {
    use std::collections::HashMap;
    use tiercache_placement::Ring;
    let names = |n: usize| (0..n).map(|i| format!("aux-{i}")).collect::<Vec<_>>();
    let ks: Vec<Vec<u8>> = (0..keys as u64).map(|i| key_of(i).into_bytes()).collect();
    for n in [3usize, 5, 10] {
        let ring = Ring::new(&names(n), virtual_nodes);
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for k in &ks {
            *counts.entry(ring.owners(k, 1)[0]).or_default() += 1;
        }
        let max = counts.values().copied().max().unwrap_or(0) as f64;
        let mean = keys as f64 / n as f64;
        let after = Ring::new(&names(n + 1), virtual_nodes);
        let moved = ks.iter().filter(|k| ring.owners(k, 1) != after.owners(k, 1)).count() as f64 / keys as f64;
        let ideal = 1.0 / (n as f64 + 1.0);
        println!(
            "placement n={n:<2} vnodes={virtual_nodes} max/mean={:.3}  join {n}->{}: moved {:.4} ideal {:.4} ratio {:.3}",
            max / mean,
            n + 1,
            moved,
            ideal,
            moved / ideal
        );
    }
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Placement { virtual_nodes, keys } => {
            run_placement(virtual_nodes, keys);
            Ok(())
        }
        Cmd::Http(o) => {
            let rt =
                tokio::runtime::Builder::new_multi_thread().worker_threads(o.threads.max(1)).enable_all().build()?;
            rt.block_on(run_http(o)).map(|_| ())
        }
        Cmd::Fill(o) => {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            rt.block_on(run_fill(o))
        }
    }
}
