//! tract's typed model to IR, one tract op at a time (see `TRANSLATORS` below for the
//! table). Values tract already knows (folded constants) become `const` nodes.

use super::input_shape;
use crate::CompileError;
use secc_ir::ops::{
    AvgPool, BatchMatMul, Binary, BinaryKind, Conv, MatMul, MaxPool, Reshape, Softmax, Unary, UnaryKind, Window,
};
use secc_ir::{Graph, Op, Shape, Tensor, ValueId};
use std::collections::HashMap;
use tract_onnx::pb::{GraphProto, ModelProto};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::change_axes::AxisOp;
use tract_onnx::tract_core::ops::cnn::{
    Conv as TConv, KernelFormat, MaxPool as TMaxPool, PaddingSpec, PoolSpec, SumPool,
};
use tract_onnx::tract_core::ops::einsum::EinSum;
use tract_onnx::tract_core::ops::element_wise::ElementWiseOp;
use tract_onnx::tract_core::ops::nn::{DataFormat, Softmax as TSoftmax, SoftmaxKind};
use tract_onnx::tract_core::ops::source::TypedSource;

type Translator = fn(&mut Ctx, &TypedNode) -> Result<ValueId, String>;

/// tract op name → translator. The ONNX op each comes from is in the comment.
const TRANSLATORS: &[(&str, Translator)] = &[
    ("Conv", conv),         // Conv
    ("EinSum", einsum),     // MatMul, Gemm
    ("Add", binary),        // Add, Gemm's C, BatchNormalization
    ("Sub", binary),        // Sub
    ("Mul", binary),        // Mul, BatchNormalization
    ("Div", binary),        // Div
    ("Max", binary),        // Relu, Clip, Max
    ("Min", binary),        // Clip, Min
    ("Pow", binary),        // Pow
    ("MaxPool", max_pool),  // MaxPool
    ("SumPool", avg_pool),  // AveragePool
    ("Reshape", reshape),   // Reshape, Flatten
    ("AddAxis", reshape),   // Unsqueeze
    ("RmAxis", reshape),    // Squeeze
    ("MoveAxis", reshape),  // Transpose of unit axes
    ("GeluExact", gelu),    // Gelu
    ("Identity", identity), // Identity
    ("Cast", cast),         // Cast to float
    ("Softmax", softmax),   // Softmax
    ("LogSoftmax", softmax), // LogSoftmax
];

struct Ctx<'a> {
    model: &'a TypedModel,
    graph: Graph,
    values: HashMap<OutletId, ValueId>,
}

impl Ctx<'_> {
    fn operand(&self, node: &TypedNode, i: usize) -> ValueId {
        self.values[&node.inputs[i]]
    }

    fn push(&mut self, op: Op, inputs: Vec<ValueId>, node: &TypedNode) -> Result<ValueId, String> {
        self.graph.push(op, inputs, node.name.clone()).map_err(|e| e.to_string())
    }

    fn out_shape(&self, node: &TypedNode) -> Result<Shape, String> {
        concrete(&node.outputs[0].fact.shape)
    }
}

fn concrete(shape: &ShapeFact) -> Result<Shape, String> {
    shape.as_concrete().map(|s| Shape(s.to_vec())).ok_or_else(|| format!("shape {shape:?} is not static"))
}

fn to_ir_tensor(t: &tract_onnx::prelude::Tensor) -> Result<Tensor, String> {
    let t = t.cast_to::<f32>().map_err(|e| format!("constant of type {:?}: {e}", t.datum_type()))?;
    let view = t.to_plain_array_view::<f32>().map_err(|e| e.to_string())?;
    Ok(Tensor::F32(view.to_owned().into_dyn()))
}

