//! The cluster's moving parts on tokio: the auxiliary's data server, the master's pooled and
//! multiplexed client to auxiliaries, the quorum router that maps keys to owners, the hybrid
//! logical clock, and the Prometheus metrics (registered on a registry passed in).

pub mod client;
pub mod hlc;
pub mod metrics;
pub mod recovery;
pub mod router;
pub mod server;

pub use client::AuxClient;
pub use hlc::Hlc;
pub use metrics::Metrics;
pub use recovery::Recovery;
pub use router::{AuxAddr, NodeStatus, RebalanceStatus, Router, RouterConfig};
pub use server::{serve_data, DataServer, SlowOps};

use tokio_util::codec::LengthDelimitedCodec;

/// Errors of the cluster layer.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
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
    /// No connection to the auxiliary.
    #[error("auxiliary {0} unreachable")]
    Unreachable(String),
    /// The auxiliary did not answer in time.
    #[error("auxiliary {0} timed out")]
    Timeout(String),
    /// The auxiliary answered with an error.
    #[error("auxiliary {0}: {1}")]
    Remote(String, String),
    /// The peer refused the token.
    #[error("auxiliary {0} refused the internal token")]
    Unauthorized(String),
    /// Socket error.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// Undecodable frame.
    #[error("protocol: {0}")]
    Protocol(#[from] tiercache_protocol::ProtocolError),
    /// Metrics registration failed.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

impl ClusterError {
    /// True when the error means the peer could not be reached (worth marking it suspect).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, ClusterError::Unreachable(_) | ClusterError::Timeout(_) | ClusterError::Io(_))
    }
}

pub(crate) fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder().max_frame_length(tiercache_protocol::MAX_FRAME_BYTES).new_codec()
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Resolves once the flag turns true (or its sender is gone).
pub async fn stopped(rx: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}
