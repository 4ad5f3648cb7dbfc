//! Float elementwise ops: `relu`, `sigmoid`, `tanh`, `erf`, `gelu`, ... (unary) and
//! `add`, `sub`, `mul`, `div`, `max`, `min`, `pow` (binary, NumPy broadcasting).
//!
//! They exist only in the float IR. Every pass sees a chain of them hanging off one
//! computed value as one univariate function of it, a [`Region`] (GELU's div → erf →
//! add → mul → mul, a sigmoid, a bias add then a ReLU): the quantizer tabulates it
//! ([`super::Lut`]), the SMPC backend runs a lone ReLU as the exact comparison
//! protocol and any other chain as a piecewise polynomial fitted on the value's
//! calibrated range. So a new activation needs an entry here and no backend code.
//!
//! A binary op whose operands read two different computed values (a residual
//! connection, a gate `x · g`) is not a chain:
//!
//! - `add`/`sub`: the quantizer brings both operands to one per-tensor scale, the finer
//!   of the two they would have alone (each operand's chain is tabulated at that
//!   scale; an operand already computed at another is re-encoded by an identity
//!   table, the one place a table is added), then adds them exactly ([`super::AddInt`]).
//!   SMPC: a local sum of shares ([`StepOp::Pair`]).
//! - `mul`: the quantizer computes `a·b = ((a+b)² − (a−b)²) / 4`: the exact sum and
//!   difference at one scale, a table of `x²/4` on each, and their exact difference.
//!   The two tables read `bits` bits of their operand (not `table_bits`), and each
//!   rounds to half a step of the product's scale: the product is off by about one
//!   step plus `|a ± b|·δ/4` for an index step `δ` (and clamps beyond the calibrated
//!   range). SMPC: one multiplication round and a truncation.
//! - any other op of two computed values is refused.

use super::facets::{Channels, FheLowering, FheRule, Lowered, MpcCx, MpcRule, QuantizeCx, QuantizeRule, TableNoise};
use super::{expect_arity, output_quant, AddInt, Op, OpSpec, Operand};
use crate::lowered::mpc::{Broadcast, PairOp, Reg, StepOp};
use crate::tensor::Tensor;
use crate::text::Printer;
use crate::types::{Shape, TensorType};
use crate::{Graph, ValueId};
use ndarray::{ArrayD, IxDyn, Zip};
use serde::{Deserialize, Serialize};

/// A unary float function.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum UnaryKind {
    /// max(x, 0)
    Relu,
    /// 1 / (1 + e^-x)
    Sigmoid,
    /// tanh(x)
    Tanh,
    /// The Gauss error function.
    Erf,
    /// x · Φ(x), exact (erf) form.
    Gelu,
    /// e^x
    Exp,
    /// -x
    Neg,
    /// |x|
    Abs,
    /// √x
    Sqrt,
    /// 1 / x
    Reciprocal,
    /// ln(1 + e^x)
    Softplus,
}

impl UnaryKind {
    /// Every kind, for parsing and tests.
    pub const ALL: [UnaryKind; 11] = [
        UnaryKind::Relu,
        UnaryKind::Sigmoid,
        UnaryKind::Tanh,
        UnaryKind::Erf,
        UnaryKind::Gelu,
        UnaryKind::Exp,
        UnaryKind::Neg,
        UnaryKind::Abs,
        UnaryKind::Sqrt,
        UnaryKind::Reciprocal,
        UnaryKind::Softplus,
    ];

