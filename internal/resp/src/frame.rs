//! Requests off the wire: a multibulk array of bulk strings (what clients send) or an inline
//! line (what a person types). Every length is checked as soon as its header arrives, so a
//! client cannot make this server buffer more than the limits allow, whatever it announces.

use bytes::{Buf, Bytes, BytesMut};

/// Most arguments in one command (Redis allows 1024 * 1024 as well).
pub const MAX_ARGS: i64 = 1024 * 1024;
/// Longest inline command or header line.
pub const MAX_LINE: usize = 64 * 1024;
/// Most bytes of arguments in one command (an MSET of many values).
pub const MAX_REQUEST: usize = 256 << 20;

/// What the buffer holds next.
#[derive(Debug, PartialEq)]
pub enum Parsed {
    /// A whole command: its name and arguments.
    Command(Args),
    /// Not all of it has arrived yet.
    Incomplete,
    /// Not RESP, or over a limit: the `Protocol error: …` text; the connection is closed.
    Invalid(String),
}

/// A command's name and arguments, slices of the frame they came in: on the stack for up to
/// four (a GET or a SET allocates nothing for them).
pub type Args = smallvec::SmallVec<[Bytes; 4]>;

/// The line starting at `at`, without its CRLF, and where the next one starts.
fn line(buf: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let mut from = at;
    loop {
        let cr = from + memchr::memchr(b'\r', &buf[from..])?;
        if buf.get(cr + 1) == Some(&b'\n') {
            return Some((&buf[at..cr], cr + 2));
        }
        from = cr + 1;
    }
}

/// A decimal header (`-1`, `42`); `None` for anything else, or past 18 digits.
fn number(digits: &[u8]) -> Option<i64> {
    let (negative, digits) = match digits.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, digits),
    };
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    let mut n = 0i64;
    for d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n * 10 + i64::from(d - b'0');
    }
    Some(if negative { -n } else { n })
}

/// Takes the next command out of `buf`, if it is complete. `max_bulk` bounds one argument.
pub fn next(buf: &mut BytesMut, max_bulk: usize) -> Parsed {
    loop {
        if buf.is_empty() {
            return Parsed::Incomplete;
        }
        if buf[0] != b'*' {
            match inline(buf) {
                Some(p) => return p,
                None => continue,
            }
        }
        let Some((head, mut at)) = line(buf, 0) else {
            return too_long_or_incomplete(buf.len(), "multibulk length");
        };
        let Some(n) = number(&head[1..]) else { return Parsed::Invalid("invalid multibulk length".into()) };
        if n > MAX_ARGS {
            return Parsed::Invalid("invalid multibulk length".into());
        }
        if n <= 0 {
            // An empty multibulk is ignored, as Redis does.
            buf.advance(at);
            continue;
        }
        let mut total = 0usize;
        for _ in 0..n {
            if at >= buf.len() {
                return Parsed::Incomplete;
            }
            if buf[at] != b'$' {
                return Parsed::Invalid(format!("expected '$', got '{}'", buf[at] as char));
            }
            let Some((head, data)) = line(buf, at) else {
                return too_long_or_incomplete(buf.len() - at, "bulk length");
            };
            let len = match number(&head[1..]) {
                Some(l) if l >= 0 && l as usize <= max_bulk => l as usize,
                // Redis's words, and which setting sets the bound.
                Some(l) if l >= 0 => {
                    return Parsed::Invalid(format!(
                        "invalid bulk length ({l} bytes: VALUE_MAX_BYTES allows at most {max_bulk})"
                    ))
                }
                _ => return Parsed::Invalid("invalid bulk length".into()),
            };
            total += len;
            if total > MAX_REQUEST {
                return Parsed::Invalid("request larger than 256 MiB".into());
            }
            at = data + len + 2;
            if at > buf.len() {
                return Parsed::Incomplete;
            }
            // A length that does not match the data would shift every argument after it.
            if &buf[at - 2..at] != b"\r\n" {
                return Parsed::Invalid("bulk data longer than its length".into());
            }
        }
        // Every header was checked above: take the frame and slice its arguments out.
        let frame = buf.split_to(at).freeze();
        let mut args = Args::with_capacity(n as usize);
        let mut at = line(&frame, 0).map_or(0, |(_, next)| next);
        for _ in 0..n {
            let Some((head, data)) = line(&frame, at) else { break };
            let len = number(&head[1..]).unwrap_or(0) as usize;
            args.push(frame.slice(data..data + len));
            at = data + len + 2;
        }
        return Parsed::Command(args);
    }
}

