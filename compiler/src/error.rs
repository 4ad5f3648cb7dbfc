//! Compiler errors. Each names where the problem is: the ONNX node, or the IR value.

use secc_ir::{IrError, ValueId};
use std::path::PathBuf;
use tract_onnx::pb::NodeProto;

/// How errors name the ONNX node at `index` in its graph: `"its name"`, or, where the
/// exporter left the name empty (onnx.helper graphs, some converters), its index and
/// first output, which is what a user can find in Netron or `onnx.helper.printable_graph`.
pub(crate) fn node_label(node: &NodeProto, index: usize) -> String {
    match node.output.first() {
        _ if !node.name.is_empty() => quoted(&node.name),
        Some(out) => format!("#{index} (first output {})", quoted(out)),
        None => format!("#{index}"),
    }
}

/// A name as errors print it.
pub(crate) fn quoted(name: &str) -> String {
    format!("\"{name}\"")
}

/// Errors importing or compiling a model.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// The file is not a readable ONNX model (missing, truncated, not protobuf).
    #[error("cannot read ONNX model {path}: {message}")]
    OnnxRead {
        /// The file.
        path: PathBuf,
        /// What the ONNX loader said.
        message: String,
    },
    /// An ONNX op secc does not support (yet).
    #[error("unsupported ONNX op `{op_type}` (node {node}); supported ops: {supported}")]
    UnsupportedOp {
        /// ONNX op type, with its domain when not the default one.
        op_type: String,
        /// The ONNX node, as [`node_label`] names it.
        node: String,
        /// The list of supported op types.
        supported: String,
    },
    /// A supported ONNX op used in a form secc does not handle.
    #[error("node {node} ({op}): {message}")]
    UnsupportedForm {
        /// The (tract) op name.
        op: String,
        /// The ONNX node, as [`node_label`] names it.
        node: String,
        /// What is not supported.
        message: String,
    },
    /// The ONNX file is inconsistent (bad attribute values, dangling ids).
    #[error("malformed ONNX model: node {node}: {message}")]
    Malformed {
        /// The ONNX node (or graph input), as [`node_label`] names it.
        node: String,
        /// What is wrong.
        message: String,
    },
    /// The outputs asked for cannot be computed (unknown, or not float tensors).
    #[error("graph outputs: {0}")]
    Output(String),
    /// tract could not analyse the model (shapes, types).
    #[error("cannot analyse ONNX model: {0}")]
    Analysis(String),
    /// A pass could not handle a value.
    #[error("{pass}: {value} (\"{node}\"): {message}")]
    Pass {
        /// The pass name.
        pass: &'static str,
        /// The value concerned.
        value: ValueId,
        /// Its node name.
        node: String,
        /// What is wrong.
        message: String,
    },
    /// A stage was given a program it does not take.
    #[error("stage `{stage}`: {message}")]
    Stage {
        /// The stage's name.
        stage: &'static str,
        /// What is wrong.
        message: String,
    },
    /// Calibration needs samples.
    #[error("calibration: {0}")]
    Calibration(String),
    /// An IR invariant broke (a bug in a pass), or an op rejected its operands.
    #[error(transparent)]
    Ir(#[from] IrError),
    /// The TFHE circuit a lowering made fails its verifier (a bug in `lower_fhe`).
    #[error("lower_fhe made an invalid circuit: {0}")]
    Circuit(#[from] secc_ir::lowered::CircuitError),
    /// The SMPC plan a lowering made fails its verifier (a bug in `lower_mpc`).
    #[error("lower_mpc made an invalid plan: {0}")]
    Plan(#[from] secc_ir::lowered::PlanError),
}
