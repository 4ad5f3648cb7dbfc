//! Key and ciphertext files: `magic (8) · version (u32) · artifact digest (32) ·
//! key id (16) · payload length (u64) · payload SHA-256 (32) · payload (bincode)`.
//!
//! The artifact digest binds a file to the compiled model it was made for, the key id
//! binds ciphertexts to the keys that made them, and the length is checked against a
//! per-kind limit before anything is allocated.

use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// File format version written. Version 2 holds server keys compressed (seeded);
/// version 3 holds keys per key partition.
pub const VERSION: u32 = 3;
const HEADER: usize = 8 + 4 + 32 + 16 + 8 + 32;

/// What a file holds.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// The client's secret keys.
    ClientKey,
    /// The server's evaluation keys (keyswitch + bootstrap).
    ServerKey,
    /// Encrypted tensors.
    Ciphertexts,
}

impl Kind {
    fn magic(self) -> &'static [u8; 8] {
        match self {
            Kind::ClientKey => b"SECCCKEY",
            Kind::ServerKey => b"SECCSKEY",
            Kind::Ciphertexts => b"SECCCTXT",
        }
    }

    /// Largest payload accepted: keys of the biggest catalog set stay under it.
    fn limit(self) -> u64 {
        match self {
            Kind::ClientKey => 1 << 24,
            Kind::ServerKey | Kind::Ciphertexts => 1 << 34,
        }
    }

    /// Oldest version whose payload this secc still decodes.
    fn oldest(self) -> u32 {
        match self {
            Kind::ServerKey | Kind::ClientKey => 3,
            Kind::Ciphertexts => 1,
        }
    }

    fn what(self) -> &'static str {
        match self {
            Kind::ClientKey => "a secc client key",
            Kind::ServerKey => "a secc server key",
            Kind::Ciphertexts => "a secc ciphertext file",
        }
    }
}

/// Errors reading key and ciphertext files.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// Wrong magic.
    #[error("{path} is not {what}")]
    Foreign {
        /// The file.
        path: String,
        /// What was expected.
        what: &'static str,
    },
    /// Newer format.
    #[error("{path} has format version {found}; this secc reads up to {VERSION}")]
    NewerVersion {
        /// The file.
        path: String,
        /// Its version.
        found: u32,
    },
    /// A layout this secc no longer decodes.
    #[error("{path} has format version {found}, older than this secc reads for {what}; run `secc keygen` again")]
    OlderVersion {
        /// The file.
        path: String,
        /// Its version.
        found: u32,
        /// What the file is.
        what: &'static str,
    },
    /// Made for another model.
    #[error("{path} was made for another compiled model (artifact digest differs); regenerate it for this model")]
    OtherModel {
        /// The file.
        path: String,
    },
    /// Encrypted under, or paired with, other keys.
    #[error("{path} belongs to other keys (key id differs); use the keys it was made with")]
    OtherKeys {
        /// The file.
        path: String,
    },
    /// Shorter than announced, or over the size limit.
    #[error("{path} is truncated or oversized: {message}")]
    Size {
        /// The file.
        path: String,
        /// Details.
        message: String,
    },
    /// Checksum mismatch or undecodable payload.
    #[error("{path} is corrupt: {message}")]
    Corrupt {
        /// The file.
        path: String,
        /// Details.
        message: String,
    },
    /// The OS refused.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Serializes `payload` with the header.
pub fn encode_file(kind: Kind, artifact: &[u8; 32], key_id: &[u8; 16], payload: &impl Serialize) -> Vec<u8> {
    encode_body(kind, artifact, key_id, &bincode::serialize(payload).expect("keys and ciphertexts serialize"))
}

/// The header, then `body` as the payload, whatever it holds (the fuzzer's inputs).
pub fn encode_body(kind: Kind, artifact: &[u8; 32], key_id: &[u8; 16], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + body.len());
    out.extend_from_slice(kind.magic());
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(artifact);
    out.extend_from_slice(key_id);
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&Sha256::digest(body));
    out.extend_from_slice(body);
    out
}

