//! The closed set of IR ops. Each op lives in its own file with its exact semantics
//! (`eval`), its type rule with the integer range analysis (`infer`) and its text
//! attributes. Both lowerings match on [`Op`] exhaustively, so a new op is a compile
//! error everywhere it still needs handling.

mod conv;
mod elementwise;
mod input;
mod konst;
mod lut;
mod matmul;
mod pool;
mod quant;
mod shape;
mod tree;

pub use conv::Conv;
pub use elementwise::{Binary, BinaryKind, Unary, UnaryKind};
pub use input::Input;
pub use konst::Const;
pub use lut::{round_shift, Lut};
pub use matmul::MatMul;
pub use pool::{AvgPool, MaxPool, SumPool, Window};
pub use quant::{quantize_value, Dequantize, Quantize};
pub use shape::Reshape;
pub use tree::{Aggregate, BranchMode, LeafPath, Literal, PostTransform, Split, Tree, TreeEnsemble, TreeNode};

use crate::tensor::Tensor;
use crate::types::TensorType;
use serde::{Deserialize, Serialize};
use std::fmt;

/// An operand as `infer` sees it: its type, and its value when it is a constant
/// (range analysis of linear ops needs the clear weights).
#[derive(Clone, Copy, Debug)]
pub struct Operand<'a> {
    /// The operand's type.
    pub ty: &'a TensorType,
    /// The operand's value, when it is produced by a `const`.
    pub value: Option<&'a Tensor>,
}

/// What a backend has to do with an op; both lowerings dispatch on it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum OpClass {
    /// Graph inputs and constants.
    Source,
    /// Pure index remaps (no arithmetic).
    Structural,
    /// Multiply-accumulate with clear weights: levelled in FHE, local in MPC.
    Linear,
    /// Float elementwise arithmetic; the quantizer fuses chains of them into tables.
    Elementwise,
    /// A univariate integer table (one PBS per element in FHE).
    Table,
    /// A max over several encrypted values (comparisons).
    Comparison,
    /// The boundary between the clear float world and integers (client side).
    Boundary,
    /// A tree ensemble (comparisons, path selection, leaf sums).
    Tree,
}

/// Behaviour every op provides. Implemented by each op struct; [`Op`] delegates.
pub trait OpSpec {
    /// The op's name in the text form.
    fn mnemonic(&self) -> &'static str;
    /// What kind of work the op is.
    fn class(&self) -> OpClass;
    /// The output type, including the exact integer range for integer ops.
    fn infer(&self, inputs: &[Operand]) -> Result<TensorType, String>;
    /// The exact semantics. Inputs have been checked by the verifier; a mismatch is a bug.
    fn eval(&self, inputs: &[&Tensor]) -> Tensor;
    /// Writes the `{...}` attributes, without braces; nothing for none.
    fn write_attrs(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result;
}

/// An IR operation.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub enum Op {
    /// A graph input.
    Input(Input),
    /// A constant tensor.
    Const(Const),
    /// 2-D convolution.
    Conv(Conv),
    /// Matrix product with a constant right operand.
    MatMul(MatMul),
    /// Float unary elementwise function.
    Unary(Unary),
    /// Float binary elementwise function with broadcasting.
    Binary(Binary),
    /// Max pooling.
    MaxPool(MaxPool),
    /// Float average pooling.
    AvgPool(AvgPool),
    /// Integer sum pooling (the quantized form of average pooling).
    SumPool(SumPool),
    /// Shape change without data movement.
    Reshape(Reshape),
    /// Float to integer at the input boundary.
    Quantize(Quantize),
    /// Integer to float at the output boundary.
    Dequantize(Dequantize),
    /// Univariate integer table lookup.
    Lut(Lut),
    /// Tree ensemble (ONNX-ML TreeEnsembleRegressor / TreeEnsembleClassifier), float IR only.
    TreeEnsemble(TreeEnsemble),
}

