//! Frontends: model files to the float IR.

pub mod onnx;

pub use onnx::{import_onnx, import_onnx_bytes, import_onnx_outputs, OutputChoice};