/// Translates tract's typed form of `proto` into a float IR graph.
pub(super) fn import_tract(
    onnx: &tract_onnx::Onnx,
    proto: &ModelProto,
    graph: &GraphProto,
    name: &str,
) -> Result<Graph, CompileError> {
    let analysis = |e: TractError| CompileError::Analysis(format!("{e:#}"));
    let mut model = onnx.model_for_proto_model(proto).map_err(analysis)?;
    let initializers: Vec<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let inputs: Vec<_> = graph.input.iter().filter(|i| !initializers.contains(&i.name.as_str())).collect();
    for (i, input) in inputs.iter().enumerate() {
        let shape = input_shape(input)?;
        model = model.with_input_fact(i, f32::fact(shape).into()).map_err(analysis)?;
    }
    let typed = model.into_typed().map_err(analysis)?;
    let mut ctx = Ctx { model: &typed, graph: Graph::new(name), values: HashMap::new() };
    let order = typed.eval_order().map_err(analysis)?;
    for id in order {
        let node = typed.node(id);
        let fail = |message: String| CompileError::UnsupportedForm {
            op: node.op.name().to_string(),
            node: node.name.clone(),
            message,
        };
        let fact = &node.outputs[0].fact;
        let value = if let Some(k) = fact.konst.as_ref().filter(|_| !node.op_is::<TypedSource>()) {
            let t = to_ir_tensor(k).map_err(fail)?;
            ctx.graph.push_const(t, None, node.name.clone())
        } else if node.op_is::<TypedSource>() {
            let index = typed.input_outlets().map_err(analysis)?.iter().position(|o| o.node == id).expect("input");
            let ty = secc_ir::TensorType::f32(concrete(&fact.shape).map_err(fail)?);
            ctx.push(Op::Input(secc_ir::ops::Input { index, ty }), vec![], node).map_err(fail)?
        } else {
            let name = node.op.name();
            let name = if let Some(e) = node.op_as::<ElementWiseOp>() { e.0.name() } else { name.to_string() };
            let translate = if node.op_is::<ElementWiseOp>() {
                unary as Translator
            } else {
                TRANSLATORS
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, t)| *t)
                    .ok_or_else(|| fail("secc has no translation for this operation".into()))?
            };
            translate(&mut ctx, node).map_err(fail)?
        };
        ctx.values.insert(OutletId::new(id, 0), value);
    }
    for o in typed.output_outlets().map_err(analysis)? {
        let v = ctx.values[o];
        ctx.graph.outputs.push(v);
    }
    let mut graph = ctx.graph;
    graph.compact();
    Ok(graph)
}

