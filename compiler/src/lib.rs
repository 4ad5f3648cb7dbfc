//! secc's compiler: the ONNX frontend ([`frontend`]) that builds the float IR, and the
//! passes ([`passes`]) that calibrate, quantize and fuse it into the integer IR the
//! backends lower. [`pipeline`] holds the one ordered list of stages, to the end: the
//! lowerings (private here, so that nothing else calls them) turn the result into a
//! TFHE circuit and an SMPC plan, and [`cost`] predicts what each costs.

pub mod cost;
mod error;
pub mod filetest;
pub mod frontend;
mod lower;
pub mod passes;
pub mod pipeline;

pub use error::CompileError;
