//! The one table of the commands served: name, arity, flags, key positions and the file that
//! runs it. Dispatch, the NOAUTH rule, the read class that lets a pipeline's reads go to the
//! cluster together, `COMMAND`, `COMMAND COUNT`, `COMMAND LIST` and `COMMAND INFO` all come
//! from it, so they cannot disagree.

/// Which file runs a command (families share one: `TTL`/`PTTL`, the `EXPIRE`s, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Runner {
    Append,
    Auth,
    Client,
    Command,
    Config,
    Copy,
    Dbsize,
    Debug,
    Del,
    Discard,
    Echo,
    Exec,
    Exists,
    Expire,
    Expiretime,
    Flushall,
    Function,
    Get,
    Getdel,
    Getex,
    Getrange,
    Getset,
    Hello,
    Incr,
    Incrbyfloat,
    Info,
    Keys,
    Mget,
    Mset,
    Msetnx,
    Multi,
    Object,
    Persist,
    Ping,
    Quit,
    Randomkey,
    Rename,
    Reset,
    Scan,
    Select,
    Set,
    Setex,
    Setnx,
    Setrange,
    Strlen,
    Time,
    Touch,
    Ttl,
    Type,
    Unwatch,
    Watch,
}

impl Runner {
    /// Runs at once inside `MULTI` instead of being queued (as in Redis).
    pub fn runs_inside_multi(self) -> bool {
        matches!(self, Runner::Exec | Runner::Discard | Runner::Multi | Runner::Watch | Runner::Quit | Runner::Reset)
    }
}

/// One command as `COMMAND INFO` describes it.
#[derive(Debug)]
pub(crate) struct Spec {
    /// Lowercase, as Redis lists it.
    pub name: &'static str,
    /// Redis's rule: n exactly, -n at least n, counting the name.
    pub arity: i32,
    /// Redis's command flags.
    pub flags: &'static [&'static str],
    /// Position of the first key (0: none), of the last (-1: the last argument) and the step.
    pub keys: (i32, i32, i32),
    /// The file that runs it.
    pub runner: Runner,
}

impl Spec {
    /// Served before `AUTH` when a client password is set.
    pub fn no_auth(&self) -> bool {
        self.flags.contains(&"no-auth")
    }

    /// Reads keys and writes nothing: a run of these in a pipeline goes to the cluster at once.
    pub fn reads_keys(&self) -> bool {
        self.flags.contains(&"readonly") && self.keys.0 > 0
    }
}

const READ: &[&str] = &["readonly", "fast"];
const READ_SLOW: &[&str] = &["readonly"];
const WRITE: &[&str] = &["write", "fast"];
const WRITE_SLOW: &[&str] = &["write"];
const GROW: &[&str] = &["write", "denyoom", "fast"];
const GROW_SLOW: &[&str] = &["write", "denyoom"];
const CONNECTION: &[&str] = &["noscript", "loading", "stale", "fast", "no-auth", "allow-busy"];
const SERVER: &[&str] = &["loading", "stale"];
const SERVER_FAST: &[&str] = &["loading", "stale", "fast"];
const FAST: &[&str] = &["fast"];
const TRANSACTION: &[&str] = &["noscript", "loading", "stale", "fast", "allow-busy"];
const ADMIN: &[&str] = &["admin", "noscript", "loading", "stale"];

const NONE: (i32, i32, i32) = (0, 0, 0);
const ONE: (i32, i32, i32) = (1, 1, 1);
const ALL: (i32, i32, i32) = (1, -1, 1);

const fn spec(
    name: &'static str,
    arity: i32,
    flags: &'static [&'static str],
    keys: (i32, i32, i32),
    runner: Runner,
) -> Spec {
    Spec { name, arity, flags, keys, runner }
}

