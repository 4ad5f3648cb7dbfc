//! tract's typed model to IR, one tract op at a time (see `TRANSLATORS` below for the
//! table). Values tract already knows (folded constants) become `const` nodes.

use super::activation::Activation;
use super::input_shape;
use crate::error::{node_label, quoted};
use crate::CompileError;
use secc_ir::ops::{
    AvgPool, BatchMatMul, Binary, BinaryKind, Conv, FakeQuant, Gather, MatMul, MaxPool, Reduce, ReduceKind, Reshape,
    Softmax, Unary, UnaryKind, Window,
};
use secc_ir::{Graph, Op, Quant, Shape, Tensor, ValueId};
use std::collections::HashMap;
use std::path::Path;
use tract_onnx::pb::{GraphProto, ModelProto};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::array::{Pad, PadMode};
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::change_axes::AxisOp;
use tract_onnx::tract_core::ops::cnn::{
    Conv as TConv, KernelFormat, MaxPool as TMaxPool, PaddingSpec, PoolSpec, SumPool,
};
use tract_onnx::tract_core::ops::einsum::EinSum;
use tract_onnx::tract_core::ops::element_wise::ElementWiseOp;
use tract_onnx::tract_core::ops::nn::{DataFormat, Reduce as TReduce, Reducer, Softmax as TSoftmax, SoftmaxKind};
use tract_onnx::tract_core::ops::quant::{DequantizeLinearF32, QuantizeLinearI8, QuantizeLinearU8};
use tract_onnx::tract_core::ops::source::TypedSource;

type Translator = fn(&mut Ctx, &TypedNode) -> Result<ValueId, String>;

/// tract op name → translator. The ONNX op each comes from is in the comment.
const TRANSLATORS: &[(&str, Translator)] = &[
    ("Conv", conv),          // Conv
    ("EinSum", einsum),      // MatMul, Gemm
    ("Add", binary),         // Add, Gemm's C, BatchNormalization
    ("Sub", binary),         // Sub
    ("Mul", binary),         // Mul, BatchNormalization
    ("Div", binary),         // Div
    ("Max", binary),         // Relu, Clip, Max
    ("Min", binary),         // Clip, Min
    ("Pow", binary),         // Pow
    ("MaxPool", max_pool),   // MaxPool
    ("SumPool", avg_pool),   // AveragePool
    ("Reshape", reshape),    // Reshape, Flatten
    ("AddAxis", reshape),    // Unsqueeze
    ("RmAxis", reshape),     // Squeeze
    ("MoveAxis", reshape),   // Transpose (a move per permuted axis)
    ("Identity", identity),  // Identity
    ("Cast", cast),          // Cast to float
    ("Dropout", dropout),    // Dropout
    ("Softmax", softmax),    // Softmax
    ("LogSoftmax", softmax), // LogSoftmax
    ("Slice", movement),     // Slice, Split
    ("Gather", movement),    // Gather
    ("Pad", movement),       // Pad
    ("Concat", movement),    // Concat
    ("Tile", movement),      // Tile
    // Slice
    ("StridedSlice", movement),
    // Expand
    ("MultiBroadcastTo", movement),
    // ReduceSum, ReduceMean, GlobalAveragePool
    ("Reduce<Sum>", reduce),
    // ReduceMax, GlobalMaxPool
    ("Reduce<Max>", reduce),
    // DequantizeLinear after a QuantizeLinear
    ("DequantizeLinearF32", dequantize_linear),
];

struct Ctx<'a> {
    model: &'a TypedModel,
    graph: Graph,
    values: HashMap<OutletId, ValueId>,
    /// Per-tensor QuantizeLinear nodes by tract node id, waiting for their DequantizeLinear.
    quantized: HashMap<usize, QuantizeLinear>,
}

