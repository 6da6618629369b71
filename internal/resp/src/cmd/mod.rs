//! One file per command (a family such as TTL/PTTL shares one), dispatched through the one
//! table of names, arity, flags and key positions ([`table`]); each file has its `run`.
//! Replies and errors use Redis's own types and words, so client libraries react as they do
//! with Redis.

mod append;
mod auth;
mod client;
mod command;
mod config;
mod copy;
mod dbsize;
mod debug;
mod del;
mod discard;
mod docs;
mod echo;
mod exec;
mod exists;
mod expire;
mod expiretime;
mod flushall;
mod function;
mod get;
mod getdel;
mod getex;
mod getrange;
mod getset;
mod hello;
mod incr;
mod incrbyfloat;
mod info;
mod keys;
mod mget;
mod mset;
mod msetnx;
mod multi;
mod object;
mod persist;
mod ping;
mod quit;
mod randomkey;
mod rename;
mod reset;
mod scan;
mod select;
mod set;
mod setex;
mod setnx;
mod setrange;
mod strlen;
pub(crate) mod table;
mod time;
mod ttl;
mod type_;
mod watch;

use super::Session;
use bytes::Bytes;
use redis_protocol::resp2::types::BytesFrame;
use std::time::Instant;
use table::Runner;
use tiercache_master::protocol::RemoteError;
use tiercache_master::tx::TxError;
use tiercache_master::MasterError;
use tiercache_master::MasterState;

/// A reply.
pub(crate) type Reply = BytesFrame;

/// What a command works with.
pub(crate) struct Ctx<'a> {
    pub state: &'a MasterState,
    pub front: &'a crate::Front,
    pub session: &'a mut Session,
}

/// A command off the wire, looked up once in [`table::COMMANDS`].
#[derive(Default, Clone)]
pub(crate) struct Command {
    spec: Option<&'static table::Spec>,
    args: Vec<Bytes>,
}

impl Command {
    /// `args[0]` names the command (a frame always has at least one argument).
    pub(crate) fn new(args: Vec<Bytes>) -> Command {
        Command { spec: args.first().and_then(|n| table::lookup(n)), args }
    }

    /// It only reads keys: a run of such commands may go to the cluster together.
    pub(crate) fn is_read(&self) -> bool {
        self.spec.is_some_and(table::Spec::reads_keys)
    }

    /// The keys it names, by the table's key positions.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &Bytes> {
        let (first, last, step) = self.spec.map_or((0, 0, 1), |s| s.keys);
        let n = self.args.len() as i32;
        let last = if last < 0 { n + last } else { last.min(n - 1) };
        let keys = if first > 0 && first <= last { &self.args[first as usize..=last as usize] } else { &[] };
        keys.iter().step_by(step.max(1) as usize)
    }

    /// Its field-value reply is a map in RESP3: `HELLO` and `CONFIG GET`, as in Redis 7.
    pub(crate) fn replies_map(&self) -> bool {
        match self.spec.map(|s| s.runner) {
            Some(Runner::Hello) => true,
            Some(Runner::Config) => self.args.get(1).is_some_and(|a| a.eq_ignore_ascii_case(b"get")),
            _ => false,
        }
    }
}

