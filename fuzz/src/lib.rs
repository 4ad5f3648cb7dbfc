//! The entry points the fuzz targets drive: each feeds arbitrary bytes to one parser of
//! outside data and must return (with an error or not) without panicking, hanging or
//! allocating without bound. `tests/fuzz_smoke.rs` runs the same functions on stable
//! over the committed corpora, so CI replays every input the fuzzer ever kept.
//!
//! Parsers that check a SHA-256 before decoding get half their inputs wrapped in a
//! valid header (the first byte chooses), or the fuzzer would never get past the check.

use std::path::Path;

/// A target's entry point: arbitrary bytes in, nothing out.
pub type Entry = fn(&[u8]);

/// Every target: its name (a folder under `fuzz/corpus/`) and its entry point.
pub const TARGETS: &[(&str, Entry)] = &[
    ("artifact", artifact),
    ("key_file", key_file),
    ("csv", csv),
    ("npy", npy),
    ("onnx", onnx),
    ("frame", frame),
    ("plan", plan),
    ("client_spec", client_spec),
];

/// Splits off the first byte, which chooses how the rest is used.
fn mode(data: &[u8]) -> (u8, &[u8]) {
    match data.split_first() {
        Some((m, rest)) => (*m, rest),
        None => (0, data),
    }
}

/// `model.secc` files: raw, or a payload in a valid header (bincode of the artifact).
pub fn artifact(data: &[u8]) {
    use secc_ir::artifact::{Artifact, FORMAT_VERSION, MAGIC};
    let (m, rest) = mode(data);
    let bytes = if m & 1 == 0 { rest.to_vec() } else { framed(MAGIC, FORMAT_VERSION, rest) };
    let _ = Artifact::from_bytes(&bytes, "fuzz.secc");
}

/// The framing `model.secc` and the client spec share, around `payload`.
fn framed(magic: &[u8; 8], version: u32, payload: &[u8]) -> Vec<u8> {
    let mut b = magic.to_vec();
    b.extend_from_slice(&version.to_le_bytes());
    b.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    b.extend_from_slice(&sha256(payload));
    b.extend_from_slice(payload);
    b
}

/// Client specs, as a TFHE client reads the one a server handed it: raw, or a payload
/// in a valid header (bincode of the spec).
pub fn client_spec(data: &[u8]) {
    use secc_ir::client_spec::{ClientSpec, SPEC_MAGIC, SPEC_VERSION};
    let (m, rest) = mode(data);
    let bytes = if m & 1 == 0 { rest.to_vec() } else { framed(SPEC_MAGIC, SPEC_VERSION, rest) };
    let _ = ClientSpec::from_bytes(&bytes, "fuzz.spec");
}

/// Key and ciphertext files at the header and format level: raw, or a payload (a
/// nested vector, like key material) in a valid header.
pub fn key_file(data: &[u8]) {
    use secc_runtime::fhe::file::{decode_file, encode_body, Kind};
    let (m, rest) = mode(data);
    let kind = [Kind::ClientKey, Kind::ServerKey, Kind::Ciphertexts][(m as usize >> 1) % 3];
    let (digest, id) = ([7u8; 32], [9u8; 16]);
    let bytes = if m & 1 == 0 { rest.to_vec() } else { encode_body(kind, &digest, &id, rest) };
    let _ = decode_file::<Vec<Vec<u64>>>(&bytes, "fuzz.key", kind, &digest, Some(&id));
}

/// CSV samples; the first byte is the number of values the model takes.
pub fn csv(data: &[u8]) {
    let (m, rest) = mode(data);
    let _ = secc_runtime::csv::parse_csv(&String::from_utf8_lossy(rest), "fuzz.csv", m as usize % 70);
}

/// `.npy` samples; the first byte is the number of values the model takes.
pub fn npy(data: &[u8]) {
    let (m, rest) = mode(data);
    let _ = secc_runtime::npy::parse_npy(rest, "fuzz.npy", m as usize % 70);
}

/// The ONNX import: protobuf, op check, tract's analysis, translation, verification.
/// The import catches tract's own assertions and returns them as errors; any other
/// panic is a crash.
pub fn onnx(data: &[u8]) {
    let _ = secc_compiler::frontend::import_onnx_bytes(data, Path::new("fuzz.onnx"));
}

/// The party frame decoder, on what a peer sent: the first byte is the number of
/// payload words the schedule expects; the session id is all zeros, the round 0.
pub fn frame(data: &[u8]) {
    use secc_runtime::mpc::frame::{read_frame, Expect};
    let (m, rest) = mode(data);
    let want = Expect { session: [0; 16], sender: 1, receiver: 0, round: 0, words: m as usize % 16 };
    let _ = read_frame(&mut &rest[..], &want);
}

/// SMPC plan files, as a party reads the plan another party handed it: decoded with a
/// limit, then verified. A plan that passes goes on through what every party computes
/// from it before the first round: its costs (for one sample and the largest batch)
/// and the digest of its weightless form each party's hello carries.
pub fn plan(data: &[u8]) {
    use secc_ir::lowered::mpc::Plan;
    use secc_runtime::mpc::party::MAX_BATCH;
    if let Ok(plan) = Plan::from_bytes(data) {
        let _ = plan.total(1);
        let _ = plan.total(MAX_BATCH as usize);
        let _ = sha256(&plan.weightless().to_bytes());
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}
