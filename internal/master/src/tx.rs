//! Transactions: `MULTI`/`EXEC`, `WATCH`, and the commands that touch several keys of one
//! group (MSETNX, RENAME, COPY). Their keys share their owners, so their primary can commit
//! them as one isolated step.
//!
//! Optimistic, in three moves: [`Router::tx_read`] reads every key from the group's primary
//! (merged with the other owners' copies when it may have missed writes, as a single step
//! does); the front end runs the commands against an [`Overlay`] of what was read, with the
//! same step semantics the auxiliary uses (`protocol::step`); [`Router::tx_commit`] sends what
//! was read and what was written to the primary, which, under the locks of every key's shard,
//! writes only if no key changed meanwhile (`Request::Transaction`), then the writes are
//! replicated like any step's. A conflict is not an error: the front end runs the transaction
//! again from what is there now, so the result is as if it had run alone on the primary.

use crate::atomic::Owners;
use crate::peer::Connect;
use crate::router::Router;
use crate::view::{AuxNode, NodeStatus, Nodes};
use crate::MasterError;
use bytes::Bytes;
use std::sync::Arc;
use tiercache_protocol::step::{step, Expiry, Outcome, TOMBSTONE_TTL_MS};
use tiercache_protocol::{Expect, Found, Op, RemoteError, Request, Response, WireEntry};
use tiercache_wire::WireError;

/// What a transaction read from its primary; [`Router::tx_commit`] hands it back.
pub struct TxRead<P> {
    primary: Arc<AuxNode<P>>,
    owners: Nodes<P>,
    entries: Vec<(Bytes, Option<Found>)>,
    bases: Vec<WireEntry>,
    /// The entries were merged with the other owners' copies.
    reconciled: bool,
}

impl<P> TxRead<P> {
    /// The id of the primary that was read (a `WATCH` is void once another one leads).
    pub fn primary(&self) -> &str {
        &self.primary.addr.id
    }

    /// The version and expiry sequence of `key` as read (`None`: no entry).
    pub fn stamp(&self, key: &[u8]) -> Option<(u64, u32)> {
        self.entries.iter().find(|(k, _)| k == key).and_then(|(_, f)| f.as_ref()).map(|f| (f.version, f.expiry_seq))
    }

    /// An overlay of what was read, for the commands to run against.
    pub fn overlay(&self) -> Overlay {
        Overlay::new(self.entries.iter().cloned())
    }
}

/// How a commit ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Committed {
    /// Written and replicated: each key written with its version.
    Done(Vec<(Bytes, u64)>),
    /// A key changed since it was read; nothing was written.
    Conflict,
}

impl<C: Connect> Router<C> {
    /// Whether `keys` belong to one hash group, whose primary can run them as one step.
    pub fn same_group(&self, keys: &[Bytes]) -> bool {
        let rule = self.key_hash();
        keys.windows(2).all(|w| rule.part(&w[0]) == rule.part(&w[1]))
    }

