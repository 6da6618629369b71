//! Read-modify-write operations (conditional SET, INCRBY, APPEND, GETDEL): run as one step on
//! the key's primary owner (its first owner that answers), whose result is then replicated to
//! the other owners like any versioned write. Two masters operating on one key concurrently
//! are serialised by the primary, so no increment is lost while it is up; and since every
//! plain write is acknowledged only once the primary holds it (`Plan::primary`), a step never
//! starts from a value older than one acknowledged. If the primary fails
//! midway, the caller gets an error and cannot tell whether the step was applied (as with a
//! Redis failover); a retry may apply it twice.

use crate::peer::Connect;
use crate::quorum::{try_call_many, Plan};
use crate::router::Router;
use crate::view::NodeStatus;
use crate::MasterError;
use bytes::Bytes;
use std::sync::Arc;
use tiercache_protocol::{Found, Op, Request, Response, WireEntry};
use tiercache_wire::WireError;

impl<C: Connect> Router<C> {
    /// Runs `op` on `key`'s primary owner and replicates what it wrote until `WRITE_QUORUM`
    /// owners (the primary included) hold it. Returns the value before and the entry written.
    pub async fn apply(&self, key: Bytes, op: Op) -> Result<(Option<Bytes>, Option<Found>), MasterError> {
        let view = self.view();
        let owners = view.owners(&key, self.replicas());
        if owners.is_empty() {
            return Err(MasterError::NoAuxiliaries);
        }
        let mut candidates = owners.clone();
        candidates.sort_by_key(|n| n.status() == NodeStatus::Suspect);
        let expiry_only = matches!(op, Op::Expire { .. });
        let req = Request::Apply { key: key.clone(), op, version: self.hlc.next() };
        let mut errors = Vec::new();
        let mut done = None;
        for node in candidates {
            match node.call(&req).await {
                Ok(Response::Updated { previous, written }) => {
                    done = Some((node, previous, written));
                    break;
                }
                Ok(other) => errors.push(WireError::Unexpected(node.addr.id.clone(), format!("{other:?}"))),
                // Never sent: the next owner is the primary for now.
                Err(e @ WireError::Unreachable(_)) => {
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
        let (live, suspects): (Vec<_>, Vec<_>) =
            owners.into_iter().filter(|n| !Arc::ptr_eq(n, &primary)).partition(|n| n.status() == NodeStatus::Up);
        for n in &suspects {
            n.note_missed_write();
        }
        // An expiry keeps the version, so it travels as such: a copy of the entry would not
        // supersede the replicas' one.
        let replicate = if expiry_only {
            Request::SetExpiry { key, version: w.version, ttl_ms: w.ttl_ms }
        } else {
            Request::PutBatch {
                entries: vec![WireEntry { key, value: w.value.clone(), version: w.version, ttl_ms: w.ttl_ms }],
            }
        };
        let plan =
            Plan { need: self.write_quorum().saturating_sub(1), all_at_once: true, sloppy: true, primary: false };
        let out = try_call_many(live, Arc::new(replicate), plan, |_, _| true).await;
        if out.counted < out.need {
            return Err(MasterError::quorum(out.need + 1, out.counted + 1, &out.errors));
        }
        Ok((previous, written))
    }
}
