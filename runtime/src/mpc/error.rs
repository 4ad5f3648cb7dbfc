//! Errors of a party: each names the peer it is about.

/// Why a party stopped.
#[derive(Debug, thiserror::Error)]
pub enum MpcError {
    /// A peer could not be reached or did not connect in time.
    #[error("cannot connect to party {peer} at {addr}: {reason}")]
    Connect {
        /// The peer.
        peer: usize,
        /// Its address.
        addr: String,
        /// What failed.
        reason: String,
    },
    /// The TLS handshake with a peer failed (a wrong or unpinned certificate, a peer
    /// that does not speak TLS).
    #[error("TLS handshake with party {peer} at {addr} failed: {reason}")]
    Handshake {
        /// The peer.
        peer: usize,
        /// Its address.
        addr: String,
        /// What failed.
        reason: String,
    },
    /// A peer runs another plan or another number of runs.
    #[error("party {peer} was started with another plan or another --repeat count than this party")]
    Terms {
        /// The peer.
        peer: usize,
    },
    /// A peer closed its connection (it died or gave up).
    #[error("lost party {peer}: it closed the connection in round {round}")]
    PeerClosed {
        /// The peer.
        peer: usize,
        /// The round we were in.
        round: u64,
    },
    /// A peer sent nothing for the whole timeout.
    #[error("party {peer} stalled: nothing received for {secs} s in round {round}")]
    Timeout {
        /// The peer.
        peer: usize,
        /// The timeout.
        secs: f64,
        /// The round we were in.
        round: u64,
    },
    /// A peer sent a frame that does not follow the protocol.
    #[error("party {peer} sent garbage in round {round}: {what}")]
    Garbage {
        /// The peer.
        peer: usize,
        /// The round we were in.
        round: u64,
        /// What was wrong.
        what: String,
    },
    /// A peer stopped because it lost another party, and said so before leaving.
    #[error("party {peer} stopped in round {round}: it lost party {lost}")]
    PeerAborted {
        /// The peer that stopped.
        peer: usize,
        /// The party it lost.
        lost: usize,
        /// The round we were in.
        round: u64,
    },
    /// Any other socket failure.
    #[error("link to party {peer} failed in round {round}: {source}")]
    Io {
        /// The peer.
        peer: usize,
        /// The round we were in.
        round: u64,
        /// The OS error.
        source: std::io::Error,
    },
    /// The plan or the inputs do not fit this party.
    #[error("{0}")]
    Setup(String),
}

impl MpcError {
    /// The party at the root of the failure, if another party failed.
    pub fn lost_party(&self) -> Option<usize> {
        match self {
            MpcError::PeerAborted { lost, .. } => Some(*lost),
            MpcError::Connect { peer, .. }
            | MpcError::Handshake { peer, .. }
            | MpcError::Terms { peer }
            | MpcError::PeerClosed { peer, .. }
            | MpcError::Timeout { peer, .. }
            | MpcError::Garbage { peer, .. }
            | MpcError::Io { peer, .. } => Some(*peer),
            MpcError::Setup(_) => None,
        }
    }
}