fn pads(
    spec: &PaddingSpec,
    input: &[usize],
    kernel: &[usize],
    strides: &[usize],
    dilations: &[usize],
) -> Result<Vec<usize>, String> {
    Ok(match spec {
        PaddingSpec::Valid => vec![0; 2 * kernel.len()],
        PaddingSpec::Explicit(b, a) => b.iter().chain(a.iter()).copied().collect(),
        PaddingSpec::ExplicitOnnxPool(b, a, ceil) => {
            if *ceil {
                return Err("ceil_mode=1 is not supported".into());
            }
            b.iter().chain(a.iter()).copied().collect()
        }
        PaddingSpec::SameUpper | PaddingSpec::SameLower => {
            let total: Vec<usize> = (0..kernel.len())
                .map(|i| {
                    let out = input[i].div_ceil(strides[i]);
                    ((out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1).saturating_sub(input[i])
                })
                .collect();
            let upper = matches!(spec, PaddingSpec::SameUpper);
            let before = total.iter().map(|t| if upper { t / 2 } else { t - t / 2 });
            let after = total.iter().map(|t| if upper { t - t / 2 } else { t / 2 });
            before.chain(after).collect()
        }
    })
}

fn window(ctx: &Ctx, node: &TypedNode, spec: &PoolSpec) -> Result<(Window, Vec<usize>), String> {
    if spec.data_format != DataFormat::NCHW {
        return Err(format!("data format {:?} is not supported (NCHW only)", spec.data_format));
    }
    let x = concrete(&ctx.model.outlet_fact(node.inputs[0]).map_err(|e| e.to_string())?.shape)?;
    if x.rank() != 4 {
        return Err(format!("only 2-D windows over NCHW inputs are supported, input is {x}"));
    }
    let kernel = spec.kernel_shape.to_vec();
    let strides = spec.strides.as_ref().map_or(vec![1; 2], |s| s.to_vec());
    let dilations = spec.dilations.as_ref().map_or(vec![1; 2], |d| d.to_vec());
    let pads = pads(&spec.padding, &x.0[2..], &kernel, &strides, &dilations)?;
    Ok((Window { kernel, strides, pads }, dilations))
}

fn conv(ctx: &mut Ctx, node: &TypedNode) -> Result<ValueId, String> {
    let op = node.op_as::<TConv>().expect("Conv");
    if op.q_params.is_some() || op.kernel_fmt != KernelFormat::OIHW {
        return Err("only float convolutions with OIHW kernels are supported".into());
    }
    let (w, dilations) = window(ctx, node, &op.pool_spec)?;
    let conv = Conv { strides: w.strides, pads: w.pads, dilations, group: op.group, x_zp: 0 };
    let inputs = (0..node.inputs.len()).map(|i| ctx.operand(node, i)).collect();
    ctx.push(Op::Conv(conv), inputs, node)
}

fn max_pool(ctx: &mut Ctx, node: &TypedNode) -> Result<ValueId, String> {
    let op = node.op_as::<TMaxPool>().expect("MaxPool");
    if op.with_index_outputs.is_some() {
        return Err("MaxPool's indices output is not supported".into());
    }
    let (window, dil) = window(ctx, node, &op.pool_spec)?;
    if dil.iter().any(|&d| d != 1) {
        return Err("dilated pooling is not supported".into());
    }
    let x = ctx.operand(node, 0);
    ctx.push(Op::MaxPool(MaxPool { window }), vec![x], node)
}

fn avg_pool(ctx: &mut Ctx, node: &TypedNode) -> Result<ValueId, String> {
    let op = node.op_as::<SumPool>().expect("SumPool");
    if !op.normalize {
        return Err("un-normalized sum pooling is not supported".into());
    }
    let (window, _) = window(ctx, node, &op.pool_spec)?;
    let x = ctx.operand(node, 0);
    ctx.push(Op::AvgPool(AvgPool { window, count_include_pad: op.count_include_pad }), vec![x], node)
}

/// `x · W` with a constant `W`, from any einsum of the form `…k,kn->…n` (or `nk`); or
/// the product of two computed tensors, `…mk,…kn->…mn` (or `…nk`).
fn einsum(ctx: &mut Ctx, node: &TypedNode) -> Result<ValueId, String> {
    let op = node.op_as::<EinSum>().expect("EinSum");
    let expr = op.axes.to_string();
    let unsupported = || {
        format!("einsum `{expr}` is neither a product with constant weights on the right nor a batched matrix product")
    };
    let (ins, out) = expr.split_once("->").ok_or_else(unsupported)?;
    let ins: Vec<Vec<char>> = ins.split(',').map(|s| s.chars().collect()).collect();
    let out: Vec<char> = out.chars().collect();
    if op.q_params.is_some() || ins.len() != 2 || node.inputs.len() != 2 {
        return Err(unsupported());
    }
    let (x, w) = (ctx.operand(node, 0), ctx.operand(node, 1));
    let Some(wv) = ctx.graph.const_value(w).and_then(Tensor::as_f32).cloned() else {
        return batch_matmul(ctx, node, (&ins[0], &ins[1], &out)).ok_or_else(unsupported)?;
    };
    let (xa, wa) = (&ins[0], &ins[1]);
    // x's last axis is contracted with one of w's two axes; the other is the output's last.
    let (Some(&k), 2) = (xa.last(), wa.len()) else { return Err(unsupported()) };
    let Some(kpos) = wa.iter().position(|&c| c == k) else { return Err(unsupported()) };
    let n = wa[1 - kpos];
    let expected: Vec<char> = xa[..xa.len() - 1].iter().copied().chain([n]).collect();
    if out != expected || out.contains(&k) {
        return Err(unsupported());
    }
    let wv = if kpos == 0 { wv } else { wv.t().to_owned() };
    let wc =
        ctx.graph.push_const(Tensor::F32(wv.as_standard_layout().to_owned()), None, format!("{}.weight", node.name));
    ctx.push(Op::MatMul(MatMul { x_zp: 0 }), vec![x, wc], node)
}

/// `a[P, m, k] · b[P, k, n]` (or `b[P, n, k]`) for one batch prefix `P`, when the
/// einsum axes `(a, b, out)` say so; `None` otherwise.
fn batch_matmul(ctx: &mut Ctx, node: &TypedNode, (a, b, out): (&[char], &[char], &[char])) -> Option<Result<ValueId, String>> {
    let r = a.len();
    if r < 2 || b.len() != r || out.len() != r || a[..r - 2] != b[..r - 2] || a[..r - 2] != out[..r - 2] {
        return None;
    }
    let (m, k) = (a[r - 2], a[r - 1]);
    let transpose_b = match (b[r - 2], b[r - 1]) {
        (bk, n) if bk == k && out[r - 2..] == [m, n] => false,
        (n, bk) if bk == k && out[r - 2..] == [m, n] => true,
        _ => return None,
    };
    if m == k || out[r - 1] == k {
        return None;
    }
    let operands = vec![ctx.operand(node, 0), ctx.operand(node, 1)];
    Some(ctx.push(Op::BatchMatMul(BatchMatMul { transpose_b }), operands, node))
}

fn binary(ctx: &mut Ctx, node: &TypedNode) -> Result<ValueId, String> {
    let op = node.op_as::<TypedBinOp>().expect("binary op");
    let kind = match op.0.name() {
        "Add" => BinaryKind::Add,
        "Sub" => BinaryKind::Sub,
        "Mul" => BinaryKind::Mul,
        "Div" => BinaryKind::Div,
        "Max" => BinaryKind::Max,
        "Min" => BinaryKind::Min,
        "Pow" => BinaryKind::Pow,
        other => return Err(format!("binary op {other} is not supported")),
    };
    let (a, b) = (ctx.operand(node, 0), ctx.operand(node, 1));
    let is_zero =
        |v: ValueId| ctx.graph.const_value(v).and_then(Tensor::as_f32).is_some_and(|t| t.iter().all(|&x| x == 0.0));
    // Relu arrives as max(x, 0); name it so dumps read like the model.
    let out_shape = ctx.out_shape(node)?;
    if kind == BinaryKind::Max && is_zero(b) && ctx.graph.ty(a).shape == out_shape {
        return ctx.push(Op::Unary(Unary { kind: UnaryKind::Relu }), vec![a], node);
    }
    ctx.push(Op::Binary(Binary { kind }), vec![a, b], node)
}

fn unary(ctx: &mut Ctx, node: &TypedNode) -> Result<ValueId, String> {
    let op = node.op_as::<ElementWiseOp>().expect("element-wise op");
    if op.0.name() == "Ln" {
        if let Some(v) = log_of_softmax(ctx, node)? {
            return Ok(v);
        }
    }
    let kind = match op.0.name().as_str() {
        "Sigmoid" => UnaryKind::Sigmoid,
        "Tanh" => UnaryKind::Tanh,
        "Erf" => UnaryKind::Erf,
        "Exp" => UnaryKind::Exp,
        "Neg" => UnaryKind::Neg,
        "Abs" => UnaryKind::Abs,
        "Sqrt" => UnaryKind::Sqrt,
        "Recip" => UnaryKind::Reciprocal,
        "Softplus" => UnaryKind::Softplus,
        other => return Err(format!("element-wise op {other} is not supported")),
    };
    let x = ctx.operand(node, 0);
    ctx.push(Op::Unary(Unary { kind }), vec![x], node)
}

fn gelu(ctx: &mut Ctx, node: &TypedNode) -> Result<ValueId, String> {
    let x = ctx.operand(node, 0);
    ctx.push(Op::Unary(Unary { kind: UnaryKind::Gelu }), vec![x], node)
}

fn reshape(ctx: &mut Ctx, node: &TypedNode) -> Result<ValueId, String> {
    let shape = ctx.out_shape(node)?;
    let x = ctx.operand(node, 0);
    if let Some(&AxisOp::Move(from, to)) = node.op_as::<AxisOp>() {
        // A move is a reshape when the moved axis, or every axis it passes, has length 1.
        let dims = &ctx.graph.ty(x).shape.0;
        let passed = from.min(to)..=from.max(to);
        if dims[from] != 1 && passed.filter(|&i| i != from).any(|i| dims[i] != 1) {
            return Err("transposes that move data are not supported".into());
        }
    }
    ctx.push(Op::Reshape(Reshape { shape }), vec![x], node)
}

fn identity(ctx: &mut Ctx, node: &TypedNode) -> Result<ValueId, String> {
    Ok(ctx.operand(node, 0))
}

fn cast(ctx: &mut Ctx, node: &TypedNode) -> Result<ValueId, String> {
    let to = node.outputs[0].fact.datum_type;
    if to != f32::datum_type() {
        return Err(format!("casts to {to:?} are not supported (float32 only)"));
    }
    identity(ctx, node)
}

fn softmax(ctx: &mut Ctx, node: &TypedNode) -> Result<ValueId, String> {
    let op = node.op_as::<TSoftmax>().expect("Softmax");
    if op.quant_output_dt.is_some() {
        return Err("quantized softmax is not supported".into());
    }
    let mut axes = op.axes.to_vec();
    axes.sort_unstable();
    let x = ctx.operand(node, 0);
    ctx.push(Op::Softmax(Softmax { axes, log: op.kind == SoftmaxKind::LogSoftmax }), vec![x], node)
}

/// tract expands `LogSoftmax` into `ln(softmax(x))`, which underflows to -inf where a
/// probability rounds to 0: the log of a softmax nothing else reads is one `log_softmax`.
fn log_of_softmax(ctx: &mut Ctx, node: &TypedNode) -> Result<Option<ValueId>, String> {
    let s = ctx.operand(node, 0);
    let Op::Softmax(Softmax { axes, log: false }) = &ctx.graph.node(s).op else { return Ok(None) };
    if ctx.model.outlet_successors(node.inputs[0]).len() != 1 {
        return Ok(None);
    }
    let (axes, x) = (axes.clone(), ctx.graph.node(s).inputs[0]);
    ctx.push(Op::Softmax(Softmax { axes, log: true }), vec![x], node).map(Some)
}
