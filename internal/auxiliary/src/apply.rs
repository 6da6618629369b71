//! Read-modify-write operations (conditional SET, INCRBY, APPEND, GETDEL, EXPIRE) run as one
//! step on the key's primary owner, under its shard lock. The master replicates the entry
//! written (an expiry change: `Request::SetExpiry`).

use bytes::Bytes;
use tiercache_protocol::step::{step, Expiry, Outcome};
use tiercache_protocol::{Expect, Found, Op, RemoteError, Response, WireEntry};
use tiercache_store::{Entry, Store};

/// Runs `op` on `key`; a write gets a version above `version` and above the stored one.
pub fn apply(store: &Store, key: &[u8], op: &Op, version: u64) -> Response {
    let now = store.now_ms();
    if let Op::Expire { ttl_ms } = op {
        // No new version: see `Store::set_expiry`.
        return match store.set_expiry(key, *ttl_ms, None) {
            None => Response::Updated { previous: None, written: None },
            Some((e, changed)) => Response::Updated {
                previous: e.value.clone(),
                written: changed.then(|| Found {
                    ttl_ms: e.remaining_ttl_ms(now),
                    value: e.value,
                    version: e.version,
                    expiry_seq: e.expiry_seq,
                }),
            },
        };
    }
    let result = store.update(key, |current| {
        let next_version = version.max(current.as_ref().map_or(0, |e| e.version) + 1);
        let live = current.filter(|e| e.value.is_some());
        let previous = live.as_ref().and_then(|e| e.value.clone());
        let kept_expiry = live.as_ref().map_or(0, |e| e.expires_at_ms);
        let write = |value: Option<Bytes>, expires_at_ms: u64| Entry {
            value,
            version: next_version,
            expires_at_ms,
            expiry_seq: 0,
        };
        let outcome: Result<Option<Entry>, RemoteError> = step(op, previous.as_deref()).map(|o| match o {
            Outcome::Write { value, expiry: Expiry::Keep } => Some(write(Some(value), kept_expiry)),
            Outcome::Write { value, expiry: Expiry::InMs(ms) } => Some(write(Some(value), store.expires_at(ms))),
            Outcome::Delete => Some(write(None, store.tombstone_expires_at())),
            // Expiry changes are handled above, without a new version.
            Outcome::Unchanged | Outcome::SetExpiry { .. } => None,
        });
        match outcome {
            Ok(entry) => {
                let written = entry.as_ref().map(|e| Found {
                    value: e.value.clone(),
                    version: e.version,
                    ttl_ms: e.remaining_ttl_ms(now),
                    expiry_seq: e.expiry_seq,
                });
                (entry, Ok((previous, written)))
            }
            Err(e) => (None, Err(e)),
        }
    });
    match result {
        Ok(Ok((previous, written))) => Response::Updated { previous, written },
        Ok(Err(e)) => Response::Error(e),
        Err(tiercache_store::StoreError::TooLarge { size, limit }) => {
            Response::Error(RemoteError::TooLarge { size, limit })
        }
        Err(other) => Response::Error(RemoteError::BadFrame(other.to_string())),
    }
}

