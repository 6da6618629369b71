//! The master's core, shared by its front ends (HTTP today): everything between a client's
//! key and the auxiliaries that own it.
//!
//! - [`view`]: the placement this master routes by, its auxiliaries with their suspect and
//!   recovering marks, and the previous placement while keys move.
//! - [`router`]: [`Router`], its placement and view, versioned writes and deletes; `read`:
//!   quorum reads (newest version wins, read repair, fallback to the previous owners).
//! - `quorum`: the one fan-out helper every operation uses.
//! - `atomic`: read-modify-write operations, one step on the key's primary owner, then
//!   replicated.
//! - [`rebalance`]: following the membership, transfers and the ownership sweep started by
//!   the elected coordinator, and their progress.
//! - [`peer`]: the seam in front of the network ([`Peer`], [`Connect`]); [`WireConnect`] in
//!   production, in-memory peers in the unit tests.
//! - [`tx`]: transactions, read from a key group's primary, run against an [`tx::Overlay`],
//!   committed there if nothing changed meanwhile.
//! - [`cluster`]: [`Cluster`], what a master knows of the cluster beyond its router, from the
//!   membership service and the stored configuration behind ports.
//! - [`follow_config`]: a master's check of its environment against the cluster
//!   configuration, adopting and following it, re-replicating after a `REPLICAS` change; the
//!   store behind a port ([`ConfigStore`]).
//! - [`floors`]: read your writes on one client connection.
//! - [`threads`]: [`DataThreads`], the single-threaded runtimes both front ends serve on.
//! - [`MasterError`]: why an operation failed, typed to the end.

mod atomic;
pub mod cluster;
pub mod floors;
pub mod follow_config;
mod keyspace;
pub mod peer;
mod quorum;
mod read;
pub mod rebalance;
pub mod router;
pub mod state;
pub mod threads;
pub mod tx;
pub mod view;

#[cfg(test)]
mod tests;

pub use cluster::{Cluster, MembershipPort};
pub use floors::WriteFloors;
pub use follow_config::{follow_config, ConfigStore, Disagreement, Environment, MemConfigStore};
pub use peer::{Connect, Peer, WireConnect};
pub use rebalance::{follow, rebalance_with_retries, RebalanceStatus};
pub use router::{ReadResult, Router, RouterConfig, WriteRecord};
pub use state::{ClusterInfo, ConfigChangeError, Limits, MasterInfo, MasterState};
pub use threads::DataThreads;
pub use tiercache_placement::{ClusterConfig, Features, KeyHash, Member, ZkState, MAX_REPLICAS};
pub use tiercache_protocol::same_secret;
pub use tiercache_wire::{Metrics, WireError};
pub use view::{AuxNode, NodeStatus, View};

use tiercache_protocol::RemoteError;

/// What a port in front of ZooKeeper failed with ([`WriteRecord`], [`ConfigStore`]): the
/// store's own error, kept whole for its message and source.
pub type PortError = Box<dyn std::error::Error + Send + Sync>;

/// Why the cluster's first write could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum NotRecorded {
    /// The store refused or failed.
    #[error(transparent)]
    Store(PortError),
    /// It did not answer in time.
    #[error("ZooKeeper did not answer in time")]
    Timeout,
    /// The auxiliaries registered then are not all in this master's placement yet.
    #[error("the placement lags the registered auxiliaries")]
    PlacementLags,
}

/// Why a client operation failed.
#[derive(Debug, thiserror::Error)]
pub enum MasterError {
    /// No auxiliary is known.
    #[error("no auxiliary available")]
    NoAuxiliaries,
    /// Fewer owners answered than the quorum needs.
    #[error("quorum not reached: {got} of {need} owners answered ({detail})")]
    Quorum {
        /// Answers needed.
        need: usize,
        /// Answers received.
        got: usize,
        /// What went wrong with the others.
        detail: String,
    },
    /// The cluster's record that it acknowledges writes could not be made (before a master's
    /// first write; see [`router::WriteRecord`]).
    #[error("cannot record the cluster's first write in ZooKeeper: {0}")]
    NotRecorded(#[source] NotRecorded),
    /// The auxiliary that would have to run it is of an older release, which does not know
    /// the request (a rolling update is under way).
    #[error("auxiliary {0} runs an older release, which cannot run this; try again once it is updated")]
    OlderRelease(String),
    /// An owner refused the request (its answer says why), and too few accepted it.
    #[error("auxiliary {id}: {error}")]
    Refused {
        /// The auxiliary.
        id: String,
        /// Its reason.
        error: RemoteError,
    },
}

impl MasterError {
    /// The quorum was not reached: a refusal by an owner says more than the count.
    pub(crate) fn quorum(need: usize, got: usize, errors: &[WireError]) -> MasterError {
        for e in errors {
            if let WireError::Remote(id, error) = e {
                return MasterError::Refused { id: id.clone(), error: error.clone() };
            }
        }
        let detail = errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
        MasterError::Quorum { need, got, detail }
    }
}

pub use peer::WirePeer;
/// The protocol types a front end needs for admin fan-outs (snapshots, stats).
pub use tiercache_protocol as protocol;
