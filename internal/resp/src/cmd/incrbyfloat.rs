//! INCRBYFLOAT key increment: the value as a float (absent = 0) plus the increment, written
//! back as Redis writes it (the shortest decimal that reads back the same, no exponent), as
//! one step on the key's primary; the expiry is kept.

use super::{bulk, err, exec, read, write, Ctx, Reply};
use bytes::Bytes;

fn float(b: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(b).ok()?;
    // Redis refuses spaces and the words nan / inf that Rust would read.
    if s.is_empty() || s.trim() != s || s.to_ascii_lowercase().contains("nan") {
        return None;
    }
    s.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// How Redis writes a float result: plain digits, no exponent, no trailing zeros.
pub(super) fn format(f: f64) -> String {
    let s = format!("{f}");
    if s.contains('e') || s.contains('E') {
        format!("{f:.17}").trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

pub(super) struct Incrbyfloat {
    /// The frame, to run it as a transaction of its own.
    args: Vec<Bytes>,
    by: f64,
}

impl Incrbyfloat {
    pub(super) fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        let by = float(&args[2]).ok_or_else(|| err("value is not a valid float"))?;
        Ok(Incrbyfloat { args: args.to_vec(), by })
    }

    pub(super) async fn run(self, ctx: &mut Ctx<'_>) -> Reply {
        if let Some(reply) = exec::alone(ctx, &self.args).await {
            return reply;
        }
        let (key, by) = (&self.args[1], self.by);
        let add = async {
            let (now, ttl_ms) = match read(ctx, key).await? {
                None => (0.0, 0),
                Some((v, ttl_ms)) => match float(&v) {
                    Some(f) => (f, ttl_ms),
                    None => return Ok(err("value is not a valid float")),
                },
            };
            let next = now + by;
            if !next.is_finite() {
                return Ok(err("increment would produce NaN or Infinity"));
            }
            let text = Bytes::from(format(next));
            write(ctx, key, text.clone(), ttl_ms).await?;
            Ok(bulk(text))
        };
        add.await.unwrap_or_else(|e| e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_read_and_written_as_redis_does() {
        assert_eq!(format(10.5 + 0.1), "10.6");
        assert_eq!(format(5.0e3 + 2.0e2), "5200");
        assert_eq!(format(-0.5), "-0.5");
        assert_eq!(float(b"5.0e3"), Some(5000.0));
        assert_eq!(float(b" 1"), None);
        assert_eq!(float(b"nan"), None);
        assert_eq!(float(b"inf"), None);
        assert_eq!(float(b"abc"), None);
    }
}