/// Commits a master's transaction (`Request::Transaction`) under the locks of all its keys'
/// shards: merges `bases`, then writes `writes` only if every key of `expect` stands as the
/// master read it (`Conflict` otherwise, and nothing changes).
pub fn transaction(store: &Store, expect: &[Expect], bases: &[WireEntry], writes: &[WireEntry]) -> Response {
    let keys: Vec<&[u8]> = expect.iter().map(|e| &e.key[..]).chain(writes.iter().map(|w| &w.key[..])).collect();
    let mut locked = store.locked(&keys);
    let put = |l: &mut tiercache_store::Locked<'_>, e: &WireEntry| {
        l.apply_raw(&e.key, e.value.as_deref(), e.version, store.expires_at(e.ttl_ms), e.expiry_seq)
    };
    for base in bases {
        let _ = put(&mut locked, base);
    }
    for e in expect {
        if locked.get(&e.key).map(|s| (s.version, s.expiry_seq)) != e.stamp {
            return Response::Conflict;
        }
    }
    // All or nothing: a write too large for a shard refuses the whole transaction.
    for w in writes {
        if let Err(tiercache_store::StoreError::TooLarge { size, limit }) = locked.fits(&w.key, w.value.as_deref()) {
            return Response::Error(RemoteError::TooLarge { size, limit });
        }
    }
    let applied = writes.iter().filter(|w| put(&mut locked, w).unwrap_or(false)).count();
    Response::Applied(applied as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tiercache_protocol::Condition;
    use tiercache_store::{ManualClock, StoreConfig};

    fn store() -> Store {
        Store::new(StoreConfig::default(), Arc::new(ManualClock::new(1_000_000)))
    }

    fn written(r: &Response) -> Option<Bytes> {
        match r {
            Response::Updated { written: Some(f), .. } => f.value.clone(),
            _ => None,
        }
    }

    #[test]
    fn increments_are_serialised_even_with_old_versions() {
        let s = store();
        for i in 1..=100 {
            // Every master's clock may lag: the primary still counts each increment.
            let r = apply(&s, b"n", &Op::IncrBy(1), 5);
            assert_eq!(written(&r), Some(Bytes::from(i.to_string())));
        }
        assert_eq!(s.get(b"n").unwrap().value, Some(Bytes::from_static(b"100")));
        assert_eq!(apply(&s, b"n", &Op::IncrBy(i64::MAX), 1), Response::Error(RemoteError::Overflow));
        s.put(Bytes::from_static(b"t"), Bytes::from_static(b"abc"), 1, 0).unwrap();
        assert_eq!(apply(&s, b"t", &Op::IncrBy(1), 9), Response::Error(RemoteError::NotAnInteger));
    }

    #[test]
    fn conditions_append_and_getdel() {
        let s = store();
        let set = |c| Op::Set { value: Bytes::from_static(b"v"), ttl_ms: 0, keep_ttl: false, condition: c };
        assert_eq!(written(&apply(&s, b"k", &set(Condition::IfPresent), 1)), None, "XX on an absent key");
        assert_eq!(written(&apply(&s, b"k", &set(Condition::IfAbsent), 2)), Some(Bytes::from_static(b"v")));
        assert_eq!(written(&apply(&s, b"k", &set(Condition::IfAbsent), 3)), None, "NX on a present key");
        assert_eq!(
            written(&apply(&s, b"k", &Op::Append(Bytes::from_static(b"w")), 4)),
            Some(Bytes::from_static(b"vw"))
        );
        match apply(&s, b"k", &Op::GetDel, 5) {
            Response::Updated { previous, written: Some(f) } => {
                assert_eq!(previous, Some(Bytes::from_static(b"vw")));
                assert_eq!(f.value, None, "a tombstone to replicate");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(s.get(b"k").and_then(|e| e.value), None);
        assert_eq!(apply(&s, b"k", &Op::GetDel, 6), Response::Updated { previous: None, written: None });
    }

    #[test]
    fn expire_keeps_the_version_so_a_newer_write_still_wins() {
        let s = store();
        assert_eq!(
            apply(&s, b"k", &Op::Expire { ttl_ms: 5000 }, 9),
            Response::Updated { previous: None, written: None }
        );
        s.put(Bytes::from_static(b"k"), Bytes::from_static(b"old"), 10, 0).unwrap();
        match apply(&s, b"k", &Op::Expire { ttl_ms: 5000 }, 99) {
            Response::Updated { previous, written: Some(f) } => {
                assert_eq!(previous, Some(Bytes::from_static(b"old")));
                assert_eq!(
                    (f.version, f.ttl_ms, f.expiry_seq),
                    (10, 5000, 1),
                    "same version, new expiry, next sequence"
                );
            }
            other => panic!("{other:?}"),
        }
        // A write that raced the EXPIRE (version 11 < the master's 99) still replaces the value.
        s.put(Bytes::from_static(b"k"), Bytes::from_static(b"new"), 11, 0).unwrap();
        assert_eq!(s.get(b"k").unwrap().value, Some(Bytes::from_static(b"new")));
        // PERSIST: only a value with an expiry changes.
        assert!(matches!(apply(&s, b"k", &Op::Expire { ttl_ms: 0 }, 1), Response::Updated { written: None, .. }));
        // A replica applies the expiry only to the version the primary kept, over an older
        // sequence.
        assert_eq!(s.set_expiry(b"k", 100, Some((10, 1))).map(|(_, c)| c), Some(false));
        assert_eq!(s.set_expiry(b"k", 100, Some((11, 1))).map(|(e, c)| (e.expires_at_ms > 0, c)), Some((true, true)));
        assert_eq!(s.set_expiry(b"k", 200, Some((11, 1))).map(|(_, c)| c), Some(false), "the same change twice");
    }

    #[test]
    fn a_replica_that_missed_an_expire_takes_it_from_any_copy() {
        let (primary, replica) = (store(), store());
        for s in [&primary, &replica] {
            s.put(Bytes::from_static(b"k"), Bytes::from_static(b"v"), 10, 0).unwrap();
        }
        let Response::Updated { written: Some(f), .. } = apply(&primary, b"k", &Op::Expire { ttl_ms: 5000 }, 11) else {
            panic!("expiry applied")
        };
        // The replica missed the SetExpiry; a transfer or read repair sends the entry.
        let expires = replica.expires_at(f.ttl_ms);
        assert!(replica.apply_raw(b"k", f.value.as_deref(), f.version, expires, f.expiry_seq).unwrap());
        assert_eq!(replica.get(b"k").unwrap().expires_at_ms, expires);
        // PERSIST on the primary, the copy with the expiry arrives late: the newer sequence stays.
        let Response::Updated { written: Some(p), .. } = apply(&primary, b"k", &Op::Expire { ttl_ms: 0 }, 12) else {
            panic!("persist applied")
        };
        assert_eq!((p.ttl_ms, p.expiry_seq), (0, 2));
        assert!(!primary.apply_raw(b"k", f.value.as_deref(), f.version, expires, f.expiry_seq).unwrap());
        assert_eq!(primary.get(b"k").unwrap().expires_at_ms, 0);
    }
}