    /// The text mnemonic.
    pub fn mnemonic(self) -> &'static str {
        match self {
            UnaryKind::Relu => "relu",
            UnaryKind::Sigmoid => "sigmoid",
            UnaryKind::Tanh => "tanh",
            UnaryKind::Erf => "erf",
            UnaryKind::Gelu => "gelu",
            UnaryKind::Exp => "exp",
            UnaryKind::Neg => "neg",
            UnaryKind::Abs => "abs",
            UnaryKind::Sqrt => "sqrt",
            UnaryKind::Reciprocal => "reciprocal",
            UnaryKind::Softplus => "softplus",
        }
    }

    /// The function itself.
    pub fn apply(self, x: f32) -> f32 {
        match self {
            UnaryKind::Relu => x.max(0.0),
            UnaryKind::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            UnaryKind::Tanh => x.tanh(),
            UnaryKind::Erf => libm::erff(x),
            UnaryKind::Gelu => 0.5 * x * (1.0 + libm::erff(x / std::f32::consts::SQRT_2)),
            UnaryKind::Exp => x.exp(),
            UnaryKind::Neg => -x,
            UnaryKind::Abs => x.abs(),
            UnaryKind::Sqrt => x.sqrt(),
            UnaryKind::Reciprocal => 1.0 / x,
            UnaryKind::Softplus => x.exp().ln_1p(),
        }
    }
}

/// A unary float elementwise op.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Unary {
    /// Which function.
    pub kind: UnaryKind,
}

impl OpSpec for Unary {
    fn mnemonic(&self) -> &'static str {
        self.kind.mnemonic()
    }
    fn infer(&self, inputs: &[Operand]) -> Result<TensorType, String> {
        expect_arity(inputs, 1..=1)?;
        if !inputs[0].ty.is_float() {
            return Err("is a float op; quantization turns it into a table".into());
        }
        Ok(inputs[0].ty.clone())
    }
    fn eval(&self, inputs: &[&Tensor]) -> Tensor {
        let x = inputs[0].as_f32().expect("float operand verified");
        Tensor::F32(x.mapv(|v| self.kind.apply(v)))
    }
    fn print_attrs(&self, _: &mut Printer) {}
}

/// A binary float function.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum BinaryKind {
    /// a + b
    Add,
    /// a - b
    Sub,
    /// a · b
    Mul,
    /// a / b
    Div,
    /// max(a, b)
    Max,
    /// min(a, b)
    Min,
    /// a^b
    Pow,
}

impl BinaryKind {
    /// Every kind, for parsing and tests.
    pub const ALL: [BinaryKind; 7] = [
        BinaryKind::Add,
        BinaryKind::Sub,
        BinaryKind::Mul,
        BinaryKind::Div,
        BinaryKind::Max,
        BinaryKind::Min,
        BinaryKind::Pow,
    ];

    /// The text mnemonic.
    pub fn mnemonic(self) -> &'static str {
        match self {
            BinaryKind::Add => "add",
            BinaryKind::Sub => "sub",
            BinaryKind::Mul => "mul",
            BinaryKind::Div => "div",
            BinaryKind::Max => "max",
            BinaryKind::Min => "min",
            BinaryKind::Pow => "pow",
        }
    }

    /// The function itself.
    pub fn apply(self, a: f32, b: f32) -> f32 {
        match self {
            BinaryKind::Add => a + b,
            BinaryKind::Sub => a - b,
            BinaryKind::Mul => a * b,
            BinaryKind::Div => a / b,
            BinaryKind::Max => a.max(b),
            BinaryKind::Min => a.min(b),
            BinaryKind::Pow => a.powf(b),
        }
    }
}

/// A binary float elementwise op with NumPy broadcasting.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Binary {
    /// Which function.
    pub kind: BinaryKind,
}

/// The NumPy broadcast of two shapes.
pub fn broadcast_shapes(a: &Shape, b: &Shape) -> Result<Shape, String> {
    let rank = a.rank().max(b.rank());
    let dim = |s: &Shape, i: usize| if i < rank - s.rank() { 1 } else { s.0[i - (rank - s.rank())] };
    (0..rank)
        .map(|i| match (dim(a, i), dim(b, i)) {
            (x, y) if x == y || y == 1 => Ok(x),
            (1, y) => Ok(y),
            _ => Err(format!("shapes {a} and {b} do not broadcast")),
        })
        .collect::<Result<_, _>>()
        .map(Shape)
}

