//! The TFHE runtime, on tfhe-rs `core_crypto`: key generation ([`keys`]), the client's
//! encryption and decryption and the server's evaluation ([`exec`]), and the
//! versioned, artifact-bound files keys and ciphertexts travel in ([`file`]).
//!
//! The server part of a quantized graph is everything between the client's
//! `quantize` and `dequantize`: linear ops run levelled on LWE ciphertexts, each
//! `lut` element is one keyswitch + programmable bootstrap (run in parallel), as the
//! circuit ([`secc_ir::lowered::fhe::Circuit`]) plans.

// The file format needs no tfhe-rs, so the fuzzer can build it without the feature.
#[cfg(feature = "fhe")]
pub mod exec;
pub mod file;
#[cfg(feature = "fhe")]
pub mod keys;
#[cfg(feature = "fhe")]
pub mod params;
#[cfg(feature = "serve")]
pub mod serve;

/// Errors of the TFHE runtime: bad files, wrong keys, inputs that do not fit.
#[derive(Debug, thiserror::Error)]
pub enum FheError {
    /// A key or ciphertext file is unusable.
    #[error(transparent)]
    File(#[from] file::FileError),
    /// The circuit names a parameter set this build does not know.
    #[error("unknown tfhe-rs parameter set {0}")]
    UnknownParams(String),
    /// A parameter set whose numbers tfhe-rs cannot take, or that disagree with the
    /// tfhe-rs set it names.
    #[error("parameter set {name}: {message}")]
    BadParams {
        /// Its name.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// Inputs that do not match the model.
    #[error(transparent)]
    Input(#[from] secc_ir::interp::InputError),
    /// Ciphertexts that do not match the circuit (wrong count or dimension).
    #[error("ciphertexts do not match the circuit: {0}")]
    Mismatch(String),
}
