//! Lowerings of the IR to the backends' programs, one module per backend.

pub mod fhe;
pub mod mpc;