impl OpSpec for Binary {
    fn mnemonic(&self) -> &'static str {
        self.kind.mnemonic()
    }
    fn infer(&self, inputs: &[Operand]) -> Result<TensorType, String> {
        expect_arity(inputs, 2..=2)?;
        if !(inputs[0].ty.is_float() && inputs[1].ty.is_float()) {
            return Err("is a float op; quantization turns it into a table".into());
        }
        Ok(TensorType::f32(broadcast_shapes(&inputs[0].ty.shape, &inputs[1].ty.shape)?))
    }
    fn eval(&self, inputs: &[&Tensor]) -> Tensor {
        let (a, b) = (inputs[0].as_f32().expect("float"), inputs[1].as_f32().expect("float"));
        let shape = broadcast_shapes(&Shape(a.shape().to_vec()), &Shape(b.shape().to_vec())).expect("verified");
        let (a, b) = (a.broadcast(IxDyn(&shape.0)).expect("verified"), b.broadcast(IxDyn(&shape.0)).expect("verified"));
        let y: ArrayD<f32> = Zip::from(&a).and(&b).map_collect(|&x, &y| self.kind.apply(x, y));
        Tensor::F32(y)
    }
    fn print_attrs(&self, _: &mut Printer) {}
}

/// An elementwise chain of the float graph whose only non-constant input is one
/// computed value.
#[derive(Clone, Debug)]
pub struct Region {
    /// The computed value the chain reads, as the pass names it: an integer value of
    /// the new graph (the quantizer), the float value in a register (SMPC).
    pub source: ValueId,
    /// Float values that stand for `source`: bound to its value when the chain runs.
    pub entries: Vec<ValueId>,
    /// The chain's float nodes, in evaluation order.
    pub nodes: Vec<ValueId>,
}

impl Region {
    /// The chain operand `i` brings to its user: none for a constant, its own for a
    /// chain, a new one reading `source` for a computed value.
    fn of<T>(i: ValueId, state: &Lowered<T>, source: impl FnOnce(&T) -> ValueId) -> Option<Region> {
        match state {
            Lowered::Const => None,
            Lowered::Computed(t) => Some(Region { source: source(t), entries: vec![i], nodes: vec![] }),
            Lowered::Chain(r) => Some(r.clone()),
        }
    }

    /// The chain of elementwise node `v`: its operands' chains joined, then `v`. They
    /// must all read the same value (`how` names the pass in the error).
    fn join(
        graph: &Graph,
        v: ValueId,
        operands: impl IntoIterator<Item = Option<Region>>,
        how: &str,
    ) -> Result<Region, String> {
        let mut region: Option<Region> = None;
        for chain in operands.into_iter().flatten() {
            match &mut region {
                None => region = Some(chain),
                Some(r) if r.source == chain.source => {
                    r.entries.extend(chain.entries);
                    r.nodes.extend(chain.nodes);
                    for list in [&mut r.entries, &mut r.nodes] {
                        list.sort();
                        list.dedup();
                    }
                }
                Some(_) => {
                    let op = graph.node(v).op.mnemonic();
                    return Err(format!("`{op}` of two different computed tensors is not supported {how}"));
                }
            }
        }
        let mut r = region.ok_or("elementwise op on constants only")?;
        r.nodes.push(v);
        Ok(r)
    }

    /// The nodes of the chain that `target` depends on, in evaluation order.
    pub fn chain_to(&self, graph: &Graph, target: ValueId) -> Vec<ValueId> {
        let mut needed = vec![false; graph.nodes.len()];
        needed[target.index()] = true;
        for &v in self.nodes.iter().rev() {
            if needed[v.index()] {
                graph.node(v).inputs.iter().for_each(|i| needed[i.index()] = true);
            }
        }
        self.nodes.iter().copied().filter(|v| needed[v.index()]).collect()
    }