/// Checks the header of `bytes` and decodes the payload. `key_id`, when given, must match.
pub fn decode_file<T: DeserializeOwned>(
    bytes: &[u8],
    path: &str,
    kind: Kind,
    artifact: &[u8; 32],
    key_id: Option<&[u8; 16]>,
) -> Result<(T, [u8; 16]), FileError> {
    let path = path.to_string();
    if bytes.len() < 8 || &bytes[..8] != kind.magic() {
        return Err(FileError::Foreign { path, what: kind.what() });
    }
    if bytes.len() < HEADER {
        return Err(FileError::Size { path, message: format!("{} bytes, shorter than the header", bytes.len()) });
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if version > VERSION {
        return Err(FileError::NewerVersion { path, found: version });
    }
    if version < kind.oldest() {
        return Err(FileError::OlderVersion { path, found: version, what: kind.what() });
    }
    if &bytes[12..44] != artifact {
        return Err(FileError::OtherModel { path });
    }
    let id: [u8; 16] = bytes[44..60].try_into().expect("16 bytes");
    if key_id.is_some_and(|k| *k != id) {
        return Err(FileError::OtherKeys { path });
    }
    let len = u64::from_le_bytes(bytes[60..68].try_into().expect("8 bytes"));
    if len > kind.limit() {
        return Err(FileError::Size { path, message: format!("payload of {len} bytes exceeds {}", kind.limit()) });
    }
    let body = &bytes[HEADER..];
    if body.len() as u64 != len {
        return Err(FileError::Size {
            path,
            message: format!("payload has {} bytes, the header says {len}", body.len()),
        });
    }
    if Sha256::digest(body)[..] != bytes[68..100] {
        return Err(FileError::Corrupt { path, message: "checksum mismatch".into() });
    }
    use bincode::Options;
    let value = bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_limit(len)
        .deserialize(body)
        .map_err(|e| FileError::Corrupt { path, message: e.to_string() })?;
    Ok((value, id))
}

/// What the file at `path` holds, judged by its magic alone (`None`: not a secc key or
/// ciphertext file, or unreadable).
pub fn sniff(path: &std::path::Path) -> Option<Kind> {
    use std::io::Read;
    let mut magic = [0u8; 8];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut magic)).ok()?;
    [Kind::ClientKey, Kind::ServerKey, Kind::Ciphertexts].into_iter().find(|k| k.magic() == &magic)
}

/// Reads a whole file, refusing more than the kind's limit.
pub fn read_limited(path: &std::path::Path, kind: Kind) -> Result<Vec<u8>, FileError> {
    use std::io::Read;
    let p = path.display().to_string();
    let io = |source| FileError::Io { path: p.clone(), source };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(io)?
        .take(kind.limit() + HEADER as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mismatch_is_named() {
        let (a, k) = ([1u8; 32], [2u8; 16]);
        let bytes = encode_file(Kind::Ciphertexts, &a, &k, &vec![1u64, 2, 3]);
        let ok: (Vec<u64>, _) = decode_file(&bytes, "x", Kind::Ciphertexts, &a, Some(&k)).unwrap();
        assert_eq!(ok.0, vec![1, 2, 3]);
        let err = |b: &[u8], kind, a: &[u8; 32], k: Option<&[u8; 16]>| {
            decode_file::<Vec<u64>>(b, "x", kind, a, k).unwrap_err().to_string()
        };
        assert!(err(&bytes, Kind::ServerKey, &a, None).contains("not a secc server key"));
        assert!(err(&bytes, Kind::Ciphertexts, &[9; 32], None).contains("another compiled model"));
        assert!(err(&bytes, Kind::Ciphertexts, &a, Some(&[7; 16])).contains("other keys"));
        assert!(err(&bytes[..bytes.len() - 1], Kind::Ciphertexts, &a, None).contains("truncated"));
        let mut t = bytes.clone();
        *t.last_mut().unwrap() ^= 1;
        assert!(err(&t, Kind::Ciphertexts, &a, None).contains("checksum"));
    }
}
