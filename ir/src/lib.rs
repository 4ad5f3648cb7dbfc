//! secc's graph IR: what a compiled model *is*, independent of how it is run.
//!
//! It owns the value types (static shapes; floats, or integers with their exact range,
//! bit width and the quantization they stand for), the closed set of ops with their
//! exact semantics and range rules ([`ops`]), the graph container ([`Graph`]), the one
//! text form with its parser ([`text`]) and the verifier ([`verify_graph`]). Frontends, passes,
//! lowerings and executors all live in other crates and speak this IR.
#![warn(missing_docs)]

pub mod artifact;
pub mod client_spec;
mod config;
mod entity;
mod error;
mod frame;
mod graph;
pub mod interp;
pub mod lowered;
pub mod ops;
mod tensor;
pub mod text;
pub mod types;
mod verify;

pub use config::QuantConfig;
pub use entity::ValueId;
pub use error::{IrError, VerifyError};
pub use graph::{Graph, Node};
pub use ops::{Op, OpSpec};
pub use tensor::Tensor;
pub use text::{parse_circuit, parse_graph, parse_plan, ParseError};
pub use types::{BitWidth, ElemType, IntType, Quant, Shape, TensorType};
pub use verify::verify_graph;
