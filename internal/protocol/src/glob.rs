//! Redis's glob patterns (`SCAN … MATCH`, `KEYS`, `CONFIG GET`), matched the same way by
//! every role.

/// Redis's glob: `*`, `?`, `[abc]`, `[^a-z]`, and `\\` to escape. Iterative, backtracking only
/// to the last `*`: linear in the key times the pattern, whatever a client sends in `MATCH`.
pub fn matches(pattern: &[u8], s: &[u8]) -> bool {
    let (mut p, mut i) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            p += 1;
            star = Some((p, i));
            continue;
        }
        if let Some(len) = one(&pattern[p..], s[i]) {
            p += len;
            i += 1;
            continue;
        }
        match star {
            // Let the last `*` take one more byte and try again from there.
            Some((sp, si)) => {
                p = sp;
                i = si + 1;
                star = Some((sp, si + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|b| *b == b'*')
}

/// Whether the pattern's first token (not `*`) matches byte `c`; the token's length if so.
fn one(pattern: &[u8], c: u8) -> Option<usize> {
    match pattern {
        [] => None,
        [b'?', ..] => Some(1),
        [b'\\', x, ..] => (*x == c).then_some(2),
        [b'[', rest @ ..] => {
            let (negate, start) = if rest.first() == Some(&b'^') { (true, 2) } else { (false, 1) };
            let mut k = start;
            let mut matched = false;
            loop {
                match &pattern[k..] {
                    [] => return None,
                    [b']', ..] => return (matched != negate).then_some(k + 1),
                    [b'\\', x, ..] => {
                        matched |= *x == c;
                        k += 2;
                    }
                    [lo, b'-', hi, ..] if *hi != b']' => {
                        matched |= (*lo.min(hi)..=*lo.max(hi)).contains(&c);
                        k += 3;
                    }
                    [x, ..] => {
                        matched |= *x == c;
                        k += 1;
                    }
                }
            }
        }
        [x, ..] => (*x == c).then_some(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_redis() {
        for (p, s, want) in [
            ("*", "anything", true),
            ("user:*", "user:42", true),
            ("user:*", "session:1", false),
            ("h?llo", "hello", true),
            ("h?llo", "hllo", false),
            ("h[ae]llo", "hallo", true),
            ("h[^e]llo", "hello", false),
            ("h[a-c]llo", "hbllo", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "axb", false),
            ("*:*:x", "a:b:x", true),
            ("", "", true),
            ("", "a", false),
            ("a*", "a", true),
            ("*a", "ba", true),
            ("[", "a", false),
        ] {
            assert_eq!(matches(p.as_bytes(), s.as_bytes()), want, "{p} ~ {s}");
        }
    }

    #[test]
    fn a_hostile_pattern_is_not_exponential() {
        let pattern = [b"*a".repeat(30), b"*b".to_vec()].concat();
        let key = vec![b'a'; 1024];
        let started = std::time::Instant::now();
        assert!(!matches(&pattern, &key));
        assert!(started.elapsed() < std::time::Duration::from_millis(500), "{:?}", started.elapsed());
    }
}