    /// Reads `keys`, which must share their owners (one hash group), from their primary.
    pub async fn tx_read(&self, keys: &[Bytes]) -> Result<TxRead<C::Peer>, MasterError> {
        self.ensure_recorded().await?;
        // The keys share their owners now; while keys move (after a join, or a switch of the
        // key-hash rule) each may have had owners of its own.
        let each: Vec<Owners<C::Peer>> = keys.iter().map(|k| self.owners_for_step(k)).collect::<Result<_, _>>()?;
        let owners = each.first().ok_or(MasterError::NoAuxiliaries)?.owners.clone();
        let moving = each.iter().any(|o| o.moving);
        let mut candidates = owners.clone();
        candidates.sort_by_key(|n| n.status() == NodeStatus::Suspect);
        let mut errors = Vec::new();
        for node in candidates {
            if !node.addr.features.transactions {
                return Err(MasterError::OlderRelease(node.addr.id.clone()));
            }
            let requests: Vec<Request> = keys.iter().map(|key| Request::Get { key: key.clone() }).collect();
            let reads = requests.iter().map(|r| node.call(r));
            let mut entries = Vec::with_capacity(keys.len());
            let mut recovering = false;
            let mut failed = None;
            for (key, answer) in keys.iter().zip(futures::future::join_all(reads).await) {
                match answer {
                    Ok(Response::Value(f)) => entries.push((key.clone(), f)),
                    Ok(Response::Recovering(f)) => {
                        recovering = true;
                        entries.push((key.clone(), f));
                    }
                    Ok(other) => failed = Some(WireError::Unexpected(node.addr.id.clone(), Box::new(other))),
                    Err(e) => failed = Some(e),
                }
            }
            match failed {
                // Not reached: the next owner is the primary for now.
                Some(e @ (WireError::Unreachable(_) | WireError::Down(_))) => {
                    errors.push(e);
                    continue;
                }
                Some(e) => return Err(MasterError::quorum(1, 0, &[e])),
                None => {}
            }
            if recovering {
                node.set_recovering(true);
            }
            // An owner that may lack acknowledged writes commits on top of the others' copies.
            let mut bases = Vec::new();
            let reconciled = moving || recovering || node.recovering() || node.missed_writes();
            if reconciled {
                let newest = self.newest_elsewhere_together(keys, &each, &node).await?;
                for ((key, read), base) in entries.iter_mut().zip(newest) {
                    let Some(base) = base else { continue };
                    if read.as_ref().is_none_or(|r| base.stamp().supersedes(&r.stamp())) {
                        *read = Some(base.clone());
                    }
                    bases.push(entry(key.clone(), &base));
                }
            }
            for f in entries.iter().filter_map(|(_, f)| f.as_ref()) {
                self.hlc.observe(f.version);
            }
            return Ok(TxRead { primary: node, owners, entries, bases, reconciled });
        }
        Err(MasterError::quorum(1, 0, &errors))
    }

    /// The newest copy of each of `keys` among their owners other than `primary`, as they
    /// stood together at one moment. They are read key by key, so a commit replicated to
    /// those owners between two of the reads would give one key from before it and another
    /// from after; the primary, taking them as its base, would commit a torn transaction on
    /// top (it happened: `{pair}:b` one ahead of `{pair}:a` for good, after an owner resumed
    /// from a freeze). So they are read again until a round finds every key as the round
    /// before: copies only grow newer, so each key then held that copy from the end of the
    /// first of those rounds to the start of the second, the same span for all.
    async fn newest_elsewhere_together(
        &self,
        keys: &[Bytes],
        each: &[Owners<C::Peer>],
        primary: &Arc<AuxNode<C::Peer>>,
    ) -> Result<Vec<Option<Found>>, MasterError> {
        /// Rounds before giving up: each retry means a commit landed in the last one.
        const ROUNDS: usize = 8;
        let round = || async {
            let mut newest = Vec::with_capacity(keys.len());
            for (key, own) in keys.iter().zip(each) {
                let sources = own.owners.iter().chain(&own.previous_owners);
                newest.push(self.newest_elsewhere(sources, primary, key).await?);
            }
            Ok::<_, MasterError>(newest)
        };
        let stamps =
            |n: &[Option<Found>]| n.iter().map(|f| f.as_ref().map(|f| (f.version, f.expiry_seq))).collect::<Vec<_>>();
        let first = round().await?;
        if keys.len() < 2 {
            return Ok(first);
        }
        let mut last = stamps(&first);
        for _ in 0..ROUNDS {
            let now = round().await?;
            let seen = stamps(&now);
            if seen == last {
                return Ok(now);
            }
            last = seen;
        }
        Err(MasterError::Quorum {
            need: 1,
            got: 0,
            detail: format!("the other owners' copies of the keys changed in each of {ROUNDS} rounds of reading"),
        })
    }

