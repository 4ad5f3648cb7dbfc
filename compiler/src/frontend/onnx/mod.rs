//! ONNX to float IR.
//!
//! The protobuf is read first: every node's op type is checked against
//! [`SUPPORTED_OPS`], so an unsupported op is reported by its ONNX name and node name
//! before anything else runs. Tree ensembles are read from the protobuf ([`tree`]);
//! everything else goes through tract's typed model ([`translate`]), whose ops map
//! one-to-one onto IR ops. Symbolic (batch) dimensions are fixed to 1: secc runs one
//! sample at a time.

mod translate;
mod tree;

use crate::CompileError;
use secc_ir::Graph;
use std::path::Path;
use tract_onnx::pb::{self, GraphProto};
use tract_onnx::prelude::Framework;

/// ONNX op types (default domain) the frontend translates.
pub const SUPPORTED_OPS: &[&str] = &[
    "Abs",
    "Add",
    "AveragePool",
    "BatchNormalization",
    "Clip",
    "Constant",
    "Conv",
    "Div",
    "Erf",
    "Exp",
    "Flatten",
    "Gelu",
    "Gemm",
    "Identity",
    "LeakyRelu",
    "LogSoftmax",
    "MatMul",
    "Max",
    "MaxPool",
    "Min",
    "Mul",
    "Neg",
    "Pow",
    "Relu",
    "Reshape",
    "Sigmoid",
    "Softmax",
    "Softplus",
    "Sqrt",
    "Squeeze",
    "Sub",
    "Tanh",
    "Unsqueeze",
];

/// ONNX-ML op types (domain `ai.onnx.ml`) the frontend translates.
pub const SUPPORTED_ML_OPS: &[&str] = &["TreeEnsembleClassifier", "TreeEnsembleRegressor"];

/// Reads an ONNX model into the float IR (verified).
pub fn import_onnx(path: &Path) -> Result<Graph, CompileError> {
    let read_err = |e: &dyn std::fmt::Display| CompileError::OnnxRead { path: path.to_owned(), message: e.to_string() };
    let onnx = tract_onnx::onnx();
    let proto = onnx.proto_model_for_path(path).map_err(|e| read_err(&format!("{e:#}")))?;
    let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let name = match path.parent().and_then(Path::file_name) {
        Some(dir) if name == "model" => dir.to_string_lossy().into_owned(),
        _ => name,
    };
    import_proto(&onnx, &proto, path, &name)
}

/// Reads an ONNX model held in memory (no external data files) into the float IR;
/// `path` names the source in errors. The fuzzer's entry point to the frontend.
pub fn import_onnx_bytes(bytes: &[u8], path: &Path) -> Result<Graph, CompileError> {
    let onnx = tract_onnx::onnx();
    let proto = onnx
        .proto_model_for_read(&mut &bytes[..])
        .map_err(|e| CompileError::OnnxRead { path: path.to_owned(), message: format!("{e:#}") })?;
    import_proto(&onnx, &proto, path, "model")
}

fn import_proto(
    onnx: &tract_onnx::Onnx,
    proto: &pb::ModelProto,
    path: &Path,
    name: &str,
) -> Result<Graph, CompileError> {
    let graph = proto
        .graph
        .as_ref()
        .ok_or_else(|| CompileError::OnnxRead { path: path.to_owned(), message: "the file has no graph".into() })?;
    check_ops(graph)?;
    let ir = if graph.node.iter().any(|n| SUPPORTED_ML_OPS.contains(&n.op_type.as_str())) {
        tree::import_tree_graph(graph, name)?
    } else {
        // tract asserts rather than errs on some malformed models (a graph output that
        // names no value, say): a malformed model is the user's error, not a crash.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| translate::import_tract(onnx, proto, graph, name)))
            .map_err(|panic| CompileError::Analysis(format!("tract failed on this model: {}", panic_message(&*panic))))??
    };
    secc_ir::verify_graph(&ir)?;
    Ok(ir)
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
    for node in &graph.node {
        let ml = node.domain == "ai.onnx.ml";
        let known = if ml { SUPPORTED_ML_OPS } else { SUPPORTED_OPS };
        if (!ml && !node.domain.is_empty()) || !known.contains(&node.op_type.as_str()) {
            let op_type =
                if node.domain.is_empty() { node.op_type.clone() } else { format!("{}.{}", node.domain, node.op_type) };
            let supported = SUPPORTED_OPS.iter().chain(SUPPORTED_ML_OPS).copied().collect::<Vec<_>>().join(", ");
            return Err(CompileError::UnsupportedOp { op_type, node: node.name.clone(), supported });
        }
    }
    Ok(())
}

/// The declared shape of a graph input, symbolic dimensions fixed to 1.
fn input_shape(input: &pb::ValueInfoProto) -> Result<Vec<usize>, CompileError> {
    use pb::tensor_shape_proto::dimension::Value;
    use pb::type_proto::Value as Ty;
    let bad = |m: &str| CompileError::Malformed { node: input.name.clone(), message: m.into() };
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
