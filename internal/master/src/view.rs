//! What a master knows of the auxiliaries: the current placement and its nodes (with their
//! suspect and recovering marks), and the previous placement while keys move.

use crate::peer::Peer;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tiercache_placement::{Member, Ring};
use tiercache_protocol::Clock;
use tiercache_protocol::{Request, Response};
use tiercache_wire::WireError;

/// A key's owners, or some of them: on the stack up to four (a request's owners allocate
/// nothing at the usual replica counts).
pub type Nodes<P> = smallvec::SmallVec<[Arc<AuxNode<P>>; 4]>;

/// How long an auxiliary stays suspect after a failed request.
pub const SUSPECT_FOR_MS: u64 = 3_000;

/// How long a node that answered as recovering is asked last by reads before being tried
/// first again (its catch-up usually takes a few seconds).
pub const RECOVERING_FOR_MS: u64 = 1_000;

/// How long after a membership change reads that miss fall back to the previous owners:
/// long enough for the transfer of a large store to finish.
pub const FALLBACK_MS: u64 = 60_000;

/// How long after a change departed auxiliaries are still asked: a gracefully leaving one
/// hands its keys over within a few seconds; after that only current members are asked.
pub const DEPARTED_FALLBACK_MS: u64 = 5_000;

/// Health of an auxiliary as this master sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeStatus {
    /// Member and answering.
    Up,
    /// Member but recent requests failed.
    Suspect,
}

impl NodeStatus {
    /// The word shown in `/nodes`.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeStatus::Up => "up",
            NodeStatus::Suspect => "suspect",
        }
    }
}

/// One auxiliary in the view.
pub struct AuxNode<P> {
    /// Addresses.
    pub addr: Member,
    peer: P,
    timeout: Duration,
    suspect_until_ms: AtomicU64,
    /// Until when reads ask this node last: it answered as recovering (may miss writes).
    recovering_until_ms: AtomicU64,
    /// A write was acknowledged without this node and it has not yet been told to catch up.
    missed_writes: AtomicBool,
    /// The last failure said the node is not serving ([`WireError::is_down`]).
    down: AtomicBool,
    /// The router's clock: suspect and recovering marks end by it.
    clock: Arc<dyn Clock>,
}

/// How long a master keeps trying to tell an unreachable owner that it missed writes; past
/// that its ZooKeeper session has expired, and its re-registration starts a recovery anyway.
const TELL_MISSED_FOR: Duration = Duration::from_secs(60);

impl<P: Peer> AuxNode<P> {
    /// A node reached through `peer`, with `timeout` per request.
    pub fn new(addr: Member, peer: P, timeout: Duration, clock: Arc<dyn Clock>) -> Self {
        AuxNode {
            addr,
            peer,
            timeout,
            suspect_until_ms: AtomicU64::new(0),
            recovering_until_ms: AtomicU64::new(0),
            missed_writes: AtomicBool::new(false),
            down: AtomicBool::new(false),
            clock,
        }
    }

    /// Writes may be acknowledged without this node: it is suspect and said it is not
    /// serving (it refused or closed the connection). A node that only timed out may be cut
    /// off from this master alone and still serve the others' reads, so writes keep
    /// needing it (and fail while it does not answer).
    pub fn routed_around(&self) -> bool {
        self.status() == NodeStatus::Suspect && self.down.load(Ordering::Relaxed)
    }

    /// Current status.
    pub fn status(&self) -> NodeStatus {
        if self.suspect_until_ms.load(Ordering::Relaxed) > self.clock.now_ms() {
            NodeStatus::Suspect
        } else {
            NodeStatus::Up
        }
    }

    pub(crate) fn recovering(&self) -> bool {
        self.recovering_until_ms.load(Ordering::Relaxed) > self.clock.now_ms()
    }

    pub(crate) fn set_recovering(&self, yes: bool) {
        let until = if yes { self.clock.now_ms() + RECOVERING_FOR_MS } else { 0 };
        self.recovering_until_ms.store(until, Ordering::Relaxed);
    }

    /// True until the node has been told that writes went around it: its reads do not count.
    pub(crate) fn missed_writes(&self) -> bool {
        self.missed_writes.load(Ordering::Acquire)
    }

