//! What `COMMAND DOCS` tells about each command served (Redis 7's fields: summary, since,
//! group, complexity, arguments), so redis-cli shows argument hints and `help SET` works.
//! One entry per command of [`super::table::COMMANDS`] (a test checks both lists agree).

/// The type of an argument, as Redis names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    String,
    Integer,
    Double,
    Key,
    Pattern,
    UnixTime,
    /// A fixed word such as `NX`: the argument's `token` is the word.
    PureToken,
    /// One of the nested arguments.
    Oneof(&'static [Arg]),
    /// The nested arguments in sequence.
    Block(&'static [Arg]),
}

/// One argument of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Arg {
    pub name: &'static str,
    pub kind: Kind,
    /// The word that introduces it (`EX` for `EX seconds`), if any.
    pub token: Option<&'static str>,
    pub optional: bool,
    pub multiple: bool,
}

/// The documentation of one command.
#[derive(Debug)]
pub(crate) struct Doc {
    /// Lowercase, as in the table.
    pub name: &'static str,
    pub summary: &'static str,
    pub since: &'static str,
    /// Redis's group: `string`, `generic`, `connection`, `server`, `scripting`, ...
    pub group: &'static str,
    pub complexity: &'static str,
    pub args: &'static [Arg],
}

/// A required argument.
pub(crate) const fn arg(name: &'static str, kind: Kind) -> Arg {
    Arg { name, kind, token: None, optional: false, multiple: false }
}

/// An optional argument.
pub(crate) const fn opt(name: &'static str, kind: Kind) -> Arg {
    Arg { name, kind, token: None, optional: true, multiple: false }
}

/// A required argument that may repeat.
pub(crate) const fn many(name: &'static str, kind: Kind) -> Arg {
    Arg { name, kind, token: None, optional: false, multiple: true }
}

/// A word on its own (`NX`), as Redis lists it: name and token are the word, lowercased name.
pub(crate) const fn word(name: &'static str, token: &'static str) -> Arg {
    Arg { name, kind: Kind::PureToken, token: Some(token), optional: false, multiple: false }
}

/// A word followed by a value (`EX seconds`).
pub(crate) const fn tagged(name: &'static str, kind: Kind, token: &'static str) -> Arg {
    Arg { name, kind, token: Some(token), optional: false, multiple: false }
}

impl Arg {
    /// The same argument, optional.
    pub(crate) const fn optional(self) -> Arg {
        Arg { optional: true, ..self }
    }
}

/// The `NX | XX | GT | LT` of the four EXPIRE commands.
const EXPIRE_CONDITION: Arg =
    opt("condition", Kind::Oneof(&[word("nx", "NX"), word("xx", "XX"), word("gt", "GT"), word("lt", "LT")]));

