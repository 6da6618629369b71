//! Who may run a key's atomic steps: only its first owner under the membership in ZooKeeper.
//!
//! A master that cannot reach a key's first owner would otherwise run the step on the next
//! owner, while another master that still reaches the first one runs its steps there: two
//! primaries, and one of the two increments lost to last-write-wins. With the fence, the next
//! owner refuses while the first one is still registered (it is cut off from that master,
//! not dead), and takes over once ZooKeeper has dropped it (its session expired or it left).
//! The price: a dead first owner's atomic steps are refused (`TRYAGAIN`) until its session
//! expires (`ZK_SESSION_TIMEOUT_MS`).

use parking_lot::RwLock;
use std::sync::Arc;
use tiercache_placement::{Ring, Settings};
use tiercache_protocol::RemoteError;

/// The membership the fence decides by.
struct View {
    ring: Ring,
    replicas: usize,
    registered: bool,
}

/// The fence of one auxiliary; open (everything allowed) until it knows the cluster, so a
/// node without ZooKeeper (`tiercache local`) is never fenced.
#[derive(Default)]
pub struct Fence {
    view: RwLock<Option<Arc<View>>>,
}

impl Fence {
    /// The members (ids), placement settings and whether this node is registered, as
    /// ZooKeeper says now.
    pub fn update(&self, members: &[String], settings: Settings, registered: bool) {
        let view = View { ring: settings.ring(members), replicas: settings.replicas, registered };
        *self.view.write() = Some(Arc::new(view));
    }

    /// Refused when `node_id` may not run a step on `key` now: it is not registered, or
    /// another registered member is the key's first owner.
    pub fn may_lead(&self, key: &[u8], node_id: &str) -> Result<(), RemoteError> {
        let Some(view) = self.view.read().clone() else { return Ok(()) };
        if !view.registered {
            return Err(RemoteError::NotPrimary { primary: String::new() });
        }
        match view.ring.owners(key, view.replicas.max(1)).first() {
            Some(first) if *first != node_id => Err(RemoteError::NotPrimary { primary: (*first).to_string() }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tiercache_placement::KeyHash;

    const S: Settings = Settings { virtual_nodes: 64, replicas: 2, key_hash: KeyHash::Whole };

    #[test]
    fn only_the_first_registered_owner_leads() {
        let f = Fence::default();
        assert!(f.may_lead(b"k", "b").is_ok(), "open until the cluster is known");
        let ids: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        f.update(&ids, S, true);
        let ring = Ring::new(&ids, 64);
        let key = (0..1000).map(|i| format!("k{i}")).find(|k| ring.owners(k.as_bytes(), 2)[0] == "a").unwrap();
        let second = ring.owners(key.as_bytes(), 2)[1].to_string();
        assert!(f.may_lead(key.as_bytes(), "a").is_ok());
        assert_eq!(
            f.may_lead(key.as_bytes(), &second),
            Err(RemoteError::NotPrimary { primary: "a".into() }),
            "a is registered: cut off, not dead"
        );
        // a's session expired: the next owner takes over.
        let without_a: Vec<String> = ids.iter().filter(|i| *i != "a").cloned().collect();
        f.update(&without_a, S, true);
        assert!(f.may_lead(key.as_bytes(), Ring::new(&without_a, 64).owners(key.as_bytes(), 2)[0]).is_ok());
        // A node that lost its own session leads nothing.
        f.update(&ids, S, false);
        assert!(f.may_lead(key.as_bytes(), "a").is_err());
    }
}
