//! Read-modify-write operations (conditional SET, INCRBY, APPEND, GETDEL): run as one step on
//! the key's primary owner (its first owner that answers), whose result is then replicated to
//! the other owners like any versioned write. Two masters operating on one key concurrently
//! are serialised by the primary, so no increment is lost while it is up; and since every
//! plain write is acknowledged only once the primary holds it (`Plan::primary`), a step never
//! starts from a value older than one acknowledged. A primary that may have missed writes
//! (it is recovering after a start, a freeze or a lost session, or this master wrote around
//! it) runs the step on top of the newest copy of the other owners (`ApplyReconciled`), or
//! not at all when none of them answers. If the primary fails
//! midway, the caller gets an error and cannot tell whether the step was applied (as with a
//! Redis failover); a retry may apply it twice.

use crate::peer::Connect;
use crate::quorum::{try_call_many, Plan};
use crate::router::Router;
use crate::view::{AuxNode, NodeStatus, Nodes};
use crate::MasterError;
use bytes::Bytes;
use std::sync::Arc;
use tiercache_protocol::{Found, Op, Request, Response, WireEntry};
use tiercache_wire::WireError;

/// A key's owners for a step: see [`Router::owners_for_step`].
pub(crate) struct Owners<P> {
    /// Its owners now, in ring order.
    pub owners: Nodes<P>,
    /// Owners of the previous placement that are not owners now, while keys move.
    pub previous_owners: Vec<Arc<AuxNode<P>>>,
    /// Keys may be moving to an owner of this key.
    pub moving: bool,
}

impl<C: Connect> Router<C> {
    /// Runs `op` on `key`'s primary owner and replicates what it wrote until `WRITE_QUORUM`
    /// owners (the primary included) hold it. Returns the value before and the entry written.
    pub async fn apply(&self, key: Bytes, op: Op) -> Result<(Option<Bytes>, Option<Found>), MasterError> {
        self.ensure_recorded().await?;
        let Owners { owners, previous_owners, moving } = self.owners_for_step(&key)?;
        let mut candidates = owners.clone();
        candidates.sort_by_key(|n| n.status() == NodeStatus::Suspect);
        let expiry_only = matches!(op, Op::Expire { .. });
        let version = self.hlc.next();
        let plain = Request::Apply { key: key.clone(), op: op.clone(), version };
        let mut errors = Vec::new();
        let mut done = None;
        for node in candidates {
            // An owner that may lack acknowledged writes (it is recovering, or this master
            // wrote around it) runs the step only on top of what the other owners hold.
            let mut reconcile = moving || node.recovering() || node.missed_writes();
            let answer = loop {
                let answer = if reconcile {
                    let sources = owners.iter().chain(&previous_owners);
                    let base = self.newest_elsewhere(sources, &node, &key).await?;
                    node.call(&Request::ApplyReconciled { key: key.clone(), op: op.clone(), version, base }).await
                } else {
                    node.call(&plain).await
                };
                match answer {
                    // It is catching up: ask again with the other owners' copy.
                    Ok(Response::Recovering(_)) if !reconcile => {
                        node.set_recovering(true);
                        reconcile = true;
                    }
                    other => break other,
                }
            };
            match answer {
                Ok(Response::Updated { previous, written }) => {
                    done = Some((node, previous, written));
                    break;
                }
                Ok(other) => errors.push(WireError::Unexpected(node.addr.id.clone(), Box::new(other))),
                // Never sent: the next owner is the primary for now.
                Err(e @ (WireError::Unreachable(_) | WireError::Down(_))) => {
                    errors.push(e);
                    continue;
                }
                Err(e) => errors.push(e),
            }
            // Sent and failed, or refused: trying elsewhere could apply it twice.
            break;
        }
        let Some((primary, previous, written)) = done else { return Err(MasterError::quorum(1, 0, &errors)) };
        let Some(w) = &written else { return Ok((previous, written)) };
        self.hlc.observe(w.version);
        // An expiry keeps the version, so it travels as such: a copy of the entry would not
        // supersede the replicas' one.
        let replicate = if expiry_only {
            Request::SetExpiry { key, version: w.version, expiry_seq: w.expiry_seq, ttl_ms: w.ttl_ms }
        } else {
            Request::PutBatch {
                entries: vec![WireEntry {
                    key,
                    value: w.value.clone(),
                    version: w.version,
                    ttl_ms: w.ttl_ms,
                    expiry_seq: w.expiry_seq,
                }],
            }
        };
        self.replicate(owners, &primary, replicate).await?;
        Ok((previous, written))
    }