/// Every command served, sorted by name (a test checks it; [`lookup`] searches it).
pub(crate) const COMMANDS: &[Spec] = &[
    spec("append", 3, GROW, ONE, Runner::Append),
    spec("auth", -2, CONNECTION, NONE, Runner::Auth),
    spec("client", -2, SERVER, NONE, Runner::Client),
    spec("command", -1, SERVER, NONE, Runner::Command),
    spec("config", -2, ADMIN, NONE, Runner::Config),
    spec("copy", -3, GROW_SLOW, (1, 2, 1), Runner::Copy),
    spec("dbsize", 1, READ, NONE, Runner::Dbsize),
    spec("debug", -2, ADMIN, NONE, Runner::Debug),
    spec("decr", 2, GROW, ONE, Runner::Incr),
    spec("decrby", 3, GROW, ONE, Runner::Incr),
    spec("del", -2, WRITE_SLOW, ALL, Runner::Del),
    spec("discard", 1, TRANSACTION, NONE, Runner::Discard),
    spec("echo", 2, FAST, NONE, Runner::Echo),
    spec("exec", 1, &["noscript", "loading", "stale", "skip-slowlog"], NONE, Runner::Exec),
    spec("exists", -2, READ, ALL, Runner::Exists),
    spec("expire", 3, WRITE, ONE, Runner::Expire),
    spec("expireat", 3, WRITE, ONE, Runner::Expire),
    spec("expiretime", 2, READ, ONE, Runner::Expiretime),
    spec("flushall", -1, WRITE_SLOW, NONE, Runner::Flushall),
    spec("flushdb", -1, WRITE_SLOW, NONE, Runner::Flushall),
    spec("function", -2, SERVER, NONE, Runner::Function),
    spec("get", 2, READ, ONE, Runner::Get),
    spec("getdel", 2, WRITE, ONE, Runner::Getdel),
    spec("getex", -2, WRITE, ONE, Runner::Getex),
    spec("getrange", 4, READ_SLOW, ONE, Runner::Getrange),
    spec("getset", 3, GROW, ONE, Runner::Getset),
    spec("hello", -1, CONNECTION, NONE, Runner::Hello),
    spec("incr", 2, GROW, ONE, Runner::Incr),
    spec("incrby", 3, GROW, ONE, Runner::Incr),
    spec("incrbyfloat", 3, GROW, ONE, Runner::Incrbyfloat),
    spec("info", -1, SERVER, NONE, Runner::Info),
    spec("keys", 2, READ_SLOW, NONE, Runner::Keys),
    spec("mget", -2, READ, ALL, Runner::Mget),
    spec("mset", -3, GROW_SLOW, (1, -1, 2), Runner::Mset),
    spec("msetnx", -3, GROW_SLOW, (1, -1, 2), Runner::Msetnx),
    spec("multi", 1, TRANSACTION, NONE, Runner::Multi),
    spec("object", -2, &["slow"], (2, 2, 1), Runner::Object),
    spec("persist", 2, WRITE, ONE, Runner::Persist),
    spec("pexpire", 3, WRITE, ONE, Runner::Expire),
    spec("pexpireat", 3, WRITE, ONE, Runner::Expire),
    spec("pexpiretime", 2, READ, ONE, Runner::Expiretime),
    spec("ping", -1, FAST, NONE, Runner::Ping),
    spec("psetex", 4, GROW_SLOW, ONE, Runner::Setex),
    spec("pttl", 2, READ, ONE, Runner::Ttl),
    spec("quit", -1, CONNECTION, NONE, Runner::Quit),
    spec("randomkey", 1, READ_SLOW, NONE, Runner::Randomkey),
    spec("rename", 3, WRITE_SLOW, (1, 2, 1), Runner::Rename),
    spec("renamenx", 3, WRITE, (1, 2, 1), Runner::Rename),
    spec("reset", 1, CONNECTION, NONE, Runner::Reset),
    spec("scan", -2, READ_SLOW, NONE, Runner::Scan),
    spec("select", 2, SERVER_FAST, NONE, Runner::Select),
    spec("set", -3, GROW_SLOW, ONE, Runner::Set),
    spec("setex", 4, GROW_SLOW, ONE, Runner::Setex),
    spec("setnx", 3, GROW, ONE, Runner::Setnx),
    spec("setrange", 4, GROW_SLOW, ONE, Runner::Setrange),
    spec("strlen", 2, READ, ONE, Runner::Strlen),
    spec("time", 1, SERVER_FAST, NONE, Runner::Time),
    spec("touch", -2, READ, ALL, Runner::Touch),
    spec("ttl", 2, READ, ONE, Runner::Ttl),
    spec("type", 2, READ, ONE, Runner::Type),
    spec("unlink", -2, WRITE, ALL, Runner::Del),
    spec("unwatch", 1, TRANSACTION, NONE, Runner::Unwatch),
    spec("watch", -2, TRANSACTION, ALL, Runner::Watch),
];

/// The command named `name`, in any case; no allocation.
pub(crate) fn lookup(name: &[u8]) -> Option<&'static Spec> {
    // Lowered once on the stack, so the search compares plain bytes.
    let mut lower = [0u8; 16];
    let lower = lower.get_mut(..name.len())?;
    for (l, c) in lower.iter_mut().zip(name) {
        *l = c.to_ascii_lowercase();
    }
    COMMANDS.binary_search_by(|s| s.name.as_bytes().cmp(lower)).ok().map(|i| &COMMANDS[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_and_found_in_any_case() {
        assert!(COMMANDS.windows(2).all(|w| w[0].name < w[1].name), "COMMANDS must stay sorted by name");
        for s in COMMANDS {
            assert_eq!(lookup(s.name.to_uppercase().as_bytes()).map(|f| f.name), Some(s.name));
            assert!(s.flags.iter().all(|f| !f.is_empty()));
            assert!(s.arity != 0, "{}", s.name);
        }
        assert!(lookup(b"nosuch").is_none());
        assert!(lookup(b"").is_none());
        assert!(lookup(b"a-name-longer-than-any-command").is_none());
    }

    #[test]
    fn the_read_class_is_the_key_reading_commands() {
        let reads: Vec<&str> = COMMANDS.iter().filter(|s| s.reads_keys()).map(|s| s.name).collect();
        assert_eq!(
            reads,
            [
                "exists",
                "expiretime",
                "get",
                "getrange",
                "mget",
                "pexpiretime",
                "pttl",
                "strlen",
                "touch",
                "ttl",
                "type"
            ]
        );
        let open: Vec<&str> = COMMANDS.iter().filter(|s| s.no_auth()).map(|s| s.name).collect();
        assert_eq!(open, ["auth", "hello", "quit", "reset"]);
    }
}