/// Runs one command: its arity checked against [`table::COMMANDS`], then run by its file.
pub(crate) async fn run(state: &MasterState, front: &crate::Front, session: &mut Session, command: Command) -> Reply {
    let queueing = session.multi.is_some() && !command.spec.is_some_and(|s| s.runner.runs_inside_multi());
    let Command { spec, args } = &command;
    let refused = match spec {
        None => Some(unknown(&String::from_utf8_lossy(&args[0]).to_ascii_lowercase(), &args[1..])),
        Some(_) if session.identity == super::Identity::Nobody && !spec.is_some_and(table::Spec::no_auth) => {
            Some(BytesFrame::Error("NOAUTH Authentication required.".into()))
        }
        Some(s) if !arity_ok(s.arity, args.len()) => {
            Some(err(format!("wrong number of arguments for '{}' command", s.name)))
        }
        // A flush reaches every key of the cluster: it cannot be one isolated step with the
        // others, and a transaction that runs again would flush again.
        Some(s) if queueing && s.runner == Runner::Flushall => Some(err("Command not allowed inside a transaction")),
        Some(_) => None,
    };
    if let Some(reply) = refused {
        // A command refused while queueing spoils the transaction.
        session.multi_dirty |= queueing;
        return reply;
    }
    if queueing {
        if let Some(queued) = &mut session.multi {
            queued.push(command);
        }
        return BytesFrame::SimpleString(Bytes::from_static(b"QUEUED"));
    }
    let Command { spec: Some(spec), args } = command else { unreachable!("refused above") };
    let mut ctx = Ctx { state, front, session };
    let ctx = &mut ctx;
    let args = &args;
    match spec.runner {
        Runner::Append => append::run(ctx, args).await,
        Runner::Auth => auth::run(ctx, args).await,
        Runner::Client => client::run(ctx, args).await,
        Runner::Command => command::run(ctx, args).await,
        Runner::Config => config::run(ctx, args).await,
        Runner::Copy => copy::run(ctx, args).await,
        Runner::Incrbyfloat => incrbyfloat::run(ctx, args).await,
        Runner::Msetnx => msetnx::run(ctx, args).await,
        Runner::Object => object::run(ctx, args).await,
        Runner::Randomkey => randomkey::run(ctx, args).await,
        Runner::Rename => rename::run(ctx, args).await,
        Runner::Setrange => setrange::run(ctx, args).await,
        Runner::Debug => debug::run(ctx, args).await,
        Runner::Function => function::run(ctx, args).await,
        Runner::Keys => keys::run(ctx, args).await,
        Runner::Dbsize => dbsize::run(ctx, args).await,
        Runner::Del => del::run(ctx, args).await,
        Runner::Discard => discard::run(ctx, args).await,
        Runner::Exec => exec::run(ctx, args).await,
        Runner::Multi => multi::run(ctx, args).await,
        Runner::Watch | Runner::Unwatch => watch::run(ctx, args).await,
        Runner::Echo => echo::run(ctx, args).await,
        Runner::Exists | Runner::Touch => exists::run(ctx, args).await,
        Runner::Expire => expire::run(ctx, args).await,
        Runner::Expiretime => expiretime::run(ctx, args).await,
        Runner::Flushall => flushall::run(ctx, args).await,
        Runner::Get => get::run(ctx, args).await,
        Runner::Getdel => getdel::run(ctx, args).await,
        Runner::Getex => getex::run(ctx, args).await,
        Runner::Getrange => getrange::run(ctx, args).await,
        Runner::Getset => getset::run(ctx, args).await,
        Runner::Hello => hello::run(ctx, args).await,
        Runner::Incr => incr::run(ctx, args).await,
        Runner::Info => info::run(ctx, args).await,
        Runner::Mget => mget::run(ctx, args).await,
        Runner::Mset => mset::run(ctx, args).await,
        Runner::Persist => persist::run(ctx, args).await,
        Runner::Ping => ping::run(ctx, args).await,
        Runner::Quit => quit::run(ctx, args).await,
        Runner::Reset => reset::run(ctx, args).await,
        Runner::Scan => scan::run(ctx, args).await,
        Runner::Select => select::run(ctx, args).await,
        Runner::Set => set::run(ctx, args).await,
        Runner::Setex => setex::run(ctx, args).await,
        Runner::Setnx => setnx::run(ctx, args).await,
        Runner::Strlen => strlen::run(ctx, args).await,
        Runner::Time => time::run(ctx, args).await,
        Runner::Ttl => ttl::run(ctx, args).await,
        Runner::Type => type_::run(ctx, args).await,
    }
}

fn arity_ok(arity: i32, n: usize) -> bool {
    if arity >= 0 {
        n == arity as usize
    } else {
        n >= arity.unsigned_abs() as usize
    }
}

fn unknown(name: &str, args: &[Bytes]) -> Reply {
    let shown: String = args.iter().take(20).map(|a| format!("'{}' ", String::from_utf8_lossy(a))).collect();
    err(format!("unknown command '{name}', with args beginning with: {shown}"))
}

pub(crate) fn ok() -> Reply {
    BytesFrame::SimpleString(Bytes::from_static(b"OK"))
}

pub(crate) fn err(msg: impl std::fmt::Display) -> Reply {
    BytesFrame::Error(format!("ERR {msg}").into())
}

pub(crate) fn syntax_error() -> Reply {
    err("syntax error")
}

pub(crate) fn not_integer() -> Reply {
    err("value is not an integer or out of range")
}

pub(crate) fn int(n: i64) -> Reply {
    BytesFrame::Integer(n)
}

pub(crate) fn bulk(b: Bytes) -> Reply {
    BytesFrame::BulkString(b)
}

pub(crate) fn nil() -> Reply {
    BytesFrame::Null
}

/// An argument as an integer, or Redis's error for it.
pub(crate) fn integer(arg: &[u8]) -> Result<i64, Reply> {
    std::str::from_utf8(arg).ok().and_then(|s| s.parse().ok()).ok_or_else(not_integer)
}

/// A failure of the cluster, in words a Redis client shows to its user.
pub(crate) fn cluster_error(e: MasterError) -> Reply {
    match e {
        MasterError::Refused { error: e @ (RemoteError::NotAnInteger | RemoteError::Overflow), .. } => err(e),
        MasterError::Refused { error: RemoteError::TooLarge { size, limit }, .. } => {
            err(format!("entry of {size} bytes exceeds the per-shard limit of {limit}"))
        }
        // Like a Redis cluster that cannot serve the slot right now: clients may retry.
        other => BytesFrame::Error(format!("TRYAGAIN {other}").into()),
    }
}

/// A command's failure inside a transaction, in the words it would have outside one.
fn tx_error(e: TxError) -> Reply {
    match e {
        TxError::Step(error) => cluster_error(MasterError::Refused { id: String::new(), error }),
        other => err(other),
    }
}