    /// The owners of `key` a step may run on, and while keys move after a membership change
    /// the previous owners that are up (a new owner may hold no copy, or an old one from an
    /// earlier time it owned the key: the step then starts from the newest copy of all).
    pub(crate) fn owners_for_step(&self, key: &[u8]) -> Result<Owners<C::Peer>, MasterError> {
        let view = self.view();
        let owners = view.owners(key, self.replicas());
        if owners.is_empty() {
            return Err(MasterError::NoAuxiliaries);
        }
        let now = self.clock.now_ms();
        let mut moving = false;
        let mut previous_owners = Vec::new();
        if let Some(prev) = view.moving(now) {
            for id in prev.ring.owners(key, self.replicas()) {
                if owners.iter().any(|n| n.addr.id == id) {
                    continue;
                }
                moving = true;
                if let Some(n) = view.previous_peer(prev, id, now).filter(|n| n.status() == NodeStatus::Up) {
                    previous_owners.push(n.clone());
                }
            }
        }
        Ok(Owners { owners, previous_owners, moving })
    }

    /// Sends what the primary wrote to the other owners until `WRITE_QUORUM` owners (the
    /// primary included) hold it; owners written around are told they missed a write.
    pub(crate) async fn replicate(
        &self,
        owners: Nodes<C::Peer>,
        primary: &Arc<AuxNode<C::Peer>>,
        replicate: Request,
    ) -> Result<(), MasterError> {
        let (live, suspects): (Nodes<_>, Nodes<_>) =
            owners.into_iter().filter(|n| !Arc::ptr_eq(n, primary)).partition(|n| !n.routed_around());
        for n in &suspects {
            n.note_missed_write();
        }
        let plan =
            Plan { need: self.write_quorum().saturating_sub(1), all_at_once: true, sloppy: true, primary: false };
        let out = try_call_many(live, replicate, plan, |_, _| true).await;
        if out.counted < out.need {
            return Err(MasterError::quorum(out.need + 1, out.counted + 1, &out.errors));
        }
        Ok(())
    }

    /// The newest entry for `key` among its owners other than `primary`, from every one that
    /// answers (recovering ones included: merging more copies never loses a write). Fails when
    /// there are others and none answers: the step would have to guess.
    pub(crate) async fn newest_elsewhere(
        &self,
        owners: impl Iterator<Item = &Arc<AuxNode<C::Peer>>>,
        primary: &Arc<AuxNode<C::Peer>>,
        key: &Bytes,
    ) -> Result<Option<Found>, MasterError> {
        let others: Nodes<_> = owners.filter(|n| !Arc::ptr_eq(n, primary)).cloned().collect();
        if others.is_empty() {
            return Ok(None);
        }
        let plan = Plan { need: others.len(), all_at_once: true, sloppy: true, primary: false };
        let out = try_call_many(others, Request::Get { key: key.clone() }, plan, |_, _| true).await;
        let mut heard = false;
        let mut newest: Option<Found> = None;
        for (_, r) in out.answers {
            let (Response::Value(f) | Response::Recovering(f)) = r else { continue };
            heard = true;
            let Some(f) = f else { continue };
            if newest.as_ref().is_none_or(|b| f.stamp().supersedes(&b.stamp())) {
                newest = Some(f);
            }
        }
        if !heard {
            return Err(MasterError::quorum(1, 0, &out.errors));
        }
        Ok(newest)
    }
}
