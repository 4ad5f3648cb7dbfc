//! The FHE inference service: `secc serve --fhe` ([`server`]) and its HTTP client
//! (`secc infer --server`, [`client`]).
//!
//! A client fetches a model's client spec (`GET /v1/models/{id}/client`: input
//! quantization, shapes, parameter set, digest; no weights), makes its keys, uploads
//! the server key once (`POST /v1/keys`, answered with a key id), then posts
//! ciphertext files made under that key (`POST /v1/models/{id}/infer` with the
//! [`KEY_ID_HEADER`]) and decrypts the ciphertext files it gets back. Key and
//! ciphertext bodies are the files of [`crate::fhe::file`], bound to the model's
//! artifact digest, so the server refuses a key or ciphertexts made for another model.
//!
//! - [`server`]: the HTTP service; [`store`]: the server keys it holds; [`metrics`]:
//!   its Prometheus counters; [`client`]: the blocking client.

pub mod client;
pub mod metrics;
pub mod server;
pub mod store;

use serde::{Deserialize, Serialize};

/// The request header naming the server key an inference runs under.
pub const KEY_ID_HEADER: &str = "secc-key-id";

/// Most samples in one inference request: a client splits larger inputs.
pub const MAX_REQUEST_ROWS: usize = 16;

/// One served model, as `GET /v1/models` lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// The id in the service's paths: the artifact's file name without `.secc`.
    pub id: String,
    /// The model's own name.
    pub name: String,
    /// The TFHE parameter set its keys are made for.
    pub params: String,
    /// Bootstraps per inference.
    pub pbs: usize,
    /// The artifact digest (hex) keys and ciphertexts are bound to.
    pub digest: String,
}

/// The answer to a key upload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyReceipt {
    /// What inference requests name the key by.
    pub key_id: String,
    /// The model it was made for.
    pub model: String,
}

/// The body of every error reply.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorReply {
    /// What went wrong, for a person.
    pub error: String,
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