    /// The SMPC step computing chain value `v` of `graph` into register `out`, `x`
    /// holding the source: the exact comparison protocol for a lone ReLU, else the
    /// chain fitted as a piecewise polynomial.
    pub fn mpc_step<C: MpcCx>(&self, graph: &Graph, v: ValueId, x: Reg, out: Reg, cx: &C) -> Result<StepOp, C::Error> {
        let len = graph.ty(v).shape.numel();
        let chain = self.chain_to(graph, v);
        if let [only] = chain[..] {
            if matches!(graph.node(only).op, Op::Unary(Unary { kind: UnaryKind::Relu })) {
                return Ok(StepOp::Relu { x, len, out });
            }
        }
        Ok(StepOp::Piecewise { x, len, function: cx.fit(v, self.source, &chain)?, out })
    }
}

/// The quantization rule of every elementwise op: it joins its operands' chains,
/// which the quantizer tabulates where an integer is needed.
fn quantize_chain<C: QuantizeCx>(graph: &Graph, v: ValueId, cx: &mut C) -> Result<Lowered<ValueId>, C::Error> {
    let operands = graph.node(v).inputs.iter().map(|&i| Region::of(i, cx.state(i), |&s| s)).collect::<Vec<_>>();
    Region::join(graph, v, operands, "under quantization").map(Lowered::Chain).map_err(|m| cx.fail(v, m))
}

/// The SMPC lowering of every elementwise op: it joins its operands' chains, which
/// the lowering materialises ([`Region::mpc_step`]) where a register is needed.
fn lower_chain<C: MpcCx>(graph: &Graph, v: ValueId, cx: &mut C) -> Result<Lowered<Reg>, C::Error> {
    let operands = graph.node(v).inputs.iter().map(|&i| Region::of(i, cx.state(i), |_| i)).collect::<Vec<_>>();
    Region::join(graph, v, operands, "by the mpc backend yet").map(Lowered::Chain).map_err(|m| cx.fail(v, m))
}

impl QuantizeRule for Unary {
    fn quantize<C: QuantizeCx>(&self, graph: &Graph, v: ValueId, cx: &mut C) -> Result<Lowered<ValueId>, C::Error> {
        quantize_chain(graph, v, cx)
    }
    fn table_noise(&self) -> TableNoise {
        TableNoise::Untracked
    }
    fn weight_channels(&self, _: usize) -> Option<Channels> {
        None
    }
}

impl FheRule for Unary {
    fn fhe_lowering(&self) -> FheLowering<'_> {
        FheLowering::FloatOnly
    }
}

impl MpcRule for Unary {
    fn lower_mpc<C: MpcCx>(&self, graph: &Graph, v: ValueId, cx: &mut C) -> Result<Lowered<Reg>, C::Error> {
        lower_chain(graph, v, cx)
    }
    fn min_frac_bits(&self) -> u32 {
        0
    }
}

/// Whether the chains `operands` bring read two different computed values.
fn two_sources(operands: &[Option<Region>]) -> bool {
    let mut sources = operands.iter().flatten().map(|r| r.source);
    let first = sources.next();
    sources.any(|s| Some(s) != first)
}

/// The per-tensor scale float value `v` has, or would have as a table's output.
fn natural_scale<C: QuantizeCx>(cx: &C, v: ValueId) -> Result<f64, C::Error> {
    if let Lowered::Computed(i) = cx.state(v) {
        if let Some(q) = cx.new_graph().ty(*i).as_int().and_then(|t| t.quant.as_ref()).filter(|q| q.axis.is_none()) {
            return Ok(q.scale[0]);
        }
    }
    let (lo, hi) = cx.range(v).ok_or_else(|| cx.fail(v, "never calibrated"))?;
    Ok(output_quant(lo, hi, cx.config().bits).0.scale[0])
}