fn too_long_or_incomplete(pending: usize, what: &str) -> Parsed {
    if pending > MAX_LINE {
        Parsed::Invalid(format!("too big {what}"))
    } else {
        Parsed::Incomplete
    }
}

/// An inline command: one line of words separated by blanks (quotes are not interpreted).
/// `None` for a blank line, which is skipped.
fn inline(buf: &mut BytesMut) -> Option<Parsed> {
    let Some(end) = memchr::memchr(b'\n', buf) else {
        return Some(too_long_or_incomplete(buf.len(), "inline request"));
    };
    let line = buf.split_to(end + 1).freeze();
    let args: Args =
        line.split(|b| b.is_ascii_whitespace()).filter(|w| !w.is_empty()).map(|w| line.slice_ref(w)).collect();
    (!args.is_empty()).then_some(Parsed::Command(args))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> (Parsed, usize) {
        let mut b = BytesMut::from(bytes);
        let p = next(&mut b, 1024);
        (p, b.len())
    }

    fn cmd(words: &[&str]) -> Parsed {
        Parsed::Command(words.iter().map(|w| Bytes::copy_from_slice(w.as_bytes())).collect())
    }

    #[test]
    fn a_whole_command_is_taken_and_a_partial_one_waits() {
        assert_eq!(parse(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"), (cmd(&["GET", "k"]), 0));
        assert_eq!(parse(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1"), (cmd(&["GET", "k"]), 2));
        assert_eq!(parse(b"*2\r\n$3\r\nGET\r\n$1\r\n").0, Parsed::Incomplete);
        assert_eq!(parse(b"*2\r\n$3\r\nGE").0, Parsed::Incomplete);
        assert_eq!(parse(b"PING\r\n"), (cmd(&["PING"]), 0));
        assert_eq!(parse(b"set  a   b\n"), (cmd(&["set", "a", "b"]), 0));
        // Binary data, CRLF inside a value, an empty argument.
        assert_eq!(parse(b"*3\r\n$3\r\nSET\r\n$4\r\na\r\nb\r\n$0\r\n\r\n"), (cmd(&["SET", "a\r\nb", ""]), 0));
    }

    #[test]
    fn announced_sizes_over_the_limits_are_refused_before_the_data() {
        // 2 GB announced, nothing sent: refused at once, nothing buffered for it.
        let over =
            |n: u64| Parsed::Invalid(format!("invalid bulk length ({n} bytes: VALUE_MAX_BYTES allows at most 1024)"));
        assert_eq!(parse(b"*1\r\n$2000000000\r\n").0, over(2_000_000_000));
        assert_eq!(parse(b"*1\r\n$1025\r\n").0, over(1025));
        assert_eq!(parse(b"*9999999999\r\n").0, Parsed::Invalid("invalid multibulk length".into()));
        assert_eq!(parse(b"*1\r\n$-5\r\n").0, Parsed::Invalid("invalid bulk length".into()));
        assert_eq!(parse(b"*x\r\n").0, Parsed::Invalid("invalid multibulk length".into()));
        assert_eq!(parse(b"*1\r\n$1x\r\n").0, Parsed::Invalid("invalid bulk length".into()));
        assert_eq!(parse(b"*1\r\n$\r\n").0, Parsed::Invalid("invalid bulk length".into()));
        assert_eq!(parse(b"*1\r\n$1\r\nabc\r\n").0, Parsed::Invalid("bulk data longer than its length".into()));
        assert_eq!(parse(b"*1\r\n:5\r\n").0, Parsed::Invalid("expected '$', got ':'".into()));
        let long = vec![b'a'; MAX_LINE + 10];
        assert!(matches!(parse(&long).0, Parsed::Invalid(_)));
    }
}
