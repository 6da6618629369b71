//! One file per command (a family such as TTL/PTTL shares one), dispatched through the one
//! table of names, arity, flags and key positions ([`table`]): the table checks the arity,
//! each file parses the frame into its own type (syntax errors, before anything runs:
//! [`Parsed`]) and runs it.
//! Replies and errors use Redis's own types and words, so client libraries react as they do
//! with Redis.

mod append;
mod auth;
mod client;
mod cluster;
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
mod reply;
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
pub(crate) use cluster::*;
use redis_protocol::resp2::types::BytesFrame;
pub(crate) use reply::*;
use table::Runner;
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
    args: crate::frame::Args,
}

impl Command {
    /// `args[0]` names the command (a frame always has at least one argument).
    pub(crate) fn new(args: crate::frame::Args) -> Command {
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
    let parsed = match Parsed::parse(spec.runner, &args) {
        Ok(parsed) => parsed,
        Err(reply) => return reply,
    };
    parsed.run(&mut Ctx { state, front, session }).await
}

/// Declares [`Parsed`]: one variant per [`Runner`], each the type its file parses the frame
/// into and runs.
macro_rules! commands {
    ($($runner:ident => $module:ident :: $ty:ident),* $(,)?) => {
        /// A command parsed from its frame (its arity already checked against the table; its
        /// syntax by its file's `parse`), run by the same file.
        enum Parsed {
            $($runner($module::$ty),)*
        }

        impl Parsed {
            fn parse(runner: Runner, args: &[Bytes]) -> Result<Parsed, Reply> {
                Ok(match runner {
                    $(Runner::$runner => Parsed::$runner($module::$ty::parse(args)?),)*
                })
            }

            async fn run(self, ctx: &mut Ctx<'_>) -> Reply {
                match self {
                    $(Parsed::$runner(c) => c.run(ctx).await,)*
                }
            }
        }
    };
}

commands! {
    Append => append::Append,
    Auth => auth::Auth,
    Client => client::Client,
    Command => command::Commands,
    Config => config::Config,
    Copy => copy::Copy,
    Dbsize => dbsize::Dbsize,
    Debug => debug::Debug,
    Del => del::Del,
    Discard => discard::Discard,
    Echo => echo::Echo,
    Exec => exec::Exec,
    Exists => exists::Exists,
    Expire => expire::Expire,
    Expiretime => expiretime::Expiretime,
    Flushall => flushall::Flushall,
    Function => function::Function,
    Get => get::Get,
    Getdel => getdel::Getdel,
    Getex => getex::Getex,
    Getrange => getrange::Getrange,
    Getset => getset::Getset,
    Hello => hello::Hello,
    Incr => incr::Incr,
    Incrbyfloat => incrbyfloat::Incrbyfloat,
    Info => info::Info,
    Keys => keys::Keys,
    Mget => mget::Mget,
    Mset => mset::Mset,
    Msetnx => msetnx::Msetnx,
    Multi => multi::Multi,
    Object => object::Object,
    Persist => persist::Persist,
    Ping => ping::Ping,
    Quit => quit::Quit,
    Randomkey => randomkey::Randomkey,
    Rename => rename::Rename,
    Reset => reset::Reset,
    Scan => scan::Scan,
    Select => select::Select,
    Set => set::Set,
    Setex => setex::Setex,
    Setnx => setnx::Setnx,
    Setrange => setrange::Setrange,
    Strlen => strlen::Strlen,
    Time => time::Time,
    Touch => exists::Exists,
    Ttl => ttl::Ttl,
    Type => type_::Type,
    Unwatch => watch::Watch,
    Watch => watch::Watch,
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