    /// A write was acknowledged without this node: until it confirms it is catching up, this
    /// master does not count its reads, and keeps telling it (every 250 ms, while it is
    /// unreachable) so that every master stops counting them.
    pub(crate) fn note_missed_write(self: &Arc<Self>) {
        if self.missed_writes.swap(true, Ordering::AcqRel) {
            return;
        }
        let node = self.clone();
        tokio::spawn(async move {
            let until = tokio::time::Instant::now() + TELL_MISSED_FOR;
            while tokio::time::Instant::now() < until {
                if node.peer.call(&Request::Recover, node.timeout).await.is_ok() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            node.missed_writes.store(false, Ordering::Release);
        });
    }

    pub(crate) fn mark(&self, err: &WireError) {
        if err.is_unreachable() {
            self.down.store(err.is_down(), Ordering::Relaxed);
            self.suspect_until_ms.store(self.clock.now_ms() + SUSPECT_FOR_MS, Ordering::Relaxed);
        }
    }

    /// One request with the request timeout; success clears the suspect mark, a failure to
    /// reach the node sets it.
    pub async fn call(&self, req: &Request) -> Result<Response, WireError> {
        self.call_with_timeout(req, self.timeout).await
    }

    /// Like [`AuxNode::call`] with an explicit timeout (snapshots and transfers take longer).
    pub async fn call_with_timeout(&self, req: &Request, timeout: Duration) -> Result<Response, WireError> {
        let r = self.peer.call(req, timeout).await;
        match &r {
            Ok(_) => {
                self.suspect_until_ms.store(0, Ordering::Relaxed);
                self.down.store(false, Ordering::Relaxed);
            }
            Err(e) => self.mark(e),
        }
        r
    }
}

/// The placement before the last change, kept while keys move.
pub struct Previous<P> {
    /// The old ring.
    pub ring: Ring,
    /// The old auxiliaries (some may be leaving or gone).
    pub nodes: HashMap<String, Arc<AuxNode<P>>>,
    /// Unix ms after which the fallback stops.
    pub until_ms: u64,
    /// Unix ms of the change.
    pub since_ms: u64,
}

impl<P> Clone for Previous<P> {
    fn clone(&self) -> Self {
        Previous {
            ring: self.ring.clone(),
            nodes: self.nodes.clone(),
            until_ms: self.until_ms,
            since_ms: self.since_ms,
        }
    }
}

/// A placement and the peers of its auxiliaries.
pub struct View<P> {
    /// The ring over the auxiliaries.
    pub ring: Ring,
    /// Auxiliaries by id.
    pub nodes: HashMap<String, Arc<AuxNode<P>>>,
    /// The previous placement while a rebalance may still be moving keys.
    pub previous: Option<Previous<P>>,
    /// The auxiliaries in the ring's order ([`Ring::nodes`]), so an owner is found by index.
    by_index: Vec<Arc<AuxNode<P>>>,
}

impl<P: Peer> View<P> {
    /// An empty view.
    pub fn empty() -> Self {
        View { ring: Ring::default(), nodes: HashMap::new(), previous: None, by_index: Vec::new() }
    }

    /// The owners of `key`, in ring order.
    pub fn owners(&self, key: &[u8], replicas: usize) -> Nodes<P> {
        let want = replicas.min(self.by_index.len());
        let mut out = Nodes::with_capacity(want);
        if want == 0 {
            return out;
        }
        // By index along the ring: no list of ids, no lookup by id.
        self.ring.walk(self.ring.hash(key), |i| {
            let node = &self.by_index[i];
            if !out.iter().any(|o| Arc::ptr_eq(o, node)) {
                out.push(node.clone());
            }
            out.len() < want
        });
        out
    }

    /// The previous placement, while keys may still be moving away from it.
    pub fn moving(&self, now: u64) -> Option<&Previous<P>> {
        self.previous.as_ref().filter(|p| p.until_ms > now)
    }

    /// The peer of auxiliary `id` of the previous placement: its current one, or, for
    /// [`DEPARTED_FALLBACK_MS`] after the change, the one of an auxiliary that left.
    pub fn previous_peer<'a>(&'a self, prev: &'a Previous<P>, id: &str, now: u64) -> Option<&'a Arc<AuxNode<P>>> {
        self.nodes.get(id).or_else(|| prev.nodes.get(id).filter(|_| now < prev.since_ms + DEPARTED_FALLBACK_MS))
    }

    /// The view after a membership change: nodes that did not change are kept (with their
    /// connections and marks); when the set or the key-hash rule changed, this view becomes
    /// the previous one.
    pub fn next(
        &self,
        members: &[Member],
        virtual_nodes: u32,
        key_hash: tiercache_placement::KeyHash,
        now: u64,
        mut connect: impl FnMut(&Member) -> AuxNode<P>,
    ) -> Self {
        let mut nodes = HashMap::new();
        for m in members {
            let node = match self.nodes.get(&m.id) {
                Some(n) if n.addr == *m => n.clone(),
                _ => Arc::new(connect(m)),
            };
            nodes.insert(m.id.clone(), node);
        }
        let ids: Vec<&str> = members.iter().map(|m| m.id.as_str()).collect();
        let ring = Ring::new(&ids, virtual_nodes).with_key_hash(key_hash);
        let moved = self.ring.nodes() != ring.nodes() || self.ring.key_hash() != key_hash;
        let previous = if moved && !self.ring.is_empty() {
            Some(Previous {
                ring: self.ring.clone(),
                nodes: self.nodes.clone(),
                until_ms: now + FALLBACK_MS,
                since_ms: now,
            })
        } else {
            self.previous.clone()
        };
        let by_index: Vec<_> = ring.nodes().iter().filter_map(|id| nodes.get(id).cloned()).collect();
        debug_assert_eq!(by_index.len(), ring.nodes().len(), "every ring node has its auxiliary");
        View { ring, nodes, previous, by_index }
    }
}