/// A per-tensor ONNX QuantizeLinear as tract holds it.
struct QuantizeLinear {
    /// The float value it reads.
    x: ValueId,
    /// tract keeps `1 / scale`; the DequantizeLinear has the scale itself.
    inverse_scale: f32,
    zero_point: i64,
    /// The integer type's range.
    lo: i64,
    hi: i64,
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
    model_dir: Option<&Path>,
    name: &str,
) -> Result<Graph, CompileError> {
    let analysis = |e: TractError| CompileError::Analysis(format!("{e:#}"));
    let initializers: Vec<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let inputs: Vec<_> = graph.input.iter().filter(|i| !initializers.contains(&i.name.as_str())).collect();
    // An exporter writes a dynamic (batch) axis as a symbol in the inputs, the outputs
    // and the shapes of intermediate values; secc fixes it to the sample's size, which
    // those declared shapes would contradict: tract infers them from the inputs instead.
    let symbolic = inputs.iter().any(|i| input_shape(i).is_ok_and(|s| s.len() != fixed_dims(i)));
    let onnx = onnx.clone().with_ignore_value_info(symbolic).with_ignore_output_shapes(symbolic);
    // torch's dynamo exporter writes the weights to `model.onnx.data` next to the
    // model: tract reads such external data relative to the model's directory.
    let parsed = onnx.parse(proto, model_dir.and_then(Path::to_str)).map_err(analysis)?;
    if !parsed.unresolved_inputs.is_empty() {
        let names = parsed.unresolved_inputs.join(", ");
        return Err(CompileError::Analysis(format!("values used but never defined: {names}")));
    }
    let mut model = parsed.model;
    for (i, input) in inputs.iter().enumerate() {
        let shape = input_shape(input)?;
        model = model.with_input_fact(i, f32::fact(shape).into()).map_err(analysis)?;
    }
    let typed = model.into_typed().map_err(analysis)?;
    let onnx_nodes = OnnxNodes::new(graph);
    let mut ctx = Ctx { model: &typed, graph: Graph::new(name), values: HashMap::new(), quantized: HashMap::new() };
    let order = typed.eval_order().map_err(analysis)?;
    for id in order {
        let node = typed.node(id);
        let fail = |message: String| CompileError::UnsupportedForm {
            op: node.op.name().to_string(),
            node: onnx_nodes.label(&node.name),
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
            } else if node.op_is::<super::ml::IrOp>() {
                ir_op
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

/// How many of a graph input's declared dimensions are fixed numbers.
fn fixed_dims(input: &tract_onnx::pb::ValueInfoProto) -> usize {
    use tract_onnx::pb::tensor_shape_proto::dimension::Value;
    use tract_onnx::pb::type_proto::Value as Ty;
    match input.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(Ty::TensorType(t)) => {
            t.shape.iter().flat_map(|s| &s.dim).filter(|d| matches!(d.value, Some(Value::DimValue(_)))).count()
        }
        _ => 0,
    }
}

/// The ONNX nodes by the names tract gives them: an ONNX node's name, or its first
/// output where the name is empty; the nodes tract expands an ONNX op into are named
/// after it plus `.suffix`.
struct OnnxNodes(HashMap<String, String>);

impl OnnxNodes {
    fn new(graph: &GraphProto) -> OnnxNodes {
        let named = graph.node.iter().enumerate().filter_map(|(i, n)| {
            let tract = if n.name.is_empty() { n.output.first()? } else { &n.name };
            Some((tract.clone(), node_label(n, i)))
        });
        OnnxNodes(named.collect())
    }

    /// How errors name the ONNX node tract's node `tract_name` comes from.
    fn label(&self, tract_name: &str) -> String {
        let mut name = tract_name;
        loop {
            if let Some(label) = self.0.get(name) {
                return label.clone();
            }
            match name.rsplit_once('.') {
                Some((head, _)) => name = head,
                None => return quoted(tract_name),
            }
        }
    }
}

/// ONNX-order padding of a window, and its `ceil_mode`.
fn pads(
    spec: &PaddingSpec,
    input: &[usize],
    kernel: &[usize],
    strides: &[usize],
    dilations: &[usize],
) -> (Vec<usize>, bool) {
    let pads = match spec {
        PaddingSpec::Valid => vec![0; 2 * kernel.len()],
        PaddingSpec::Explicit(b, a) => b.iter().chain(a.iter()).copied().collect(),
        PaddingSpec::ExplicitOnnxPool(b, a, ceil) => return (b.iter().chain(a.iter()).copied().collect(), *ceil),
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
    };
    (pads, false)
}

/// The 2-D window of a pooling or convolution, and its dilations. A 1-D one (input
/// `[n, c, l]`) becomes the 2-D window `[1, k]` over `[n, c, 1, l]`: the IR's windows
/// are 2-D, and an axis of length 1 moves no data.
fn window(ctx: &Ctx, node: &TypedNode, spec: &PoolSpec) -> Result<(Window, Vec<usize>), String> {
    if spec.data_format != DataFormat::NCHW {
        return Err(format!("data format {:?} is not supported (NCHW only)", spec.data_format));
    }
    let x = concrete(&ctx.model.outlet_fact(node.inputs[0]).map_err(|e| e.to_string())?.shape)?;
    let d = x.rank().saturating_sub(2);
    if !(1..=2).contains(&d) {
        return Err(format!("only 1-D and 2-D windows over NCL or NCHW inputs are supported, input is {x}"));
    }
    let kernel = spec.kernel_shape.to_vec();
    let strides = spec.strides.as_ref().map_or(vec![1; d], |s| s.to_vec());
    let dilations = spec.dilations.as_ref().map_or(vec![1; d], |d| d.to_vec());
    let (pads, ceil_mode) = pads(&spec.padding, &x.0[2..], &kernel, &strides, &dilations);
    if d == 1 {
        let lift = |v: Vec<usize>, unit: usize| [vec![unit], v].concat();
        let pads = vec![0, pads[0], 0, pads[1]];
        return Ok((
            Window { kernel: lift(kernel, 1), strides: lift(strides, 1), pads, ceil_mode },
            lift(dilations, 1),
        ));
    }
    Ok((Window { kernel, strides, pads, ceil_mode }, dilations))
}

/// Pushes `op` on operand 0 of `node` (and `rest`), reading a 1-D input `[n, c, l]` as
/// `[n, c, 1, l]` and its output back (see [`window`]).
fn windowed(ctx: &mut Ctx, node: &TypedNode, op: Op, rest: Vec<ValueId>) -> Result<ValueId, String> {
    let x = ctx.operand(node, 0);
    let shape = ctx.graph.ty(x).shape.clone();
    if shape.rank() != 3 {
        return ctx.push(op, [vec![x], rest].concat(), node);
    }
    let lifted = Shape(vec![shape.0[0], shape.0[1], 1, shape.0[2]]);
    let name = format!("{}.2d", node.name);
    let x = ctx.graph.push(Op::Reshape(Reshape { shape: lifted }), vec![x], name.clone()).map_err(|e| e.to_string())?;
    let y = ctx.graph.push(op, [vec![x], rest].concat(), name).map_err(|e| e.to_string())?;
    let out = ctx.out_shape(node)?;
    ctx.push(Op::Reshape(Reshape { shape: out }), vec![y], node)
}

fn conv(ctx: &mut Ctx, node: &TypedNode) -> Result<ValueId, String> {
    let op = node.op_as::<TConv>().expect("Conv");
    if op.q_params.is_some() || op.kernel_fmt != KernelFormat::OIHW {
        return Err("only float convolutions with OIHW kernels are supported".into());
    }
    let (w, dilations) = window(ctx, node, &op.pool_spec)?;
    let conv = Conv { strides: w.strides, pads: w.pads, dilations, group: op.group, x_zp: 0 };
    let constant = |ctx: &Ctx, i: usize| {
        ctx.graph
            .const_value(ctx.operand(node, i))
            .and_then(Tensor::as_f32)
            .cloned()
            .ok_or("the kernel and bias must be constants")
    };
    // A 1-D kernel [o, c, k] is the 2-D kernel [o, c, 1, k].
    let kernel = constant(ctx, 1)?;
    let outputs = kernel.shape()[0];
    let mut inputs = vec![match kernel.shape() {
        &[o, c, k] => {
            let kernel = kernel.into_shape_with_order(vec![o, c, 1, k]).map_err(|e| e.to_string())?;
            ctx.graph.push_const(Tensor::F32(kernel), None, format!("{}.weight", node.name))
        }
        _ => ctx.operand(node, 1),
    }];
    // tract writes a missing bias as a scalar 0; a scalar bias is one per output channel.
    if node.inputs.len() > 2 {
        let bias = constant(ctx, 2)?;
        if bias.shape() == [outputs] {
            inputs.push(ctx.operand(node, 2));
        } else if bias.iter().any(|&b| b != 0.0) {
            let bias = bias.broadcast(vec![outputs]).ok_or("the bias is not one value per output channel")?.to_owned();
            inputs.push(ctx.graph.push_const(Tensor::F32(bias), None, format!("{}.bias", node.name)));
        }
    }
    windowed(ctx, node, Op::Conv(conv), inputs)
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
    windowed(ctx, node, Op::MaxPool(MaxPool { window }), vec![])
}

fn avg_pool(ctx: &mut Ctx, node: &TypedNode) -> Result<ValueId, String> {
    let op = node.op_as::<SumPool>().expect("SumPool");
    if !op.normalize {
        return Err("un-normalized sum pooling is not supported".into());
    }
    let (window, dil) = window(ctx, node, &op.pool_spec)?;
    if dil.iter().any(|&d| d != 1) {
        return Err("dilated pooling is not supported".into());
    }
    windowed(ctx, node, Op::AvgPool(AvgPool { window, count_include_pad: op.count_include_pad }), vec![])
}

fn reduce(ctx: &mut Ctx, node: &TypedNode) -> Result<ValueId, String> {
    let op = node.op_as::<TReduce>().expect("Reduce");
    let kind = match op.reducer {
        Reducer::Sum => ReduceKind::Sum,
        Reducer::Max => ReduceKind::Max,
        _ => unreachable!("TRANSLATORS routes sums and maxima only"),
    };
    let mut axes = op.axes.to_vec();
    axes.sort_unstable();
    axes.dedup();
    let x = ctx.operand(node, 0);
    ctx.push(Op::Reduce(Reduce { kind, axes, x_zp: 0 }), vec![x], node)
}

/// An op that only moves data (slices, transposes, gathers with constant indices,
/// pads, concatenations, broadcasts, tiles) becomes a `gather`: tract runs the op
/// itself on tensors of element numbers (computed operands) and of `−1 − k` for the
/// constant elements (constant operands, the padding value), so the selection is
/// tract's own semantics. Integer inputs (indices, bounds) are passed as they are.
fn movement(ctx: &mut Ctx, node: &TypedNode) -> Result<ValueId, String> {
    let (mut operands, mut values, mut inputs) = (Vec::new(), Vec::new(), TVec::new());
    let mut next = 0i64;
    for (i, outlet) in node.inputs.iter().enumerate() {
        let fact = ctx.model.outlet_fact(*outlet).map_err(|e| e.to_string())?;
        let v = ctx.operand(node, i);
        let shape = concrete(&fact.shape)?;
        let numbers: Vec<i64> = if fact.datum_type != f32::datum_type() {
            let k = fact.konst.as_ref().ok_or("an index operand is not a constant")?;
            inputs.push(k.cast_to::<i64>().map_err(|e| e.to_string())?.into_owned().into_tvalue());
            continue;
        } else if let Some(c) = ctx.graph.const_value(v).and_then(Tensor::as_f32) {
            let base = values.len() as i64;
            values.extend(c.iter().map(|&x| x as f64));
            (0..c.len() as i64).map(|e| -1 - base - e).collect()
        } else {
            operands.push(v);
            next += shape.numel() as i64;
            (next - shape.numel() as i64..next).collect()
        };
        let t = tract_ndarray::ArrayD::from_shape_vec(shape.0.clone(), numbers).map_err(|e| e.to_string())?;
        inputs.push(tract_onnx::prelude::Tensor::from(t).into_tvalue());
    }
    if operands.is_empty() {
        return Err("moves no computed value".into());
    }
    // The padding value is a constant element too.
    let padded;
    let op: &dyn TypedOp = match node.op_as::<Pad>() {
        Some(Pad { pads, mode: PadMode::Constant(c) }) => {
            values.push(c.cast_to_scalar::<f32>().map_err(|e| e.to_string())? as f64);
            padded = Pad { pads: pads.clone(), mode: PadMode::Constant(tensor0(-(values.len() as i64)).into()) };
            &padded
        }
        _ => node.op.as_ref(),
    };
    let out =
        op.eval_out_of_plan(inputs).map_err(|e| format!("{e:#}"))?.ok_or("tract cannot run this op outside a plan")?;
    let index = out[0].cast_to::<i64>().map_err(|e| e.to_string())?;
    let index: Vec<i64> = index.to_plain_array_view::<i64>().map_err(|e| e.to_string())?.iter().copied().collect();
    let shape = ctx.out_shape(node)?;
    // Every element in place (a slice or broadcast that keeps everything): a reshape.
    if let [x] = operands[..] {
        if index.len() == ctx.graph.ty(x).shape.numel() && index.iter().zip(0..).all(|(&i, j)| i == j) {
            return ctx.push(Op::Reshape(Reshape { shape }), vec![x], node);
        }
    }
    ctx.push(Op::Gather(Gather { shape, index, values }), operands, node)
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
fn batch_matmul(
    ctx: &mut Ctx,
    node: &TypedNode,
    (a, b, out): (&[char], &[char], &[char]),
) -> Option<Result<ValueId, String>> {
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
    // torch writes SiLU as x · sigmoid(x): one function of x.
    let sigmoid_of = |s: ValueId, x: ValueId| {
        let n = ctx.graph.node(s);
        matches!(n.op, Op::Unary(Unary { kind: UnaryKind::Sigmoid })) && n.inputs == [x]
    };
    if kind == BinaryKind::Mul && (sigmoid_of(a, b) || sigmoid_of(b, a)) {
        let x = if sigmoid_of(a, b) { b } else { a };
        return ctx.push(Op::Unary(Unary { kind: UnaryKind::Silu }), vec![x], node);
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
        _ if op.0.is::<Activation>() => op.0.downcast_ref::<Activation>().expect("checked").0,
        "Ln" => UnaryKind::Log,
        "QuantizeLinearU8" | "QuantizeLinearI8" => return quantize_linear(ctx, node),
        "RoundHalfToEven" => {
            return Err("rounding (ONNX Round, or a per-axis QuantizeLinear of a computed tensor, which tract \
                        expands into it) is not supported; quantize_static quantizes activations per tensor"
                .into())
        }
        "Sigmoid" => UnaryKind::Sigmoid,
        "Tanh" => UnaryKind::Tanh,
        "Erf" => UnaryKind::Erf,
        "Exp" => UnaryKind::Exp,
        "Neg" => UnaryKind::Neg,
        "Abs" => UnaryKind::Abs,
        "Sqrt" => UnaryKind::Sqrt,
        "Recip" => UnaryKind::Reciprocal,
        "Square" => UnaryKind::Square,
        "Rsqrt" => UnaryKind::Rsqrt,
        "Softplus" => UnaryKind::Softplus,
        other => return Err(format!("element-wise op {other} is not supported")),
    };
    let x = ctx.operand(node, 0);
    ctx.push(Op::Unary(Unary { kind }), vec![x], node)
}

fn reshape(ctx: &mut Ctx, node: &TypedNode) -> Result<ValueId, String> {
    let shape = ctx.out_shape(node)?;
    let x = ctx.operand(node, 0);
    if let Some(&AxisOp::Move(from, to)) = node.op_as::<AxisOp>() {
        // A move is a reshape when the moved axis, or every axis it passes, has length 1.
        let dims = &ctx.graph.ty(x).shape.0;
        let passed = from.min(to)..=from.max(to);
        if dims[from] != 1 && passed.filter(|&i| i != from).any(|i| dims[i] != 1) {
            return movement(ctx, node);
        }
    }
    ctx.push(Op::Reshape(Reshape { shape }), vec![x], node)
}

/// An IR op the ONNX-ML builders wired (TreeEnsembleRegressor/Classifier, Normalizer).
fn ir_op(ctx: &mut Ctx, node: &TypedNode) -> Result<ValueId, String> {
    let op = node.op_as::<super::ml::IrOp>().expect("IrOp");
    let x = ctx.operand(node, 0);
    ctx.push(op.0.clone(), vec![x], node)
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

/// Dropout at inference is the identity. In training mode with a non-zero ratio it
/// draws a random mask, which is not a function of the input: refused.
fn dropout(ctx: &mut Ctx, node: &TypedNode) -> Result<ValueId, String> {
    let (mut training, mut ratio) = (false, 0.5f32);
    for &i in &node.inputs[1..] {
        let fact = ctx.model.outlet_fact(i).map_err(|e| e.to_string())?;
        let k = fact.konst.as_ref().ok_or("Dropout's ratio and training_mode must be constants")?;
        if k.datum_type() == bool::datum_type() {
            training = k.cast_to_scalar::<bool>().map_err(|e| e.to_string())?;
        } else {
            ratio = k.cast_to_scalar::<f32>().map_err(|e| e.to_string())?;
        }
    }
    if training && ratio != 0.0 {
        return Err(format!("Dropout in training mode (ratio {ratio}) drops at random; only inference is supported"));
    }
    identity(ctx, node)
}

/// A per-tensor QuantizeLinear: held until the DequantizeLinear that reads it, which
/// makes the pair one `fake_quant`. Its integer output must not be read otherwise: the
/// float IR has no integer tensors.
fn quantize_linear(ctx: &mut Ctx, node: &TypedNode) -> Result<ValueId, String> {
    let op = node.op_as::<ElementWiseOp>().expect("element-wise op");
    let out = OutletId::new(node.id, 0);
    let is_output = ctx.model.output_outlets().map_err(|e| e.to_string())?.contains(&out);
    let readers = ctx.model.outlet_successors(out);
    if is_output || readers.is_empty() || readers.iter().any(|r| !ctx.model.node(r.node).op_is::<DequantizeLinearF32>())
    {
        return Err("its integer output is read by something other than a DequantizeLinear; secc takes \
                    QuantizeLinear only in QDQ pairs"
            .into());
    }
    let (inverse_scale, zero_point, lo, hi) = if let Some(q) = op.0.downcast_ref::<QuantizeLinearU8>() {
        (q.scale, q.zero_point as i64, u8::MIN as i64, u8::MAX as i64)
    } else {
        let q = op.0.downcast_ref::<QuantizeLinearI8>().expect("QuantizeLinearI8");
        (q.scale, q.zero_point as i64, i8::MIN as i64, i8::MAX as i64)
    };
    let x = ctx.operand(node, 0);
    ctx.quantized.insert(node.id, QuantizeLinear { x, inverse_scale, zero_point, lo, hi });
    Ok(x)
}

/// A per-tensor DequantizeLinear of a QuantizeLinear's output: the pair is a `fake_quant`
/// on the grid both name. (One of a constant was folded before it reached here.)
fn dequantize_linear(ctx: &mut Ctx, node: &TypedNode) -> Result<ValueId, String> {
    let dq = node.op_as::<DequantizeLinearF32>().expect("DequantizeLinearF32");
    let Some(q) = ctx.quantized.get(&node.inputs[0].node) else {
        return Err("it reads a computed integer tensor that no QuantizeLinear made".into());
    };
    if q.zero_point != dq.zero_point as i64 || q.inverse_scale != dq.scale.recip() {
        return Err(format!(
            "its scale {} and zero point {} differ from those of the QuantizeLinear it reads",
            dq.scale, dq.zero_point
        ));
    }
    let fake = FakeQuant { quant: Quant::per_tensor(dq.scale as f64, q.zero_point), lo: q.lo, hi: q.hi };
    let x = q.x;
    ctx.push(Op::FakeQuant(fake), vec![x], node)
}
