//! What `COMMAND DOCS` tells about each command served (Redis 7's fields: summary, since,
//! group, complexity, arguments), so redis-cli shows argument hints and `help SET` works.
//! One entry per command of [`super::table::COMMANDS`] (a test checks both lists agree), in
//! one list per group of Redis's documentation: `string`, `generic` (keys and expiry) and
//! `server` (connection, server, transactions, scripting).

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

mod generic;
mod server;
mod string;

/// Every command's documentation, by Redis's groups.
fn all() -> impl Iterator<Item = &'static Doc> {
    string::DOCS.iter().chain(generic::DOCS).chain(server::DOCS)
}

/// The documentation of `name` (lowercase).
pub(crate) fn of(name: &str) -> Option<&'static Doc> {
    all().find(|d| d.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_served_is_documented() {
        let mut documented: Vec<&str> = all().map(|d| d.name).collect();
        documented.sort_unstable();
        let served: Vec<&str> = super::super::table::COMMANDS.iter().map(|s| s.name).collect();
        assert_eq!(documented, served, "the DOCS lists must hold exactly the commands of the table, once each");
        for d in all() {
            assert!(!d.summary.is_empty(), "{}: no summary", d.name);
            assert!(!d.since.is_empty(), "{}: no since", d.name);
            assert!(!d.group.is_empty(), "{}: no group", d.name);
        }
        assert_eq!(of("set").map(|d| d.since), Some("1.0.0"));
        assert!(of("no-such-command").is_none());
    }
}
