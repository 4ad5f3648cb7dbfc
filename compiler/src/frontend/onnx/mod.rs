//! ONNX to float IR.
//!
//! The protobuf is read first: the graph is cut down to the outputs secc computes
//! ([`outputs`]), then every remaining node's op type is checked against
//! [`SUPPORTED_OPS`], so an unsupported op is reported by its ONNX name and node name
//! before anything else runs. Then tract loads the graph, with secc's own builders
//! for the ONNX-ML ops ([`ml`]), and its typed model is translated one op at a time
//! ([`translate`]). Symbolic (batch) dimensions are fixed to 1: secc runs one sample
//! at a time.

mod activation;
mod ml;
mod outputs;
mod translate;

pub use outputs::OutputChoice;

use crate::error::{node_label, quoted};
use crate::CompileError;
use secc_ir::Graph;
use std::path::Path;
use tract_onnx::pb::{self, GraphProto};
use tract_onnx::prelude::Framework;

/// ONNX op types (default domain) the frontend translates.
pub const SUPPORTED_OPS: &[&str] = &[
    "Abs",
    "Acos",
    "Acosh",
    "Add",
    "Asin",
    "Asinh",
    "Atan",
    "Atanh",
    "AveragePool",
    "BatchNormalization",
    "Cast",
    "CastLike",
    "Ceil",
    "Celu",
    "Clip",
    "Concat",
    "Constant",
    "ConstantOfShape",
    "Conv",
    "Cos",
    "Cosh",
    "DequantizeLinear",
    "Div",
    "Dropout",
    "Elu",
    "Equal",
    "Erf",
    "Exp",
    "Expand",
    "Flatten",
    "Floor",
    "Gather",
    "Gelu",
    "Gemm",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "HardSigmoid",
    "HardSwish",
    "Identity",
    "LayerNormalization",
    "LeakyRelu",
    "Log",
    "LogSoftmax",
    "MatMul",
    "Max",
    "MaxPool",
    "Min",
    "Mish",
    "Mul",
    "Neg",
    "PRelu",
    "Pad",
    "Pow",
    "QuantizeLinear",
    "Reciprocal",
    "ReduceMax",
    "ReduceMean",
    "ReduceSum",
    "Relu",
    "Reshape",
    "Round",
    "Selu",
    "Shape",
    "Shrink",
    "Sigmoid",
    "Sign",
    "Sin",
    "Sinh",
    "Slice",
    "Softmax",
    "Softplus",
    "Softsign",
    "Split",
    "Sqrt",
    "Squeeze",
    "Sub",
    "Tan",
    "Tanh",
    "ThresholdedRelu",
    "Tile",
    "Transpose",
    "Unsqueeze",
    "Where",
];

/// ONNX-ML op types (domain `ai.onnx.ml`) the frontend translates.
pub const SUPPORTED_ML_OPS: &[&str] =
    &["LinearClassifier", "LinearRegressor", "Normalizer", "Scaler", "TreeEnsembleClassifier", "TreeEnsembleRegressor"];

/// tract's ONNX reader with secc's own builders: the activations it would expand into
/// selects ([`activation`]) and the ONNX-ML ops ([`ml`]).
fn onnx() -> tract_onnx::Onnx {
    let mut onnx = tract_onnx::onnx();
    activation::register(&mut onnx.op_register);
    ml::register(&mut onnx.op_register);
    onnx
}

/// Reads an ONNX model into the float IR (verified), computing its default outputs.
pub fn import_onnx(path: &Path) -> Result<Graph, CompileError> {
    import_onnx_outputs(path, &[]).map(|(g, _)| g)
}

/// Reads an ONNX model into the float IR (verified), computing the graph outputs
/// `outputs` (all float outputs when empty; see [`OutputChoice`]).
pub fn import_onnx_outputs(path: &Path, outputs: &[String]) -> Result<(Graph, OutputChoice), CompileError> {
    let read_err = |e: &dyn std::fmt::Display| CompileError::OnnxRead { path: path.to_owned(), message: e.to_string() };
    let onnx = onnx();
    let proto = onnx.proto_model_for_path(path).map_err(|e| read_err(&format!("{e:#}")))?;
    let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let name = match path.parent().and_then(Path::file_name) {
        Some(dir) if name == "model" => dir.to_string_lossy().into_owned(),
        _ => name,
    };
    import_proto(&onnx, proto, path, path.parent(), &name, outputs)
}