/// Refuses a key over `KEY_MAX_BYTES`.
pub(crate) fn check_key(ctx: &Ctx<'_>, key: &[u8]) -> Result<(), Reply> {
    let max = ctx.state.limits.key_max_bytes;
    if key.len() > max {
        return Err(err(format!("key of {} bytes exceeds KEY_MAX_BYTES ({max})", key.len())));
    }
    Ok(())
}

/// Checks the key-value pairs of `MSET` and `MSETNX` (`args[0]` is the command's name).
pub(crate) fn check_pairs(ctx: &Ctx<'_>, args: &[Bytes]) -> Result<(), Reply> {
    if args.len() % 2 != 1 {
        let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
        return Err(err(format!("wrong number of arguments for '{name}' command")));
    }
    args[1..].chunks(2).try_for_each(|pair| check_key(ctx, &pair[0]).and_then(|()| check_value(ctx, &pair[1])))
}

/// Refuses a value over `VALUE_MAX_BYTES`.
pub(crate) fn check_value(ctx: &Ctx<'_>, value: &[u8]) -> Result<(), Reply> {
    let max = ctx.state.limits.value_max_bytes;
    if value.len() > max {
        return Err(err(format!("value of {} bytes exceeds VALUE_MAX_BYTES ({max})", value.len())));
    }
    Ok(())
}

/// Counts an operation in `cache_operations_total` and `cache_request_duration_seconds`.
pub(crate) fn observe(ctx: &Ctx<'_>, operation: &str, result: &str, started: Instant) {
    ctx.state.metrics.observe(operation, result, started);
}

/// The value and remaining ttl (ms, 0 = none) of a key, or a reply to send instead.
pub(crate) async fn read(ctx: &Ctx<'_>, key: &Bytes) -> Result<Option<(Bytes, u64)>, Reply> {
    if let Some(tx) = &ctx.session.tx {
        return tx.lock().get(key).map_err(tx_error);
    }
    let started = Instant::now();
    let floor = ctx.session.floors.lock().floor(key);
    match ctx.state.router.read_at_least(key.clone(), floor).await {
        Ok(found) => {
            let hit = found.and_then(|f| Some((f.value?, f.ttl_ms)));
            observe(ctx, "get", if hit.is_some() { "hit" } else { "miss" }, started);
            Ok(hit)
        }
        Err(e) => {
            observe(ctx, "get", "error", started);
            Err(cluster_error(e))
        }
    }
}

/// Writes a value with a ttl in ms (0 = none).
pub(crate) async fn write(ctx: &Ctx<'_>, key: &Bytes, value: Bytes, ttl_ms: u64) -> Result<(), Reply> {
    if let Some(tx) = &ctx.session.tx {
        return tx.lock().put(key, value, ttl_ms).map_err(tx_error);
    }
    let started = Instant::now();
    let r = ctx.state.router.put(key.clone(), value, ttl_ms).await;
    observe(ctx, "put", if r.is_ok() { "ok" } else { "error" }, started);
    let version = r.map_err(cluster_error)?;
    ctx.session.floors.lock().note(key, version);
    Ok(())
}

/// Runs a read-modify-write on the key's primary owner: the value before and the one written.
pub(crate) async fn apply(
    ctx: &Ctx<'_>,
    key: &Bytes,
    op: tiercache_master::protocol::Op,
) -> Result<(Option<Bytes>, Option<Bytes>), Reply> {
    if let Some(tx) = &ctx.session.tx {
        return tx.lock().apply(key, &op).map_err(tx_error);
    }
    let started = Instant::now();
    let r = ctx.state.router.apply(key.clone(), op).await;
    observe(ctx, "put", if r.is_ok() { "ok" } else { "error" }, started);
    match r {
        Ok((previous, written)) => {
            if let Some(w) = &written {
                ctx.session.floors.lock().note(key, w.version);
            }
            Ok((previous, written.and_then(|w| w.value)))
        }
        Err(e) => Err(cluster_error(e)),
    }
}

/// Deletes; true when a live value was there.
pub(crate) async fn delete(ctx: &Ctx<'_>, key: &Bytes) -> Result<bool, Reply> {
    if let Some(tx) = &ctx.session.tx {
        return tx.lock().delete(key).map_err(tx_error);
    }
    let started = Instant::now();
    match ctx.state.router.delete_versioned(key.clone()).await {
        Ok((existed, version)) => {
            ctx.session.floors.lock().note(key, version);
            observe(ctx, "delete", if existed { "hit" } else { "miss" }, started);
            Ok(existed)
        }
        Err(e) => {
            observe(ctx, "delete", "error", started);
            Err(cluster_error(e))
        }
    }
}

/// The TTL a write without one gets (`DEFAULT_TTL`), in ms.
pub(crate) fn default_ttl_ms(ctx: &Ctx<'_>) -> u64 {
    ctx.state.limits.default_ttl_secs * 1000
}

/// Wall-clock milliseconds.
pub(crate) fn now_ms() -> u64 {
    tiercache_master::protocol::version::now_ms()
}