    /// Commits what `overlay` wrote on top of `read`: written and replicated until
    /// `WRITE_QUORUM` owners hold it, or nothing when a key changed since it was read.
    pub async fn tx_commit(&self, read: TxRead<C::Peer>, overlay: &Overlay) -> Result<Committed, MasterError> {
        let writes = overlay.writes(|| self.hlc.next());
        let expect = read
            .entries
            .iter()
            .map(|(key, f)| Expect { key: key.clone(), stamp: f.as_ref().map(|f| (f.version, f.expiry_seq)) })
            .collect();
        let TxRead { primary, owners, bases, reconciled, .. } = read;
        let request = Request::Transaction { expect, bases, writes, reconciled };
        let id = || primary.addr.id.clone();
        match primary.call(&request).await {
            Ok(Response::Applied(_)) => {}
            Ok(Response::Conflict) => return Ok(Committed::Conflict),
            // It began catching up since the read: read again, with the others' copies.
            Ok(Response::Recovering(_)) => {
                primary.set_recovering(true);
                return Ok(Committed::Conflict);
            }
            Ok(Response::Error(error)) => return Err(MasterError::Refused { id: id(), error }),
            Ok(other) => return Err(MasterError::quorum(1, 0, &[WireError::Unexpected(id(), Box::new(other))])),
            Err(e) => return Err(MasterError::quorum(1, 0, &[e])),
        }
        let Request::Transaction { writes, .. } = request else { unreachable!("built above") };
        let versions = writes.iter().map(|w| (w.key.clone(), w.version)).collect();
        if !writes.is_empty() {
            self.replicate(owners, &primary, Request::PutBatch { entries: writes }).await?;
        }
        Ok(Committed::Done(versions))
    }
}

fn entry(key: Bytes, f: &Found) -> WireEntry {
    WireEntry { key, value: f.value.clone(), version: f.version, ttl_ms: f.ttl_ms, expiry_seq: f.expiry_seq }
}

/// Why a command in a transaction failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    /// The command named a key the transaction did not read (a front end's bug).
    #[error("key {0:?} is not one of the transaction's keys")]
    Outside(Bytes),
    /// The step refused, as the primary would have (not an integer, overflow).
    #[error(transparent)]
    Step(#[from] RemoteError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    None,
    Expiry,
    Value,
}

#[derive(Debug)]
struct Slot {
    key: Bytes,
    read: Option<Found>,
    /// The live value now (`None`: absent or deleted).
    value: Option<Bytes>,
    /// Its time to live from the read, in ms (0: none).
    ttl_ms: u64,
    change: Change,
}

/// The keys of a transaction as its commands see them: what was read, changed by what they
/// did so far. Pure: no I/O.
#[derive(Debug, Default)]
pub struct Overlay {
    slots: Vec<Slot>,
}

impl Overlay {
    /// An overlay of entries as read (delete markers included).
    pub fn new(entries: impl IntoIterator<Item = (Bytes, Option<Found>)>) -> Overlay {
        let slots = entries
            .into_iter()
            .map(|(key, read)| {
                let live = read.as_ref().filter(|f| f.value.is_some());
                let (value, ttl_ms) = live.map_or((None, 0), |f| (f.value.clone(), f.ttl_ms));
                Slot { key, read, value, ttl_ms, change: Change::None }
            })
            .collect();
        Overlay { slots }
    }

    fn slot(&mut self, key: &[u8]) -> Result<&mut Slot, TxError> {
        self.slots.iter_mut().find(|s| s.key == key).ok_or_else(|| TxError::Outside(Bytes::copy_from_slice(key)))
    }

    /// The live value of `key` and its time to live in ms (0: none).
    pub fn get(&mut self, key: &[u8]) -> Result<Option<(Bytes, u64)>, TxError> {
        let s = self.slot(key)?;
        Ok(s.value.clone().map(|v| (v, s.ttl_ms)))
    }

    /// A plain write.
    pub fn put(&mut self, key: &[u8], value: Bytes, ttl_ms: u64) -> Result<(), TxError> {
        let s = self.slot(key)?;
        (s.value, s.ttl_ms, s.change) = (Some(value), ttl_ms, Change::Value);
        Ok(())
    }

    /// A delete; true when there was a live value.
    pub fn delete(&mut self, key: &[u8]) -> Result<bool, TxError> {
        let s = self.slot(key)?;
        let existed = s.value.take().is_some();
        if existed {
            (s.ttl_ms, s.change) = (0, Change::Value);
        }
        Ok(existed)
    }

    /// A read-modify-write step, as the primary runs it: the value before, and the value
    /// written (`Some` also when only the expiry changed; `None` for a delete or no change).
    pub fn apply(&mut self, key: &[u8], op: &Op) -> Result<(Option<Bytes>, Option<Bytes>), TxError> {
        let s = self.slot(key)?;
        let previous = s.value.clone();
        let written = match step(op, previous.as_deref())? {
            Outcome::Unchanged => None,
            Outcome::Write { value, expiry } => {
                if let Expiry::InMs(ms) = expiry {
                    s.ttl_ms = ms;
                }
                (s.value, s.change) = (Some(value.clone()), Change::Value);
                Some(value)
            }
            Outcome::Delete => {
                (s.value, s.ttl_ms, s.change) = (None, 0, Change::Value);
                None
            }
            Outcome::SetExpiry { ttl_ms } if ttl_ms == 0 && s.ttl_ms == 0 => None,
            Outcome::SetExpiry { ttl_ms } => {
                s.ttl_ms = ttl_ms;
                if s.change == Change::None {
                    s.change = Change::Expiry;
                }
                s.value.clone()
            }
        };
        Ok((previous, written))
    }

