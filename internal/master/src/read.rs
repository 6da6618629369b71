//! Quorum reads: the newest version among the owners that count, read repair of the ones
//! that answered an older one, and fallback to the previous owners while keys move.

use crate::peer::Connect;
use crate::quorum::{try_call_many, Plan};
use crate::router::{ReadResult, Router};
use crate::view::{AuxNode, NodeStatus, Nodes, View};
use crate::MasterError;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;
use tiercache_protocol::{Found, Request, Response, WireEntry};

/// An owner's answer to a read as it was heard: its entry, and whether it is a full
/// replica's (a recovering one's is heard but does not count); `None` for another answer.
fn heard(r: &Response) -> Option<(Option<&Found>, bool)> {
    match r {
        Response::Value(f) => Some((f.as_ref(), true)),
        Response::Recovering(f) => Some((f.as_ref(), false)),
        _ => None,
    }
}

impl<C: Connect> Router<C> {
    /// Owners ordered for use: answering ones first, then recovering ones, suspects last.
    fn ordered_owners(&self, view: &View<C::Peer>, key: &[u8]) -> Nodes<C::Peer> {
        let mut owners = view.owners(key, self.replicas());
        owners.sort_by_key(|n| (n.status() == NodeStatus::Suspect, n.recovering() || n.missed_writes()));
        owners
    }

    /// Quorum read: asks owners until `READ_QUORUM` of them answered, returns the newest
    /// version and repairs owners that answered an older one. An owner that is recovering (it
    /// may have missed acknowledged writes) is heard but not counted: the next owner is asked
    /// too. Only when every owner has been asked and too few counted is the newest of what
    /// was heard returned (two faults at once: best effort).
    pub async fn get(&self, key: Bytes) -> Result<ReadResult, MasterError> {
        Ok(match self.read(key).await?.and_then(|f| f.value) {
            Some(v) => ReadResult::Hit(v),
            None => ReadResult::Miss,
        })
    }

    /// Like [`Router::get`], with the entry's remaining time to live (`ttl_ms`, 0 = none).
    /// `None` when the key is absent or deleted.
    pub async fn read(&self, key: Bytes) -> Result<Option<Found>, MasterError> {
        self.read_at_least(key, 0).await
    }

    /// Like [`Router::read`], for a client that wrote `key` at version `floor` (read your
    /// writes): an answer older than `floor` does not count, since that owner has not yet
    /// received the write (it was acknowledged by the primary alone, or the primary is
    /// recovering and so asked last). 0: no floor.
    pub async fn read_at_least(&self, key: Bytes, floor: u64) -> Result<Option<Found>, MasterError> {
        let view = self.view();
        let owners = self.ordered_owners(&view, &key);
        if owners.is_empty() {
            return Err(MasterError::NoAuxiliaries);
        }
        let plan = Plan { need: self.read_quorum(), all_at_once: false, sloppy: false, primary: false };
        let out = try_call_many(owners, Request::Get { key: key.clone() }, plan, |node, resp| match resp {
            Response::Value(f) => {
                node.set_recovering(false);
                !node.missed_writes() && f.as_ref().map_or(0, |f| f.version) >= floor
            }
            Response::Recovering(_) => {
                node.set_recovering(true);
                false
            }
            _ => false,
        })
        .await;
        let (need, counted, errors, mut answers) = (out.need, out.counted, out.errors, out.answers);
        // The answers are read where they lie: no list of their own per read.
        let heard_from = answers.iter().filter(|(_, r)| heard(r).is_some()).count();
        // With the quorum counted, only counted answers decide: a recovering owner may hold a
        // value that was since overwritten by an expiring write or a purged delete. Without it,
        // the newest of what was heard is returned only when every owner answered (all of them
        // recovering, as after a whole-cluster restart); an owner that could not be reached
        // might hold the write the recovering ones missed.
        let decisive = counted >= need || (errors.is_empty() && heard_from >= need);
        if !decisive || heard_from == 0 {
            return Err(MasterError::quorum(need, counted, &errors));
        }
        // Where the newest answer is: it is moved out for the reply, not cloned.
        let newest_at = answers
            .iter()
            .enumerate()
            .filter_map(|(i, (_, r))| Some((i, heard(r)?)))
            .filter(|(_, (_, c))| *c || counted < need)
            .filter_map(|(i, (f, _))| Some((i, f?)))
            .fold(None::<(usize, &Found)>, |best, (i, f)| match best {
                Some((_, b)) if !f.stamp().supersedes(&b.stamp()) => best,
                _ => Some((i, f)),
            });
        if let Some((_, newest)) = newest_at {
            self.hlc.observe(newest.version);
            for (node, f) in answers.iter().filter_map(|(node, r)| Some((node, heard(r)?.0))) {
                // An older expiry of the same version is repaired too.
                if f.is_none_or(|f| newest.stamp().supersedes(&f.stamp())) {
                    self.repair(node.clone(), &key, newest);
                }
            }
        }
        let newest = match newest_at {
            Some((i, _)) => match answers.swap_remove(i).1 {
                Response::Value(f) | Response::Recovering(f) => f,
                _ => None,
            },
            None => self.fallback(&view, &key, &answers).await,
        };
        Ok(newest.filter(|f| f.value.is_some()))
    }

    /// While keys move after a membership change, a key no current owner has is looked up on
    /// its previous owners; when found it is copied to the current owners at once.
    async fn fallback(
        &self,
        view: &View<C::Peer>,
        key: &Bytes,
        asked: &[(Arc<AuxNode<C::Peer>>, Response)],
    ) -> Option<Found> {
        let now = self.clock.now_ms();
        let prev = view.moving(now)?;
        let current = view.owners(key, self.replicas());
        let req = Request::Get { key: key.clone() };
        // A short budget: this only runs on a miss, and a dead previous owner must not turn
        // every miss into a timeout.
        let budget = self.cfg.request_timeout.min(Duration::from_millis(200));
        for id in prev.ring.owners(key, self.replicas()) {
            if asked.iter().any(|(n, r)| heard(r).is_some() && n.addr.id == id) {
                continue;
            }
            let Some(node) = view.previous_peer(prev, id, now) else { continue };
            if node.status() == NodeStatus::Suspect {
                continue;
            }
            if let Ok(Response::Value(Some(found)) | Response::Recovering(Some(found))) =
                node.call_with_timeout(&req, budget).await
            {
                for owner in &current {
                    self.repair(owner.clone(), key, &found);
                }
                return Some(found);
            }
        }
        None
    }

    fn repair(&self, node: Arc<AuxNode<C::Peer>>, key: &Bytes, f: &Found) {
        let entry = WireEntry {
            key: key.clone(),
            value: f.value.clone(),
            version: f.version,
            ttl_ms: f.ttl_ms,
            expiry_seq: f.expiry_seq,
        };
        let metrics = self.metrics.clone();
        // On the calling thread's runtime, through its own connections.
        tokio::spawn(async move {
            if let Ok(Response::Applied(n)) = node.call(&Request::PutBatch { entries: vec![entry] }).await {
                metrics.read_repairs.inc_by(n);
            }
        });
    }
}
