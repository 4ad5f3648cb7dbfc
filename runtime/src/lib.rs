//! secc's executors. [`clear`] runs a graph in the clear: the float IR (the oracle
//! every backend is held to) and the quantized IR (the integer-exact simulation the
//! FHE backend must reproduce bit for bit, up to approximate rounding).

pub mod clear;
pub mod csv;
mod error;
pub mod fhe;
pub mod mpc;
pub mod npy;

pub use error::RuntimeError;
