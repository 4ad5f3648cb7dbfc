//! The SMPC service: three long-lived parties serve outside clients (`secc party
//! serve`, `secc infer --parties`).
//!
//! The parties keep their links and share the weights once per session. A client
//! fetches the weightless plan from all three (and checks they agree), splits its
//! input into three additive shares and sends each party only its two replicated
//! slots; each party sends its slots of the output to that client alone, which adds
//! them up. No party sees the input or the output; the client sees neither the
//! weights nor anything but its output.
//!
//! Requests that reach party 0 within a short window run as one batch of the plan, so
//! concurrent clients share its rounds. If the session breaks (a party dies), the
//! requests in it fail with the reason and the parties reconnect by themselves.
//!
//! - [`wire`]: the client's messages; [`party`]: a serving party; [`client`]: the client.

pub mod client;
pub mod party;
pub mod wire;

use super::tls::{ClientGate, ClientTls};
use std::io::{Read, Write};

/// Largest number of samples in one request; a client splits larger inputs.
pub const MAX_REQUEST_ROWS: usize = 4096;

/// How a party's client connections are protected.
#[derive(Clone)]
pub enum ClientAccess {
    /// Plain TCP: anyone on the network reads two of the three shares of every input
    /// and output, and so, with the third link, every input and output.
    Plain,
    /// TLS 1.3: the party's pinned certificate, and the client certificates it admits.
    Tls(ClientGate),
}

/// How a client's connections to the parties are protected.
#[derive(Clone)]
pub enum ClientLink {
    /// Plain TCP (see [`ClientAccess::Plain`]).
    Plain,
    /// TLS 1.3: the client's certificate, and the parties' pins.
    Tls(ClientTls),
}

/// Why a client's request failed.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A party could not be reached.
    #[error("cannot reach party {party} at {addr}: {reason}")]
    Connect {
        /// The party.
        party: usize,
        /// Its client address.
        addr: String,
        /// What failed.
        reason: String,
    },
    /// The connection to a party failed, or it sent something that is not a reply.
    #[error("party {party} at {addr}: {reason}")]
    Link {
        /// The party.
        party: usize,
        /// Its client address.
        addr: String,
        /// What failed.
        reason: String,
    },
    /// A party answered with an error.
    #[error("party {party} refused the request: {reason}")]
    Refused {
        /// The party.
        party: usize,
        /// Its reason.
        reason: String,
    },
    /// The parties serve different plans, or their output shares do not fit together.
    #[error("the parties disagree: {0}")]
    Disagree(String),
    /// An earlier request broke this client's connections.
    #[error("an earlier request failed on this client's connections; connect again")]
    Broken,
    /// The client's own input does not fit the plan.
    #[error("{0}")]
    Input(String),
}

/// A connection: a socket, or TLS over one.
trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}
