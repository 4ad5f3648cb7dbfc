//! secc's compiler: the ONNX frontend ([`frontend`]) that builds the float IR, and the
//! passes ([`passes`]) that calibrate, quantize and fuse it into the integer IR the
//! backends lower. [`pipeline`] holds the one ordered list of stages; [`lower`] turns the
//! result into a TFHE circuit and an SMPC plan, and [`cost`] predicts what each costs.

mod error;
pub mod cost;
pub mod frontend;
pub mod lower;
pub mod passes;
pub mod pipeline;

pub use error::CompileError;
