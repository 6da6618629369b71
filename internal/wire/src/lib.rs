//! The transport between masters and auxiliaries, shared by both roles:
//!
//! - [`client`]: [`AuxClient`], a pool of persistent, authenticated connections to one
//!   auxiliary, multiplexed by request id and pipelined; dead peers are detected by pings and
//!   timeouts and their connections replaced.
//! - [`slots`]: the calls in flight on one connection, matched to their answers by id.
//! - [`codec`]: length-delimited framing with the protocol's frame limit.
//! - [`WireError`]: why a call failed, typed (a remote refusal carries the auxiliary's
//!   [`RemoteError`]).
//! - [`metrics`]: the Prometheus series both roles export, on a registry passed in.

pub mod client;
mod connection;
pub mod metrics;
pub mod slots;

pub use client::AuxClient;
pub use metrics::Metrics;

use tiercache_protocol::RemoteError;
use tokio_util::codec::LengthDelimitedCodec;

/// Why a call to an auxiliary failed.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// No connection to the auxiliary, and no sign of why: it may be frozen, slow or cut off
    /// from this node while it serves others.
    #[error("auxiliary {0} unreachable")]
    Unreachable(String),
    /// The auxiliary is not serving: its host refused the connection or it closed it (a
    /// process that died or is stopping).
    #[error("auxiliary {0} down (it refused or closed the connection)")]
    Down(String),
    /// The auxiliary did not answer in time.
    #[error("auxiliary {0} timed out")]
    Timeout(String),
    /// Too many requests to the auxiliary are in flight on this connection already: refused
    /// at once rather than queued behind a slow auxiliary.
    #[error("auxiliary {0} busy: too many requests in flight")]
    Busy(String),
    /// The auxiliary answered with an error.
    #[error("auxiliary {0}: {1}")]
    Remote(String, RemoteError),
    /// The peer refused the token.
    #[error("auxiliary {0} refused the internal token")]
    Unauthorized(String),
    /// Socket error.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// Undecodable frame.
    #[error("protocol: {0}")]
    Protocol(#[from] tiercache_protocol::ProtocolError),
    /// The auxiliary answered something this request does not expect (kept as it came).
    #[error("auxiliary {0}: unexpected answer {1:?}")]
    Unexpected(String, Box<tiercache_protocol::Response>),
}

impl WireError {
    /// True when the error means the peer could not be reached (worth marking it suspect).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, WireError::Unreachable(_) | WireError::Down(_) | WireError::Timeout(_) | WireError::Io(_))
    }

    /// True when the peer itself said it is not serving ([`WireError::Down`]): only then may a
    /// write be acknowledged without it. A timeout may be a network cut, behind which the
    /// peer still serves other masters.
    pub fn is_down(&self) -> bool {
        matches!(self, WireError::Down(_))
    }
}

/// Length-delimited framing bounded by the protocol's largest frame.
pub fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder().max_frame_length(tiercache_protocol::MAX_FRAME_BYTES).new_codec()
}

/// Resolves once the flag turns true (or its sender is gone).
pub async fn stopped(rx: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}
