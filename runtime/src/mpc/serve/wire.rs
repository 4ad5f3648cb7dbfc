//! The messages between an outside client and a serving party, over the client's own
//! TLS connection to that party (or plain TCP with `--insecure`).
//!
//! A message is a 16-byte header (magic `SMPQ` · version (u8) · 3 zero bytes · body
//! length (u64, little-endian)) and a bincode body. The header is checked, and the
//! length held to the reader's limit, before the body is allocated.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};

const MAGIC: &[u8; 4] = b"SMPQ";
const VERSION: u8 = 1;
const HEADER: usize = 16;

/// A request id: random, chosen by the client, the same at all three parties.
pub type RequestId = [u8; 16];

/// What a client asks a party.
#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    /// The weightless plan the party serves.
    Plan,
    /// Run the plan on `rows` samples whose shares are `s0` (slot `party`) and `s1`
    /// (slot `party + 1`), flattened row after row.
    Infer {
        /// The request, as the client named it to every party.
        id: RequestId,
        /// Samples.
        rows: u32,
        /// Slot `party` of each input word.
        s0: Vec<u64>,
        /// Slot `party + 1` of each input word.
        s1: Vec<u64>,
    },
}

/// A party's answer.
#[derive(Debug, Serialize, Deserialize)]
pub enum Reply {
    /// The weightless plan, as [`secc_ir::lowered::mpc::Plan::to_bytes`] writes it.
    Plan(Vec<u8>),
    /// This party's two slots of each output of the plan, for the request's rows.
    Outputs(Vec<(Vec<u64>, Vec<u64>)>),
    /// Why the request failed.
    Error(String),
}

/// Why a message could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The connection failed or closed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Not a message of this protocol.
    #[error("not a secc SMPC service message (bad magic or version)")]
    Header,
    /// A body longer than the reader allows.
    #[error("a message of {got} bytes, over the limit of {limit}")]
    TooLong {
        /// Bytes announced.
        got: u64,
        /// Bytes allowed.
        limit: u64,
    },
    /// A body that does not decode.
    #[error("a malformed message: {0}")]
    Body(String),
}

fn options() -> impl bincode::Options {
    use bincode::Options;
    bincode::DefaultOptions::new().with_fixint_encoding()
}

/// Writes one message.
pub fn write_message<T: Serialize>(w: &mut impl Write, message: &T) -> std::io::Result<()> {
    use bincode::Options;
    let body = options().serialize(message).map_err(std::io::Error::other)?;
    let mut frame = Vec::with_capacity(HEADER + body.len());
    frame.extend_from_slice(MAGIC);
    frame.extend_from_slice(&[VERSION, 0, 0, 0]);
    frame.extend_from_slice(&(body.len() as u64).to_le_bytes());
    frame.extend_from_slice(&body);
    w.write_all(&frame)?;
    w.flush()
}

/// Reads one message whose body is at most `limit` bytes.
pub fn read_message<T: DeserializeOwned>(r: &mut impl Read, limit: u64) -> Result<T, WireError> {
    use bincode::Options;
    let mut h = [0u8; HEADER];
    r.read_exact(&mut h)?;
    if &h[..4] != MAGIC || h[4] != VERSION {
        return Err(WireError::Header);
    }
    let len = u64::from_le_bytes(h[8..16].try_into().expect("8 bytes"));
    if len > limit {
        return Err(WireError::TooLong { got: len, limit });
    }
    let mut body = vec![0u8; len as usize];
    r.read_exact(&mut body)?;
    options().with_limit(len).deserialize(&body).map_err(|e| WireError::Body(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_bad_ones_are_refused_before_allocating() {
        let req = Request::Infer { id: [7; 16], rows: 2, s0: vec![1, 2], s1: vec![3, u64::MAX] };
        let mut buf = Vec::new();
        write_message(&mut buf, &req).unwrap();
        match read_message::<Request>(&mut &buf[..], 1 << 20).unwrap() {
            Request::Infer { id, rows, s0, s1 } => {
                assert_eq!((id, rows, s0, s1), ([7; 16], 2, vec![1, 2], vec![3, u64::MAX]))
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(read_message::<Request>(&mut &buf[..], 8), Err(WireError::TooLong { .. })));
        let mut huge = buf[..HEADER].to_vec();
        huge[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(read_message::<Request>(&mut &huge[..], 1 << 20), Err(WireError::TooLong { .. })));
        assert!(matches!(
            read_message::<Request>(&mut &b"GET / HTTP/1.1\r\n\r\n"[..], 1 << 20),
            Err(WireError::Header)
        ));
        let mut bad = buf.clone();
        bad[HEADER] = 9; // no such variant
        assert!(matches!(read_message::<Request>(&mut &bad[..], 1 << 20), Err(WireError::Body(_))));
        assert!(matches!(read_message::<Request>(&mut &buf[..buf.len() - 1], 1 << 20), Err(WireError::Io(_))));
    }
}