macro_rules! dispatch {
    ($self:ident, $op:ident => $e:expr) => {
        match $self {
            Op::Input($op) => $e,
            Op::Const($op) => $e,
            Op::Conv($op) => $e,
            Op::MatMul($op) => $e,
            Op::Unary($op) => $e,
            Op::Binary($op) => $e,
            Op::MaxPool($op) => $e,
            Op::AvgPool($op) => $e,
            Op::SumPool($op) => $e,
            Op::Reshape($op) => $e,
            Op::Quantize($op) => $e,
            Op::Dequantize($op) => $e,
            Op::Lut($op) => $e,
            Op::TreeEnsemble($op) => $e,
        }
    };
}

impl OpSpec for Op {
    fn mnemonic(&self) -> &'static str {
        dispatch!(self, op => op.mnemonic())
    }
    fn class(&self) -> OpClass {
        dispatch!(self, op => op.class())
    }
    fn infer(&self, inputs: &[Operand]) -> Result<TensorType, String> {
        dispatch!(self, op => op.infer(inputs))
    }
    fn eval(&self, inputs: &[&Tensor]) -> Tensor {
        dispatch!(self, op => op.eval(inputs))
    }
    fn write_attrs(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        dispatch!(self, op => op.write_attrs(f))
    }
}

/// Checks the operand count of an op.
pub(crate) fn expect_arity(inputs: &[Operand], range: std::ops::RangeInclusive<usize>) -> Result<(), String> {
    if range.contains(&inputs.len()) {
        Ok(())
    } else if range.start() == range.end() {
        Err(format!("expects {} operands, got {}", range.start(), inputs.len()))
    } else {
        Err(format!("expects {} to {} operands, got {}", range.start(), range.end(), inputs.len()))
    }
}

/// The interval of `w * x` for `x` in `[lo, hi]`, if it fits `i64`.
pub(crate) fn scaled_interval(w: i64, lo: i64, hi: i64) -> Option<(i64, i64)> {
    let (a, b) = (w.checked_mul(lo)?, w.checked_mul(hi)?);
    Some((a.min(b), a.max(b)))
}

/// `[lo − zp, hi − zp]`, if it fits `i64` (a crafted graph may not).
pub(crate) fn minus_zero_point(lo: i64, hi: i64, zp: i64) -> Result<(i64, i64), String> {
    match (lo.checked_sub(zp), hi.checked_sub(zp)) {
        (Some(l), Some(h)) => Ok((l, h)),
        _ => Err(format!("[{lo}, {hi}] minus zero point {zp} overflows 64 bits")),
    }
}

/// Writes `name=[a,b,c]`.
pub(crate) fn write_usizes(f: &mut fmt::Formatter<'_>, name: &str, xs: &[usize]) -> fmt::Result {
    let parts: Vec<String> = xs.iter().map(|x| x.to_string()).collect();
    write!(f, "{name}=[{}]", parts.join(","))
}

/// Quantization of a linear op's accumulator: `Σ w·(x − zp_x) + b` stands for
/// `s_x · s_w[c] · acc` with zero point 0, per output channel `c` along `out_axis`.
pub(crate) fn linear_quant(x: &TensorType, w: &TensorType, out_axis: usize) -> Option<crate::types::Quant> {
    let xq = x.as_int()?.quant.as_ref()?;
    let wq = w.as_int()?.quant.as_ref()?;
    if xq.axis.is_some() {
        return None;
    }
    let x_scale = *xq.scale.first()?;
    let scale: Vec<f64> = wq.scale.iter().map(|s| s * x_scale).collect();
    let axis = if scale.len() > 1 { Some(out_axis) } else { None };
    Some(crate::types::Quant { axis, zero_point: vec![0; scale.len()], scale })
}

/// Checks that the operands of an op are all float, or all integers, and says which.
pub(crate) fn common_is_float(inputs: &[Operand]) -> Result<bool, String> {
    let float = inputs[0].ty.is_float();
    if inputs.iter().any(|o| o.ty.is_float() != float) {
        return Err("mixes float and integer operands".into());
    }
    Ok(float)
}

/// A multiply-accumulate op with constant weights: `Σ w·(x − x_zp) + b` per output channel.
pub(crate) trait LinearKernel {
    /// Zero point subtracted from inputs in the integer form.
    fn x_zp(&self) -> i64;
    /// The computation, for floats and integers alike.
    fn run<T: ndarray::LinalgScalar>(
        &self,
        x: &ndarray::ArrayD<T>,
        w: &ndarray::ArrayD<T>,
        b: Option<&ndarray::ArrayD<T>>,
        x_zp: T,
    ) -> ndarray::ArrayD<T>;
}

