//! The frames parties exchange once connected (aby3.md §9): a 40-byte header, then the
//! payload (u64 words, little-endian).
//!
//! Header: magic `SMPF` · version (u8) · sender (u8) · receiver (u8) · kind (u8: data or
//! abort) · session id (16) · round (u64) · payload length in bytes (u64). Every party
//! runs the same public schedule, so the receiver knows everything the header should
//! say; [`read_frame`] checks all of it before allocating the payload, which rejects a
//! frame replayed from another session (session id) or from an earlier round (round).

use std::io::Read;

/// Header size in bytes.
pub const HEADER: usize = 40;
const MAGIC: &[u8; 4] = b"SMPF";
const VERSION: u8 = 1;
const DATA: u8 = 0;
/// A party stopping on a failure tells its remaining peer which party it lost, in the
/// length field of a frame of this kind (no payload).
const ABORT: u8 = 1;

/// What the receiver expects of the next frame on a link.
#[derive(Clone, Copy, Debug)]
pub struct Expect {
    /// The session id (from the three parties' nonces).
    pub session: [u8; 16],
    /// The peer the link comes from.
    pub sender: usize,
    /// This party.
    pub receiver: usize,
    /// The round of the schedule.
    pub round: u64,
    /// Payload words the schedule says the peer sends this round.
    pub words: usize,
}

/// Why a frame was refused.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The link failed before the frame was complete.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The peer stopped and said which party it lost.
    #[error("the peer stopped: it lost party {lost}")]
    Aborted {
        /// The party it lost.
        lost: u64,
    },
    /// Not a frame at all.
    #[error("not a frame (bad magic)")]
    Magic,
    /// A frame of another version or kind.
    #[error("frame of version {version}, kind {kind}; this party speaks version {VERSION}")]
    Version {
        /// The version found.
        version: u8,
        /// The kind found.
        kind: u8,
    },
    /// Not from the peer, or not for this party.
    #[error("frame addressed from {from} to {to}")]
    Misaddressed {
        /// Sender found.
        from: u8,
        /// Receiver found.
        to: u8,
    },
    /// Another session's frame (a replay, or a party from another run).
    #[error("frame of another session")]
    Session,
    /// A frame of another round (a replay, or a party out of step).
    #[error("frame of round {0}")]
    Round(u64),
    /// A payload length the schedule does not allow.
    #[error("{got} payload bytes, the schedule says {want}")]
    Length {
        /// Bytes announced.
        got: u64,
        /// Bytes expected.
        want: u64,
    },
}

/// The header of a data frame from `sender` to `receiver` with `words` payload words.
pub fn data_header(session: &[u8; 16], sender: usize, receiver: usize, round: u64, words: usize) -> Vec<u8> {
    header(DATA, session, sender, receiver, round, 8 * words as u64)
}

/// A whole abort frame: `sender` stops because it lost party `lost`.
pub fn abort_frame(session: &[u8; 16], sender: usize, receiver: usize, round: u64, lost: usize) -> Vec<u8> {
    header(ABORT, session, sender, receiver, round, lost as u64)
}

fn header(kind: u8, session: &[u8; 16], sender: usize, receiver: usize, round: u64, len: u64) -> Vec<u8> {
    let mut h = Vec::with_capacity(HEADER);
    h.extend_from_slice(MAGIC);
    h.extend_from_slice(&[VERSION, sender as u8, receiver as u8, kind]);
    h.extend_from_slice(session);
    h.extend_from_slice(&round.to_le_bytes());
    h.extend_from_slice(&len.to_le_bytes());
    h
}

/// Reads one frame from `link` and returns its payload, refusing any header that is
/// not exactly what `want` says before allocating.
pub fn read_frame(link: &mut impl Read, want: &Expect) -> Result<Vec<u64>, FrameError> {
    let mut h = [0u8; HEADER];
    link.read_exact(&mut h)?;
    let u64_at = |i: usize| u64::from_le_bytes(h[i..i + 8].try_into().expect("8 bytes"));
    if &h[..4] != MAGIC {
        return Err(FrameError::Magic);
    }
    if h[4] != VERSION || h[7] > ABORT {
        return Err(FrameError::Version { version: h[4], kind: h[7] });
    }
    if h[5] as usize != want.sender || h[6] as usize != want.receiver {
        return Err(FrameError::Misaddressed { from: h[5], to: h[6] });
    }
    if h[8..24] != want.session {
        return Err(FrameError::Session);
    }
    if h[7] == ABORT {
        return Err(FrameError::Aborted { lost: u64_at(32) });
    }
    if u64_at(24) != want.round {
        return Err(FrameError::Round(u64_at(24)));
    }
    let want_len = 8 * want.words as u64;
    if u64_at(32) != want_len {
        return Err(FrameError::Length { got: u64_at(32), want: want_len });
    }
    let mut payload = vec![0u8; 8 * want.words];
    link.read_exact(&mut payload)?;
    Ok(payload.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes"))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: [u8; 16] = [5; 16];

    fn frame(session: &[u8; 16], round: u64, words: &[u64]) -> Vec<u8> {
        let mut f = data_header(session, 1, 0, round, words.len());
        words.iter().for_each(|w| f.extend_from_slice(&w.to_le_bytes()));
        f
    }

    fn read(bytes: &[u8], round: u64, words: usize) -> Result<Vec<u64>, FrameError> {
        read_frame(&mut &bytes[..], &Expect { session: S, sender: 1, receiver: 0, round, words })
    }

    #[test]
    fn a_frame_round_trips_and_every_header_field_is_checked() {
        let f = frame(&S, 7, &[1, u64::MAX]);
        assert_eq!(read(&f, 7, 2).unwrap(), vec![1, u64::MAX]);
        assert!(matches!(read(&f, 8, 2), Err(FrameError::Round(7))), "a replayed earlier round");
        assert!(matches!(read(&frame(&[6; 16], 7, &[1, 2]), 7, 2), Err(FrameError::Session)));
        assert!(matches!(read(&f, 7, 3), Err(FrameError::Length { got: 16, want: 24 })));
        assert!(matches!(read(&f[..f.len() - 1], 7, 2), Err(FrameError::Io(_))), "a short read");
        let mut bad = f.clone();
        bad[5] = 2;
        assert!(matches!(read(&bad, 7, 2), Err(FrameError::Misaddressed { from: 2, to: 0 })));
        bad[0] = b'X';
        assert!(matches!(read(&bad, 7, 2), Err(FrameError::Magic)));
        let abort = abort_frame(&S, 1, 0, 3, 2);
        assert!(matches!(read(&abort, 7, 2), Err(FrameError::Aborted { lost: 2 })));
    }

    #[test]
    fn a_huge_announced_length_is_refused_before_allocating() {
        let mut f = frame(&S, 0, &[]);
        f[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(read(&f, 0, 1), Err(FrameError::Length { got: u64::MAX, want: 8 })));
    }
}