    /// What the commit writes: a new version for each changed value (above the one read),
    /// the read version with the next expiry sequence for a changed expiry alone.
    pub fn writes(&self, mut next_version: impl FnMut() -> u64) -> Vec<WireEntry> {
        let mut out = Vec::new();
        for s in &self.slots {
            let (version, seq) = s.read.as_ref().map_or((0, 0), |f| (f.version, f.expiry_seq));
            let (version, expiry_seq) = match s.change {
                Change::None => continue,
                Change::Expiry => (version, seq.saturating_add(1)),
                Change::Value => (next_version().max(version + 1), 0),
            };
            let ttl_ms = if s.value.is_some() { s.ttl_ms } else { TOMBSTONE_TTL_MS };
            out.push(WireEntry { key: s.key.clone(), value: s.value.clone(), version, ttl_ms, expiry_seq });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tiercache_protocol::Condition;

    fn found(v: &'static [u8], version: u64, ttl_ms: u64) -> Option<Found> {
        Some(Found { value: Some(Bytes::from_static(v)), version, ttl_ms, expiry_seq: 3 })
    }

    #[test]
    fn commands_see_their_own_writes_and_the_commit_carries_the_last_one() {
        let mut o = Overlay::new([
            (Bytes::from_static(b"n"), found(b"5", 10, 9000)),
            (Bytes::from_static(b"gone"), None),
            (Bytes::from_static(b"t"), found(b"x", 20, 0)),
        ]);
        assert_eq!(o.apply(b"n", &Op::IncrBy(2)).unwrap().1, Some(Bytes::from_static(b"7")));
        assert_eq!(o.get(b"n").unwrap(), Some((Bytes::from_static(b"7"), 9000)), "INCR keeps the expiry");
        assert_eq!(o.apply(b"t", &Op::IncrBy(1)), Err(TxError::Step(RemoteError::NotAnInteger)));
        assert_eq!(o.get(b"gone").unwrap(), None);
        let nx =
            Op::Set { value: Bytes::from_static(b"v"), ttl_ms: 0, keep_ttl: false, condition: Condition::IfAbsent };
        assert_eq!(o.apply(b"gone", &nx).unwrap(), (None, Some(Bytes::from_static(b"v"))));
        assert!(o.delete(b"gone").unwrap());
        assert!(matches!(o.get(b"elsewhere"), Err(TxError::Outside(_))));
        let writes = o.writes(|| 15);
        let got: Vec<_> = writes.iter().map(|w| (&w.key[..], w.value.as_deref(), w.version, w.ttl_ms)).collect();
        assert_eq!(
            got,
            [(&b"n"[..], Some(&b"7"[..]), 15, 9000), (&b"gone"[..], None, 15, TOMBSTONE_TTL_MS)],
            "the failed INCR wrote nothing; versions go above the one read"
        );
    }

    #[test]
    fn an_expiry_alone_keeps_the_version_and_bumps_the_sequence() {
        let mut o = Overlay::new([(Bytes::from_static(b"k"), found(b"v", 40, 0))]);
        assert_eq!(o.apply(b"k", &Op::Expire { ttl_ms: 0 }).unwrap().1, None, "PERSIST without an expiry");
        assert!(o.writes(|| 99).is_empty());
        assert_eq!(o.apply(b"k", &Op::Expire { ttl_ms: 500 }).unwrap().1, Some(Bytes::from_static(b"v")));
        let w = o.writes(|| 99);
        assert_eq!((w[0].version, w[0].expiry_seq, w[0].ttl_ms), (40, 4, 500));
        o.put(b"k", Bytes::from_static(b"new"), 0).unwrap();
        assert_eq!(o.writes(|| 99)[0].version, 99, "a value written after it: a new version");
    }
}