/// `(a − a_zp) + sign · (b − b_zp)` of two integer values of the new graph at one scale.
fn push_add_int<C: QuantizeCx>(cx: &mut C, a: ValueId, b: ValueId, sign: i64, name: String) -> Result<ValueId, C::Error> {
    let zp = |x: ValueId| cx.new_graph().ty(x).as_int().and_then(|t| t.quant.as_ref()).map_or(0, |q| q.zero_point[0]);
    let op = AddInt { sign, a_zp: zp(a), b_zp: zp(b) };
    cx.push(Op::AddInt(op), vec![a, b], name)
}

impl Binary {
    /// The quantization of `a ± b` or `a · b` for two different computed values (see
    /// the module doc).
    fn quantize_two<C: QuantizeCx>(&self, graph: &Graph, v: ValueId, cx: &mut C) -> Result<Lowered<ValueId>, C::Error> {
        let node = graph.node(v);
        let (a, b) = (node.inputs[0], node.inputs[1]);
        let sign = match self.kind {
            BinaryKind::Add | BinaryKind::Mul => 1,
            BinaryKind::Sub => -1,
            k => {
                let m = format!("`{}` of two different computed tensors is not supported under quantization", k.mnemonic());
                return Err(cx.fail(v, m));
            }
        };
        let scale = natural_scale(cx, a)?.min(natural_scale(cx, b)?);
        let (ia, ib) = (cx.int_at_scale(a, scale)?, cx.int_at_scale(b, scale)?);
        if self.kind != BinaryKind::Mul {
            return push_add_int(cx, ia, ib, sign, node.name.clone()).map(Lowered::Computed);
        }
        let sum = push_add_int(cx, ia, ib, 1, format!("{}.sum", node.name))?;
        let diff = push_add_int(cx, ia, ib, -1, format!("{}.difference", node.name))?;
        let peak = [sum, diff]
            .map(|x| {
                let (lo, hi) = cx.observed(x);
                lo.unsigned_abs().max(hi.unsigned_abs()) as f64 * scale
            })
            .into_iter()
            .fold(0.0, f64::max);
        let out = output_quant(0.0, peak * peak / 4.0, cx.config().bits);
        let quarter_square = |x: f32| x * x / 4.0;
        let u = cx.push_table(sum, &quarter_square, out.clone(), format!("{}.sum²/4", node.name))?;
        let w = cx.push_table(diff, &quarter_square, out, format!("{}.difference²/4", node.name))?;
        push_add_int(cx, u, w, -1, node.name.clone()).map(Lowered::Computed)
    }

    /// The SMPC lowering of `a ± b` or `a · b` for two different computed values.
    fn lower_two<C: MpcCx>(&self, graph: &Graph, v: ValueId, cx: &mut C) -> Result<Lowered<Reg>, C::Error> {
        let node = graph.node(v);
        let op = match self.kind {
            BinaryKind::Add => PairOp::Add,
            BinaryKind::Sub => PairOp::Sub,
            BinaryKind::Mul => PairOp::Mul,
            k => {
                let m = format!("`{}` of two different computed tensors is not supported by the mpc backend", k.mnemonic());
                return Err(cx.fail(v, m));
            }
        };
        let (a, b) = (node.inputs[0], node.inputs[1]);
        let (ra, rb) = (cx.reg(a)?, cx.reg(b)?);
        let out = node.ty.shape.0.clone();
        let padded = |x: ValueId| -> Vec<usize> {
            let s = &graph.ty(x).shape.0;
            std::iter::repeat_n(1, out.len() - s.len()).chain(s.iter().copied()).collect()
        };
        let len = node.ty.shape.numel();
        let shapes = Broadcast { a: padded(a), b: padded(b), out };
        let y = cx.new_reg();
        cx.step(v, StepOp::Pair { a: ra, b: rb, op, shapes, out: y });
        if op != PairOp::Mul {
            return Ok(Lowered::Computed(y));
        }
        let (out, bits) = (cx.new_reg(), cx.frac_bits());
        cx.step(v, StepOp::Trunc { x: y, len, bits, out });
        Ok(Lowered::Computed(out))
    }
}