/// Reads an ONNX model held in memory (no external data files) into the float IR;
/// `path` names the source in errors. The fuzzer's entry point to the frontend.
pub fn import_onnx_bytes(bytes: &[u8], path: &Path) -> Result<Graph, CompileError> {
    let onnx = onnx();
    let proto = onnx
        .proto_model_for_read(&mut &bytes[..])
        .map_err(|e| CompileError::OnnxRead { path: path.to_owned(), message: format!("{e:#}") })?;
    import_proto(&onnx, proto, path, None, "model", &[]).map(|(g, _)| g)
}

fn import_proto(
    onnx: &tract_onnx::Onnx,
    mut proto: pb::ModelProto,
    path: &Path,
    model_dir: Option<&Path>,
    name: &str,
    outputs: &[String],
) -> Result<(Graph, OutputChoice), CompileError> {
    let graph = proto
        .graph
        .as_mut()
        .ok_or_else(|| CompileError::OnnxRead { path: path.to_owned(), message: "the file has no graph".into() })?;
    let choice = outputs::select_outputs(graph, outputs)?;
    check_ops(graph)?;
    let graph = proto.graph.as_ref().expect("checked above");
    // tract asserts rather than errs on some malformed models (a graph output that
    // names no value, say): a malformed model is the user's error, not a crash.
    let ir = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        translate::import_tract(onnx, &proto, graph, model_dir, name)
    }))
    .map_err(|panic| CompileError::Analysis(format!("tract failed on this model: {}", panic_message(&*panic))))??;
    secc_ir::verify_graph(&ir)?;
    Ok((ir, choice))
}

/// The message a panic carried.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic.downcast_ref::<&str>().copied().or_else(|| panic.downcast_ref::<String>().map(String::as_str)).unwrap_or("?")
}

/// Whether a panic comes from tract's own sources: the import catches those and turns
/// them into errors, so a panic hook may keep quiet about them.
pub fn is_tract_panic(info: &std::panic::PanicHookInfo<'_>) -> bool {
    info.location().is_some_and(|l| l.file().contains("/tract-"))
}

fn check_ops(graph: &GraphProto) -> Result<(), CompileError> {
    for (index, node) in graph.node.iter().enumerate() {
        let ml = node.domain == "ai.onnx.ml";
        let known = if ml { SUPPORTED_ML_OPS } else { SUPPORTED_OPS };
        if (!ml && !node.domain.is_empty()) || !known.contains(&node.op_type.as_str()) {
            let op_type =
                if node.domain.is_empty() { node.op_type.clone() } else { format!("{}.{}", node.domain, node.op_type) };
            let supported = SUPPORTED_OPS.iter().chain(SUPPORTED_ML_OPS).copied().collect::<Vec<_>>().join(", ");
            return Err(CompileError::UnsupportedOp { op_type, node: node_label(node, index), supported });
        }
    }
    Ok(())
}

/// The declared shape of a graph input, symbolic dimensions fixed to 1.
fn input_shape(input: &pb::ValueInfoProto) -> Result<Vec<usize>, CompileError> {
    use pb::tensor_shape_proto::dimension::Value;
    use pb::type_proto::Value as Ty;
    let bad = |m: &str| CompileError::Malformed { node: quoted(&input.name), message: m.into() };
    let Some(Ty::TensorType(t)) = input.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
        return Err(bad("graph input is not a tensor"));
    };
    // TensorProto.DataType 1 = FLOAT
    if t.elem_type != 1 {
        return Err(bad(&format!("graph input has element type {}; secc models take float32 inputs", t.elem_type)));
    }
    let shape = t.shape.as_ref().ok_or_else(|| bad("graph input has no shape"))?;
    shape
        .dim
        .iter()
        .map(|d| match d.value {
            Some(Value::DimValue(v)) if v > 0 => Ok(v as usize),
            Some(Value::DimValue(v)) => Err(bad(&format!("graph input has dimension {v}"))),
            _ => Ok(1),
        })
        .collect()
}