/// `eval` of a [`LinearKernel`]: float operands run with zero point 0, integers with `x_zp`.
pub(crate) fn eval_linear(op: &impl LinearKernel, inputs: &[&Tensor]) -> Tensor {
    match inputs {
        [Tensor::F32(x), Tensor::F32(w), rest @ ..] => {
            Tensor::F32(op.run(x, w, rest.first().and_then(|b| b.as_f32()), 0.0))
        }
        [Tensor::I64(x), Tensor::I64(w), rest @ ..] => {
            Tensor::I64(op.run(x, w, rest.first().and_then(|b| b.as_i64()), op.x_zp()))
        }
        _ => unreachable!("linear operands verified"),
    }
}

/// Exact range of an integer linear op: per output channel (the weights' lanes along
/// `w_axis`), `b[c]` plus the interval of every `w · x` with `x` in `x_range`; then the
/// min and max over channels.
pub(crate) fn linear_range(inputs: &[Operand], w_axis: usize, x_range: (i64, i64)) -> Result<(i64, i64), String> {
    let Some(wv) = inputs[1].value.and_then(Tensor::as_i64) else {
        return Err("integer linear ops need constant weights".into());
    };
    let bv = match inputs.get(2) {
        Some(b) => Some(b.value.and_then(Tensor::as_i64).ok_or("integer linear ops need a constant bias")?),
        None => None,
    };
    let (mut lo, mut hi) = (i64::MAX, i64::MIN);
    for (c, lane) in wv.axis_iter(ndarray::Axis(w_axis)).enumerate() {
        let b = bv.map_or(0, |b| b[[c]]);
        let (mut l, mut h) = (b, b);
        for &w in lane.iter() {
            let sum = scaled_interval(w, x_range.0, x_range.1)
                .and_then(|(a, z)| Some((l.checked_add(a)?, h.checked_add(z)?)));
            (l, h) = sum.ok_or("the accumulator's range overflows 64 bits")?;
        }
        lo = lo.min(l);
        hi = hi.max(h);
    }
    Ok((lo, hi))
}

/// An integer linear op as an explicit affine map: `y[j] = c[j] + Σ w·x[i]` over
/// `terms[j] = [(i, w), ...]` (zero weights omitted). Encrypted executors apply it to
/// ciphertexts; it is read off the op's own `eval`, so the index arithmetic of a
/// convolution or a pooling window is written once, in its op file.
#[derive(Clone, Debug, PartialEq)]
pub struct LinearMap {
    /// Non-zero terms of each output element.
    pub terms: Vec<Vec<(u32, i64)>>,
    /// The constant of each output element.
    pub constant: Vec<i64>,
}

impl LinearMap {
    /// The affine map of integer op `op` on an input of `shape`, its other operands
    /// being the constants `consts`. `None` when `op` is not a linear integer op.
    pub fn of(op: &Op, shape: &crate::Shape, consts: &[&Tensor]) -> Option<LinearMap> {
        if !matches!(op.class(), OpClass::Linear | OpClass::Structural) {
            return None;
        }
        let n = shape.numel();
        let run = |x: ndarray::ArrayD<i64>| {
            let x = Tensor::I64(x);
            let args: Vec<&Tensor> = std::iter::once(&x).chain(consts.iter().copied()).collect();
            op.eval(&args).as_i64().expect("integer op").iter().copied().collect::<Vec<i64>>()
        };
        let zero = ndarray::ArrayD::<i64>::zeros(ndarray::IxDyn(&shape.0));
        let constant = run(zero.clone());
        let mut terms = vec![Vec::new(); constant.len()];
        for i in 0..n {
            let mut e = zero.clone();
            e.as_slice_mut().expect("standard layout")[i] = 1;
            for (j, (y, c)) in run(e).into_iter().zip(&constant).enumerate() {
                if y != *c {
                    terms[j].push((i as u32, y - c));
                }
            }
        }
        Some(LinearMap { terms, constant })
    }
}