impl QuantizeRule for Binary {
    fn quantize<C: QuantizeCx>(&self, graph: &Graph, v: ValueId, cx: &mut C) -> Result<Lowered<ValueId>, C::Error> {
        let operands = graph.node(v).inputs.iter().map(|&i| Region::of(i, cx.state(i), |&s| s)).collect::<Vec<_>>();
        if two_sources(&operands) {
            return self.quantize_two(graph, v, cx);
        }
        quantize_chain(graph, v, cx)
    }
    fn table_noise(&self) -> TableNoise {
        TableNoise::Untracked
    }
    fn weight_channels(&self, _: usize) -> Option<Channels> {
        None
    }
}

impl FheRule for Binary {
    fn fhe_lowering(&self) -> FheLowering<'_> {
        FheLowering::FloatOnly
    }
}

impl MpcRule for Binary {
    fn lower_mpc<C: MpcCx>(&self, graph: &Graph, v: ValueId, cx: &mut C) -> Result<Lowered<Reg>, C::Error> {
        let operands = graph.node(v).inputs.iter().map(|&i| Region::of(i, cx.state(i), |_| i)).collect::<Vec<_>>();
        if two_sources(&operands) {
            return self.lower_two(graph, v, cx);
        }
        lower_chain(graph, v, cx)
    }
    fn min_frac_bits(&self) -> u32 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::Input;

    #[test]
    fn chains_of_one_value_join_and_chains_of_two_are_refused() {
        let mut g = Graph::new("t");
        let ty = TensorType::f32(Shape(vec![2]));
        let x = g.push(Op::Input(Input { index: 0, ty: ty.clone() }), vec![], "x").unwrap();
        let y = g.push(Op::Input(Input { index: 1, ty }), vec![], "y").unwrap();
        let relu = g.push(Op::Unary(Unary { kind: UnaryKind::Relu }), vec![x], "relu").unwrap();
        let add = g.push(Op::Binary(Binary { kind: BinaryKind::Add }), vec![relu, x], "add").unwrap();
        let tanh = g.push(Op::Unary(Unary { kind: UnaryKind::Tanh }), vec![x], "tanh").unwrap();
        let mul = g.push(Op::Binary(Binary { kind: BinaryKind::Mul }), vec![add, y], "mul").unwrap();
        let computed = |v: ValueId| Region::of(v, &Lowered::Computed(v), |&s| s);

        let r = Region::join(&g, relu, [computed(x)], "here").unwrap();
        let a = Region::join(&g, add, [Region::of(relu, &Lowered::Chain(r), |&s| s), computed(x)], "here").unwrap();
        assert_eq!((a.source, a.entries.as_slice(), a.nodes.as_slice()), (x, &[x][..], &[relu, add][..]));
        let t = Region::join(&g, tanh, [computed(x)], "here").unwrap();
        assert_eq!(t.chain_to(&g, tanh), [tanh]);

        let err = Region::join(&g, mul, [Some(a), computed(y)], "here").unwrap_err();
        assert_eq!(err, "`mul` of two different computed tensors is not supported here");
        assert_eq!(Region::join(&g, tanh, [None], "here").unwrap_err(), "elementwise op on constants only");
    }

    #[test]
    fn a_chain_runs_only_what_its_value_reads() {
        let mut g = Graph::new("t");
        let x = g.push(Op::Input(Input { index: 0, ty: TensorType::f32(Shape(vec![2])) }), vec![], "x").unwrap();
        let neg = g.push(Op::Unary(Unary { kind: UnaryKind::Neg }), vec![x], "neg").unwrap();
        let exp = g.push(Op::Unary(Unary { kind: UnaryKind::Exp }), vec![x], "exp").unwrap();
        let abs = g.push(Op::Unary(Unary { kind: UnaryKind::Abs }), vec![neg], "abs").unwrap();
        let region = Region { source: x, entries: vec![x], nodes: vec![neg, exp, abs] };
        assert_eq!(region.chain_to(&g, abs), [neg, abs]);
        assert_eq!(region.chain_to(&g, exp), [exp]);
    }
}
