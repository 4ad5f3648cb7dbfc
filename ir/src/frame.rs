//! The framing `model.secc` and the client spec share: `magic (8) · version (u32 LE) ·
//! payload length (u64 LE) · payload SHA-256 (32) · payload`. Each check has its own
//! error, so that a foreign, newer, older, truncated or damaged file is named as such.

use sha2::{Digest, Sha256};

pub(crate) const HEADER: usize = 8 + 4 + 8 + 32;

/// Why a framed file was refused (each file type words these itself).
pub(crate) enum FrameError {
    Foreign,
    Newer(u32),
    Older(u32),
    Truncated { expected: u64, got: u64 },
    Corrupt(String),
}

pub(crate) fn frame(magic: &[u8; 8], version: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(magic);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&Sha256::digest(payload));
    out.extend_from_slice(payload);
    out
}

/// The payload of `bytes`, which must be exactly one frame of `version` under `magic`
/// whose payload is at most `max` bytes.
pub(crate) fn unframe<'a>(bytes: &'a [u8], magic: &[u8; 8], version: u32, max: u64) -> Result<&'a [u8], FrameError> {
    if bytes.len() < 8 || &bytes[..8] != magic {
        return Err(FrameError::Foreign);
    }
    let total = bytes.len() as u64;
    if bytes.len() < HEADER {
        return Err(FrameError::Truncated { expected: HEADER as u64, got: total });
    }
    let found = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if found > version {
        return Err(FrameError::Newer(found));
    }
    if found < version {
        return Err(FrameError::Older(found));
    }
    let len = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes"));
    if len > max {
        return Err(FrameError::Corrupt(format!("payload length {len} exceeds {max}")));
    }
    let expected = HEADER as u64 + len;
    if total < expected {
        return Err(FrameError::Truncated { expected, got: total });
    }
    if total > expected {
        return Err(FrameError::Corrupt(format!("{} bytes after the payload", total - expected)));
    }
    let payload = &bytes[HEADER..];
    if Sha256::digest(payload)[..] != bytes[20..52] {
        return Err(FrameError::Corrupt("checksum mismatch".into()));
    }
    Ok(payload)
}

/// Decodes a bincode payload of at most `max` bytes.
pub(crate) fn decode_payload<T: serde::de::DeserializeOwned>(payload: &[u8], max: u64) -> Result<T, FrameError> {
    use bincode::Options;
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_limit(max)
        .deserialize(payload)
        .map_err(|e| FrameError::Corrupt(e.to_string()))
}