/// Every command's documentation, sorted by name like the table.
pub(crate) const DOCS: &[Doc] = &[
    Doc {
        name: "append",
        summary: "Appends a string to the value of a key. Creates the key if it doesn't exist.",
        since: "2.0.0",
        group: "string",
        complexity: "O(1). The amortized time complexity is O(1) assuming the appended value is small and the \
            already present value is of any size, since the dynamic string library used by Redis will double the \
            free space available on every reallocation.",
        args: &[arg("key", Kind::Key), arg("value", Kind::String)],
    },
    Doc {
        name: "auth",
        summary: "Authenticates the connection.",
        since: "1.0.0",
        group: "connection",
        complexity: "O(N) where N is the number of passwords defined for the user",
        args: &[opt("username", Kind::String), arg("password", Kind::String)],
    },
    Doc {
        name: "client",
        summary: "A container for client connection commands.",
        since: "2.4.0",
        group: "connection",
        complexity: "Depends on subcommand.",
        args: &[],
    },
    Doc {
        name: "command",
        summary: "Returns detailed information about all commands.",
        since: "2.8.13",
        group: "server",
        complexity: "O(N) where N is the total number of Redis commands",
        args: &[],
    },
    Doc {
        name: "config",
        summary: "A container for server configuration commands.",
        since: "2.0.0",
        group: "server",
        complexity: "Depends on subcommand.",
        args: &[],
    },
    Doc {
        name: "copy",
        summary: "Copies the value of a key to a new key.",
        since: "6.2.0",
        group: "generic",
        complexity: "O(N) worst case for collections, where N is the number of nested items. O(1) for string values.",
        args: &[
            arg("source", Kind::Key),
            arg("destination", Kind::Key),
            tagged("destination-db", Kind::Integer, "DB").optional(),
            word("replace", "REPLACE").optional(),
        ],
    },
    Doc {
        name: "dbsize",
        summary: "Returns the number of keys in the database.",
        since: "1.0.0",
        group: "server",
        complexity: "O(1)",
        args: &[],
    },
    Doc {
        name: "debug",
        summary: "A container for debugging commands.",
        since: "1.0.0",
        group: "server",
        complexity: "Depends on subcommand.",
        args: &[],
    },
    Doc {
        name: "decr",
        summary: "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.",
        since: "1.0.0",
        group: "string",
        complexity: "O(1)",
        args: &[arg("key", Kind::Key)],
    },
    Doc {
        name: "decrby",
        summary: "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't \
            exist.",
        since: "1.0.0",
        group: "string",
        complexity: "O(1)",
        args: &[arg("key", Kind::Key), arg("decrement", Kind::Integer)],
    },
    Doc {
        name: "del",
        summary: "Deletes one or more keys.",
        since: "1.0.0",
        group: "generic",
        complexity: "O(N) where N is the number of keys that will be removed. When a key to remove holds a value \
            other than a string, the individual complexity for this key is O(M) where M is the number of elements in \
            the list, set, sorted set or hash. Removing a single key that holds a string value is O(1).",
        args: &[many("key", Kind::Key)],
    },
    Doc {
        name: "discard",
        summary: "Discards a transaction.",
        since: "2.0.0",
        group: "transactions",
        complexity: "O(N), when N is the number of queued commands",
        args: &[],
    },
    Doc {
        name: "echo",
        summary: "Returns the given string.",
        since: "1.0.0",
        group: "connection",
        complexity: "O(1)",
        args: &[arg("message", Kind::String)],
    },
    Doc {
        name: "exec",
        summary: "Executes all commands in a transaction.",
        since: "1.2.0",
        group: "transactions",
        complexity: "Depends on commands in the transaction",
        args: &[],
    },
    Doc {
        name: "exists",
        summary: "Determines whether one or more keys exist.",
        since: "1.0.0",
        group: "generic",
        complexity: "O(N) where N is the number of keys to check.",
        args: &[many("key", Kind::Key)],
    },
    Doc {
        name: "expire",
        summary: "Sets the expiration time of a key in seconds.",
        since: "1.0.0",
        group: "generic",
        complexity: "O(1)",
        args: &[arg("key", Kind::Key), arg("seconds", Kind::Integer), EXPIRE_CONDITION],
    },
    Doc {
        name: "expireat",
        summary: "Sets the expiration time of a key to a Unix timestamp.",
        since: "1.2.0",
        group: "generic",
        complexity: "O(1)",
        args: &[arg("key", Kind::Key), arg("unix-time-seconds", Kind::UnixTime), EXPIRE_CONDITION],
    },
    Doc {
        name: "expiretime",
        summary: "Returns the expiration time of a key as a Unix timestamp.",
        since: "7.0.0",
        group: "generic",
        complexity: "O(1)",
        args: &[arg("key", Kind::Key)],
    },
    Doc {
        name: "flushall",
        summary: "Removes all keys from all databases.",
        since: "1.0.0",
        group: "server",
        complexity: "O(N) where N is the total number of keys in all databases",
        args: &[opt("flush-type", Kind::Oneof(&[word("async", "ASYNC"), word("sync", "SYNC")]))],
    },
    Doc {
        name: "flushdb",
        summary: "Remove all keys from the current database.",
        since: "1.0.0",
        group: "server",
        complexity: "O(N) where N is the number of keys in the selected database",
        args: &[opt("flush-type", Kind::Oneof(&[word("async", "ASYNC"), word("sync", "SYNC")]))],
    },
    Doc {
        name: "function",
        summary: "A container for function commands.",
        since: "7.0.0",
        group: "scripting",
        complexity: "Depends on subcommand.",
        args: &[],
    },
    Doc {
        name: "get",
        summary: "Returns the string value of a key.",
        since: "1.0.0",
        group: "string",
        complexity: "O(1)",
        args: &[arg("key", Kind::Key)],
    },
    Doc {
        name: "getdel",
        summary: "Returns the string value of a key after deleting the key.",
        since: "6.2.0",
        group: "string",
        complexity: "O(1)",
        args: &[arg("key", Kind::Key)],
    },
    Doc {
        name: "getex",
        summary: "Returns the string value of a key after setting its expiration time.",
        since: "6.2.0",
        group: "string",
        complexity: "O(1)",
        args: &[
            arg("key", Kind::Key),
            opt(
                "expiration",
                Kind::Oneof(&[
                    tagged("seconds", Kind::Integer, "EX"),
                    tagged("milliseconds", Kind::Integer, "PX"),
                    tagged("unix-time-seconds", Kind::UnixTime, "EXAT"),
                    tagged("unix-time-milliseconds", Kind::UnixTime, "PXAT"),
                    word("persist", "PERSIST"),
                ]),
            ),
        ],
    },
    Doc {
        name: "getrange",
        summary: "Returns a substring of the string stored at a key.",
        since: "2.4.0",
        group: "string",
        complexity: "O(N) where N is the length of the returned string. The complexity is ultimately determined by \
                     the returned length, but because creating a substring from an existing string is very cheap, it \
                     can be considered O(1) for small strings.",
        args: &[arg("key", Kind::Key), arg("start", Kind::Integer), arg("end", Kind::Integer)],
    },
    Doc {
        name: "getset",
        summary: "Returns the previous string value of a key after setting it to a new value.",
        since: "1.0.0",
        group: "string",
        complexity: "O(1)",
        args: &[arg("key", Kind::Key), arg("value", Kind::String)],
    },
    Doc {
        name: "hello",
        summary: "Handshakes with the Redis server.",
        since: "6.0.0",
        group: "connection",
        complexity: "O(1)",
        args: &[opt(
            "arguments",
            Kind::Block(&[
                arg("protover", Kind::Integer),
                tagged("auth", Kind::Block(&[arg("username", Kind::String), arg("password", Kind::String)]), "AUTH")
                    .optional(),
                tagged("clientname", Kind::String, "SETNAME").optional(),
            ]),
        )],
    },
    Doc {
        name: "incr",
        summary: "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.",
        since: "1.0.0",
        group: "string",
        complexity: "O(1)",
        args: &[arg("key", Kind::Key)],
    },
    Doc {
        name: "incrby",
        summary: "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't \
            exist.",
        since: "1.0.0",
        group: "string",
        complexity: "O(1)",
        args: &[arg("key", Kind::Key), arg("increment", Kind::Integer)],
    },
    Doc {
        name: "incrbyfloat",
        summary: "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist.",
        since: "2.6.0",
        group: "string",
        complexity: "O(1)",
        args: &[arg("key", Kind::Key), arg("increment", Kind::Double)],
    },
    Doc {
        name: "info",
        summary: "Returns information and statistics about the server.",
        since: "1.0.0",
        group: "server",
        complexity: "O(1)",
        args: &[many("section", Kind::String).optional()],
    },
    Doc {
        name: "keys",
        summary: "Returns all key names that match a pattern.",
        since: "1.0.0",
        group: "generic",
        complexity: "O(N) with N being the number of keys in the database, under the assumption that the key names \
            in the database and the given pattern have limited length.",
        args: &[arg("pattern", Kind::Pattern)],
    },
    Doc {
        name: "mget",
        summary: "Atomically returns the string values of one or more keys.",
        since: "1.0.0",
        group: "string",
        complexity: "O(N) where N is the number of keys to retrieve.",
        args: &[many("key", Kind::Key)],
    },
    Doc {
        name: "mset",
        summary: "Atomically creates or modifies the string values of one or more keys.",
        since: "1.0.1",
        group: "string",
        complexity: "O(N) where N is the number of keys to set.",
        args: &[many("data", Kind::Block(&[arg("key", Kind::Key), arg("value", Kind::String)]))],
    },
    Doc {
        name: "msetnx",
        summary: "Atomically modifies the string values of one or more keys only when all keys don't exist.",
        since: "1.0.1",
        group: "string",
        complexity: "O(N) where N is the number of keys to set.",
        args: &[many("data", Kind::Block(&[arg("key", Kind::Key), arg("value", Kind::String)]))],
    },
    Doc {
        name: "multi",
        summary: "Starts a transaction.",
        since: "1.2.0",
        group: "transactions",
        complexity: "O(1)",
        args: &[],
    },
    Doc {
        name: "object",
        summary: "A container for object introspection commands.",
        since: "2.2.3",
        group: "generic",
        complexity: "Depends on subcommand.",
        args: &[],
    },
    Doc {
        name: "persist",
        summary: "Removes the expiration time of a key.",
        since: "2.2.0",
        group: "generic",
        complexity: "O(1)",
        args: &[arg("key", Kind::Key)],
    },
    Doc {
        name: "pexpire",
        summary: "Sets the expiration time of a key in milliseconds.",
        since: "2.6.0",
        group: "generic",
        complexity: "O(1)",
        args: &[arg("key", Kind::Key), arg("milliseconds", Kind::Integer), EXPIRE_CONDITION],
    },
    Doc {
        name: "pexpireat",
        summary: "Sets the expiration time of a key to a Unix milliseconds timestamp.",
        since: "2.6.0",
        group: "generic",
        complexity: "O(1)",
        args: &[arg("key", Kind::Key), arg("unix-time-milliseconds", Kind::UnixTime), EXPIRE_CONDITION],
    },
    Doc {
        name: "pexpiretime",
        summary: "Returns the expiration time of a key as a Unix milliseconds timestamp.",
        since: "7.0.0",
        group: "generic",
        complexity: "O(1)",
        args: &[arg("key", Kind::Key)],
    },
    Doc {
        name: "ping",
        summary: "Returns the server's liveliness response.",
        since: "1.0.0",
        group: "connection",
        complexity: "O(1)",
        args: &[opt("message", Kind::String)],
    },
    Doc {
        name: "psetex",
        summary: "Sets both string value and expiration time in milliseconds of a key. The key is created if it \
            doesn't exist.",
        since: "2.6.0",
        group: "string",
        complexity: "O(1)",
        args: &[arg("key", Kind::Key), arg("milliseconds", Kind::Integer), arg("value", Kind::String)],
    },
    Doc {
        name: "pttl",
        summary: "Returns the expiration time in milliseconds of a key.",
        since: "2.6.0",
        group: "generic",
        complexity: "O(1)",
        args: &[arg("key", Kind::Key)],
    },
    Doc {
        name: "quit",
        summary: "Closes the connection.",
        since: "1.0.0",
        group: "connection",
        complexity: "O(1)",
        args: &[],
    },
    Doc {
        name: "randomkey",
        summary: "Returns a random key name from the database.",
        since: "1.0.0",
        group: "generic",
        complexity: "O(1)",
        args: &[],
    },
    Doc {
        name: "rename",
        summary: "Renames a key and overwrites the destination.",
        since: "1.0.0",
        group: "generic",
        complexity: "O(1)",
        args: &[arg("key", Kind::Key), arg("newkey", Kind::Key)],
    },
    Doc {
        name: "renamenx",
        summary: "Renames a key only when the target key name doesn't exist.",
        since: "1.0.0",
        group: "generic",
        complexity: "O(1)",
        args: &[arg("key", Kind::Key), arg("newkey", Kind::Key)],
    },
    Doc {
        name: "reset",
        summary: "Resets the connection.",
        since: "6.2.0",
        group: "connection",
        complexity: "O(1)",
        args: &[],
    },
    Doc {
        name: "scan",
        summary: "Iterates over the key names in the database.",
        since: "2.8.0",
        group: "generic",
        complexity: "O(1) for every call. O(N) for a complete iteration, including enough command calls for the \
            cursor to return back to 0. N is the number of elements inside the collection.",
        args: &[
            arg("cursor", Kind::Integer),
            tagged("pattern", Kind::Pattern, "MATCH").optional(),
            tagged("count", Kind::Integer, "COUNT").optional(),
            tagged("type", Kind::String, "TYPE").optional(),
        ],
    },
    Doc {
        name: "select",
        summary: "Changes the selected database.",
        since: "1.0.0",
        group: "connection",
        complexity: "O(1)",
        args: &[arg("index", Kind::Integer)],
    },
    Doc {
        name: "set",
        summary: "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.",
        since: "1.0.0",
        group: "string",
        complexity: "O(1)",
        args: &[
            arg("key", Kind::Key),
            arg("value", Kind::String),
            opt("condition", Kind::Oneof(&[word("nx", "NX"), word("xx", "XX")])),
            word("get", "GET").optional(),
            opt(
                "expiration",
                Kind::Oneof(&[
                    tagged("seconds", Kind::Integer, "EX"),
                    tagged("milliseconds", Kind::Integer, "PX"),
                    tagged("unix-time-seconds", Kind::UnixTime, "EXAT"),
                    tagged("unix-time-milliseconds", Kind::UnixTime, "PXAT"),
                    word("keepttl", "KEEPTTL"),
                ]),
            ),
        ],
    },
    Doc {
        name: "setex",
        summary: "Sets the string value and expiration time of a key. Creates the key if it doesn't exist.",
        since: "2.0.0",
        group: "string",
        complexity: "O(1)",
        args: &[arg("key", Kind::Key), arg("seconds", Kind::Integer), arg("value", Kind::String)],
    },
    Doc {
        name: "setnx",
        summary: "Set the string value of a key only when the key doesn't exist.",
        since: "1.0.0",
        group: "string",
        complexity: "O(1)",
        args: &[arg("key", Kind::Key), arg("value", Kind::String)],
    },
    Doc {
        name: "setrange",
        summary: "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.",
        since: "2.2.0",
        group: "string",
        complexity: "O(1), not counting the time taken to copy the new string in place. Usually, this string is very small so the amortized complexity is O(1). Otherwise, complexity is O(M) with M being the length of the value argument.",
        args: &[arg("key", Kind::Key), arg("offset", Kind::Integer), arg("value", Kind::String)],
    },
    Doc {
        name: "strlen",
        summary: "Returns the length of a string value.",
        since: "2.2.0",
        group: "string",
        complexity: "O(1)",
        args: &[arg("key", Kind::Key)],
    },
    Doc {
        name: "time",
        summary: "Returns the server time.",
        since: "2.6.0",
        group: "server",
        complexity: "O(1)",
        args: &[],
    },
    Doc {
        name: "touch",
        summary: "Returns the number of existing keys out of those specified after updating the time they were last \
            accessed.",
        since: "3.2.1",
        group: "generic",
        complexity: "O(N) where N is the number of keys that will be touched.",
        args: &[many("key", Kind::Key)],
    },
    Doc {
        name: "ttl",
        summary: "Returns the expiration time in seconds of a key.",
        since: "1.0.0",
        group: "generic",
        complexity: "O(1)",
        args: &[arg("key", Kind::Key)],
    },
    Doc {
        name: "type",
        summary: "Determines the type of value stored at a key.",
        since: "1.0.0",
        group: "generic",
        complexity: "O(1)",
        args: &[arg("key", Kind::Key)],
    },
    Doc {
        name: "unlink",
        summary: "Asynchronously deletes one or more keys.",
        since: "4.0.0",
        group: "generic",
        complexity: "O(1) for each key removed regardless of its size. Then the command does O(N) work in a \
            different thread in order to reclaim memory, where N is the number of allocations the deleted objects \
            where composed of.",
        args: &[many("key", Kind::Key)],
    },
    Doc {
        name: "unwatch",
        summary: "Forgets about watched keys of a transaction.",
        since: "2.2.0",
        group: "transactions",
        complexity: "O(1)",
        args: &[],
    },
    Doc {
        name: "watch",
        summary: "Monitors changes to keys to determine the execution of a transaction.",
        since: "2.2.0",
        group: "transactions",
        complexity: "O(1) for every key.",
        args: &[many("key", Kind::Key)],
    },
];

/// The documentation of `name` (lowercase).
pub(crate) fn of(name: &str) -> Option<&'static Doc> {
    DOCS.iter().find(|d| d.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_served_is_documented() {
        let documented: Vec<&str> = DOCS.iter().map(|d| d.name).collect();
        let served: Vec<&str> = super::super::table::COMMANDS.iter().map(|s| s.name).collect();
        assert_eq!(documented, served, "DOCS must list exactly the commands of the table, in its order");
        for d in DOCS {
            assert!(!d.summary.is_empty(), "{}: no summary", d.name);
            assert!(!d.since.is_empty(), "{}: no since", d.name);
            assert!(!d.group.is_empty(), "{}: no group", d.name);
        }
        assert_eq!(of("set").map(|d| d.since), Some("1.0.0"));
        assert!(of("no-such-command").is_none());
    }
}
