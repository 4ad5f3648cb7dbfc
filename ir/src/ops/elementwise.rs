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
//! - `add`/`sub`: the quantizer brings both operands to one per-tensor quantization,
//!   `bits` over the union of their calibrated ranges (`int_over`: each operand's chain
//!   is tabulated onto it; an operand already computed at another is re-encoded by an
//!   identity table, the one place a table is added), then adds them exactly
//!   ([`super::AddInt`]).
//!   SMPC: a local sum of shares ([`StepOp::Pair`]).
//! - `mul`: the quantizer computes `a·b = ((a+b)² − (a−b)²) / 4`: the exact sum and
//!   difference at one scale, a table of `x²/4` on each, and their exact difference.
//!   The two tables read `bits` bits of their operand (not `table_bits`), and each
//!   rounds to half a step of the product's scale: the product is off by about one
//!   step plus `|a ± b|·δ/4` for an index step `δ` (and clamps beyond the calibrated
//!   range). SMPC: one multiplication round and a truncation.
//! - `div` (SMPC only): `a · (1/b)`, the reciprocal fitted on `b`'s calibrated range
//!   plus 10% (refused when that range reaches 0); the quantizer refuses it.
//! - any other op of two computed values is refused.

use super::facets::{Channels, FheLowering, FheRule, Lowered, MpcCx, MpcRule, QuantizeCx, QuantizeRule, TableNoise};
use super::pwl::Pwl;
use super::ConvGeometry;
use super::{expect_arity, output_quant, AddInt, Op, OpSpec, Operand};
use crate::lowered::fixed::encode_fixed;
use crate::lowered::mpc::{Broadcast, PairOp, Reg, StepOp};
use crate::tensor::Tensor;
use crate::text::{ParseError, Parser, Printer};
use crate::types::{Shape, TensorType};
use crate::{Graph, ValueId};
use ndarray::{ArrayD, IxDyn, Zip};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A unary float function. Parameterised kinds carry their ONNX attributes; the text
/// form prints each that differs from its ONNX default at full precision
/// (`leaky_relu %3 {alpha=0.2}`) and [`Unary::parse_attrs`] reads it back.
#[derive(Clone, Copy, PartialEq, Debug, Serialize, Deserialize)]
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
    /// x for x ≥ 0, alpha · x below (ONNX LeakyRelu).
    LeakyRelu {
        /// The slope below 0 (ONNX default 0.01).
        alpha: f32,
    },
    /// x for x > 0, alpha · (e^x − 1) otherwise (ONNX Elu).
    Elu {
        /// ONNX default 1.
        alpha: f32,
    },
    /// gamma · x for x > 0, gamma · alpha · (e^x − 1) otherwise (ONNX Selu).
    Selu {
        /// ONNX default 1.67326319217681884765625.
        alpha: f32,
        /// ONNX default 1.05070102214813232421875.
        gamma: f32,
    },
    /// max(0, x) + min(0, alpha · (e^(x/alpha) − 1)) (ONNX Celu).
    Celu {
        /// ONNX default 1.
        alpha: f32,
    },
    /// max(0, min(1, alpha · x + beta)) (ONNX HardSigmoid).
    HardSigmoid {
        /// ONNX default 0.2.
        alpha: f32,
        /// ONNX default 0.5.
        beta: f32,
    },
    /// x · max(0, min(1, x/6 + 1/2)) (ONNX HardSwish).
    HardSwish,
    /// ln x
    Log,
    /// x · tanh(ln(1 + e^x)) (ONNX Mish).
    Mish,
    /// 0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³))) (ONNX Gelu, approximate="tanh").
    GeluTanh,
    /// x · sigmoid(x) (SiLU, Swish; torch exports it as Sigmoid then Mul).
    Silu,
    /// x / (1 + |x|) (ONNX Softsign).
    Softsign,
    /// x for x > alpha, 0 otherwise (ONNX ThresholdedRelu).
    ThresholdedRelu {
        /// ONNX default 1.
        alpha: f32,
    },
    /// x − bias for x > lambd, x + bias for x < −lambd, 0 between (ONNX Shrink).
    Shrink {
        /// ONNX default 0.
        bias: f32,
        /// ONNX default 0.5.
        lambd: f32,
    },
    /// sin x
    Sin,
    /// cos x
    Cos,
    /// tan x
    Tan,
    /// arcsin x
    Asin,
    /// arccos x
    Acos,
    /// arctan x
    Atan,
    /// sinh x
    Sinh,
    /// cosh x
    Cosh,
    /// arsinh x
    Asinh,
    /// arcosh x
    Acosh,
    /// artanh x
    Atanh,
    /// ⌊x⌋
    Floor,
    /// ⌈x⌉
    Ceil,
    /// x rounded to the nearest integer, halves to even (ONNX Round).
    Round,
    /// −1, 0 or 1 by the sign of x.
    Sign,
    // Appended: a kind's serialized tag is its position, which graph digests hash.
    /// x² (tract's expansion of LayerNormalization's variance)
    Square,
    /// 1 / √x (tract's expansion of LayerNormalization)
    Rsqrt,
}

impl UnaryKind {
    /// Every kind, parameterised ones at their ONNX defaults: for parsing and tests.
    pub const ALL: [UnaryKind; 41] = [
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
        UnaryKind::Square,
        UnaryKind::Rsqrt,
        UnaryKind::Softplus,
        UnaryKind::LeakyRelu { alpha: 0.01 },
        UnaryKind::Elu { alpha: 1.0 },
        UnaryKind::Selu { alpha: 1.673_263_2, gamma: 1.050_701 },
        UnaryKind::Celu { alpha: 1.0 },
        UnaryKind::HardSigmoid { alpha: 0.2, beta: 0.5 },
        UnaryKind::HardSwish,
        UnaryKind::Log,
        UnaryKind::Mish,
        UnaryKind::GeluTanh,
        UnaryKind::Silu,
        UnaryKind::Softsign,
        UnaryKind::ThresholdedRelu { alpha: 1.0 },
        UnaryKind::Shrink { bias: 0.0, lambd: 0.5 },
        UnaryKind::Sin,
        UnaryKind::Cos,
        UnaryKind::Tan,
        UnaryKind::Asin,
        UnaryKind::Acos,
        UnaryKind::Atan,
        UnaryKind::Sinh,
        UnaryKind::Cosh,
        UnaryKind::Asinh,
        UnaryKind::Acosh,
        UnaryKind::Atanh,
        UnaryKind::Floor,
        UnaryKind::Ceil,
        UnaryKind::Round,
        UnaryKind::Sign,
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
            UnaryKind::Square => "square",
            UnaryKind::Rsqrt => "rsqrt",
            UnaryKind::Softplus => "softplus",
            UnaryKind::LeakyRelu { .. } => "leaky_relu",
            UnaryKind::Elu { .. } => "elu",
            UnaryKind::Selu { .. } => "selu",
            UnaryKind::Celu { .. } => "celu",
            UnaryKind::HardSigmoid { .. } => "hard_sigmoid",
            UnaryKind::HardSwish => "hard_swish",
            UnaryKind::Log => "log",
            UnaryKind::Mish => "mish",
            UnaryKind::GeluTanh => "gelu_tanh",
            UnaryKind::Silu => "silu",
            UnaryKind::Softsign => "softsign",
            UnaryKind::ThresholdedRelu { .. } => "thresholded_relu",
            UnaryKind::Shrink { .. } => "shrink",
            UnaryKind::Sin => "sin",
            UnaryKind::Cos => "cos",
            UnaryKind::Tan => "tan",
            UnaryKind::Asin => "asin",
            UnaryKind::Acos => "acos",
            UnaryKind::Atan => "atan",
            UnaryKind::Sinh => "sinh",
            UnaryKind::Cosh => "cosh",
            UnaryKind::Asinh => "asinh",
            UnaryKind::Acosh => "acosh",
            UnaryKind::Atanh => "atanh",
            UnaryKind::Floor => "floor",
            UnaryKind::Ceil => "ceil",
            UnaryKind::Round => "round",
            UnaryKind::Sign => "sign",
        }
    }

    /// The kind named `mnemonic`, at its default parameters.
    pub fn from_mnemonic(mnemonic: &str) -> Option<UnaryKind> {
        UnaryKind::ALL.into_iter().find(|k| k.mnemonic() == mnemonic)
    }

    /// The parameters, in text order, to set (the text parser, the ONNX frontend).
    pub fn params_mut(&mut self) -> Vec<(&'static str, &mut f32)> {
        match self {
            UnaryKind::LeakyRelu { alpha }
            | UnaryKind::Elu { alpha }
            | UnaryKind::Celu { alpha }
            | UnaryKind::ThresholdedRelu { alpha } => vec![("alpha", alpha)],
            UnaryKind::Shrink { bias, lambd } => vec![("bias", bias), ("lambd", lambd)],
            UnaryKind::Selu { alpha, gamma } => vec![("alpha", alpha), ("gamma", gamma)],
            UnaryKind::HardSigmoid { alpha, beta } => vec![("alpha", alpha), ("beta", beta)],
            _ => vec![],
        }
    }

    /// The parameters, in text order.
    pub fn params(self) -> Vec<(&'static str, f32)> {
        let mut k = self;
        k.params_mut().into_iter().map(|(n, v)| (n, *v)).collect()
    }

    /// The function itself.
    pub fn apply(self, x: f32) -> f32 {
        let softplus = |x: f32| if x > 20.0 { x } else { x.exp().ln_1p() };
        let hard_sigmoid = |alpha: f32, beta: f32, x: f32| (alpha * x + beta).clamp(0.0, 1.0);
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
            UnaryKind::Square => x * x,
            UnaryKind::Rsqrt => 1.0 / x.sqrt(),
            UnaryKind::Softplus => softplus(x),
            UnaryKind::LeakyRelu { alpha } => {
                if x >= 0.0 {
                    x
                } else {
                    alpha * x
                }
            }
            UnaryKind::Elu { alpha } => {
                if x > 0.0 {
                    x
                } else {
                    alpha * x.exp_m1()
                }
            }
            UnaryKind::Selu { alpha, gamma } => gamma * if x > 0.0 { x } else { alpha * x.exp_m1() },
            UnaryKind::Celu { alpha } => x.max(0.0) + (alpha * (x / alpha).exp_m1()).min(0.0),
            UnaryKind::HardSigmoid { alpha, beta } => hard_sigmoid(alpha, beta, x),
            UnaryKind::HardSwish => x * hard_sigmoid(1.0 / 6.0, 0.5, x),
            UnaryKind::Log => x.ln(),
            UnaryKind::Mish => x * softplus(x).tanh(),
            UnaryKind::GeluTanh => {
                let c = (2.0 / std::f32::consts::PI).sqrt();
                0.5 * x * (1.0 + (c * (x + 0.044_715 * x * x * x)).tanh())
            }
            UnaryKind::Silu => x / (1.0 + (-x).exp()),
            UnaryKind::Softsign => x / (1.0 + x.abs()),
            UnaryKind::ThresholdedRelu { alpha } => {
                if x > alpha {
                    x
                } else {
                    0.0
                }
            }
            UnaryKind::Shrink { bias, lambd } => {
                if x < -lambd {
                    x + bias
                } else if x > lambd {
                    x - bias
                } else {
                    0.0
                }
            }
            UnaryKind::Sin => x.sin(),
            UnaryKind::Cos => x.cos(),
            UnaryKind::Tan => x.tan(),
            UnaryKind::Asin => x.asin(),
            UnaryKind::Acos => x.acos(),
            UnaryKind::Atan => x.atan(),
            UnaryKind::Sinh => x.sinh(),
            UnaryKind::Cosh => x.cosh(),
            UnaryKind::Asinh => x.asinh(),
            UnaryKind::Acosh => x.acosh(),
            UnaryKind::Atanh => x.atanh(),
            UnaryKind::Floor => x.floor(),
            UnaryKind::Ceil => x.ceil(),
            UnaryKind::Round => x.round_ties_even(),
            UnaryKind::Sign => {
                if x == 0.0 || x.is_nan() {
                    x
                } else {
                    x.signum()
                }
            }
        }
    }

    /// The function as pieces `slope · x + intercept` between kinks, when it is
    /// piecewise linear: the SMPC backend then runs it exactly (comparisons and
    /// public slopes, no fit).
    pub fn pwl(self) -> Option<Pwl> {
        Some(match self {
            UnaryKind::Relu => Pwl::new(vec![0.0], vec![(0.0, 0.0), (1.0, 0.0)]),
            UnaryKind::Neg => Pwl::new(vec![], vec![(-1.0, 0.0)]),
            UnaryKind::Abs => Pwl::new(vec![0.0], vec![(-1.0, 0.0), (1.0, 0.0)]),
            UnaryKind::LeakyRelu { alpha } => Pwl::new(vec![0.0], vec![(alpha as f64, 0.0), (1.0, 0.0)]),
            UnaryKind::HardSigmoid { alpha, beta } if alpha != 0.0 => {
                let (a, b) = (alpha as f64, beta as f64);
                let (k0, k1) = ((0.0 - b) / a, (1.0 - b) / a);
                let (lo, hi) = if a > 0.0 { ((k0, 0.0), (k1, 1.0)) } else { ((k1, 1.0), (k0, 0.0)) };
                Pwl::new(vec![lo.0, hi.0], vec![(0.0, lo.1), (a, b), (0.0, hi.1)])
            }
            _ => return None,
        })
    }
}

/// A unary float elementwise op.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Unary {
    /// Which function.
    pub kind: UnaryKind,
}

impl Unary {
    /// Reads the parameters of `kind` (named by its mnemonic), each at its default when
    /// absent.
    pub(crate) fn parse_attrs(mut kind: UnaryKind, p: &mut Parser) -> Result<Unary, ParseError> {
        for (name, value) in kind.params_mut() {
            if let Some(v) = p.opt_attr(name, Parser::f32)? {
                *value = v;
            }
        }
        Ok(Unary { kind })
    }
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
    fn print_attrs(&self, w: &mut Printer) {
        let default = UnaryKind::from_mnemonic(self.kind.mnemonic()).expect("every kind is listed").params();
        for ((name, v), (_, d)) in self.kind.params().into_iter().zip(default) {
            if v.to_bits() != d.to_bits() {
                w.attr(name, |w| w.f32(v));
            }
        }
    }
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
    /// `a ∘ b` as a piecewise-linear function, each operand a piecewise-linear function
    /// of the same variable (`Ok`) or a constant (`Err`), when it is one.
    pub fn pwl(self, a: Result<&Pwl, f64>, b: Result<&Pwl, f64>) -> Option<Pwl> {
        use BinaryKind::*;
        Some(match (self, a, b) {
            (Add, Ok(p), Err(c)) | (Add, Err(c), Ok(p)) => p.then(&Pwl::affine(1.0, c)),
            (Sub, Ok(p), Err(c)) => p.then(&Pwl::affine(1.0, -c)),
            (Sub, Err(c), Ok(p)) => p.then(&Pwl::affine(-1.0, c)),
            (Mul, Ok(p), Err(c)) | (Mul, Err(c), Ok(p)) => p.then(&Pwl::affine(c, 0.0)),
            (Div, Ok(p), Err(c)) if c != 0.0 => p.then(&Pwl::affine(1.0 / c, 0.0)),
            (Max, Ok(p), Err(c)) | (Max, Err(c), Ok(p)) => p.then(&Pwl::clamp_at(c, true)),
            (Min, Ok(p), Err(c)) | (Min, Err(c), Ok(p)) => p.then(&Pwl::clamp_at(c, false)),
            (Add, Ok(p), Ok(q)) => p.plus(q, 1.0),
            (Sub, Ok(p), Ok(q)) => p.plus(q, -1.0),
            _ => return None,
        })
    }

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

/// The value of constant `v` when all its elements are equal (a scalar, or a tensor
/// broadcasting one number); `None` for per-channel constants and computed values.
pub fn uniform_const(graph: &Graph, v: ValueId) -> Option<f32> {
    let t = graph.const_value(v)?.as_f32()?;
    let first = *t.iter().next()?;
    t.iter().all(|x| x.to_bits() == first.to_bits()).then_some(first)
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

    /// Chain value `target` as a piecewise-linear function of the source, when every
    /// node on the way is one ([`UnaryKind::pwl`], [`BinaryKind`]s with a constant the
    /// same for every element).
    pub fn pwl(&self, graph: &Graph, target: ValueId) -> Option<Pwl> {
        let mut f: HashMap<ValueId, Pwl> = self.entries.iter().map(|&e| (e, Pwl::identity())).collect();
        for v in self.chain_to(graph, target) {
            let node = graph.node(v);
            let g = match &node.op {
                Op::Unary(u) => f.get(&node.inputs[0])?.then(&u.kind.pwl()?),
                Op::Binary(b) => {
                    let arg = |i: ValueId| match f.get(&i) {
                        Some(p) => Some(Ok(p)),
                        None => uniform_const(graph, i).map(|c| Err(c as f64)),
                    };
                    b.kind.pwl(arg(node.inputs[0])?, arg(node.inputs[1])?)?
                }
                _ => return None,
            };
            f.insert(v, g);
        }
        f.remove(&target)
    }

    /// The SMPC step computing chain value `v` of `graph` into register `out`, `x`
    /// holding the source: the exact comparison protocol for a lone ReLU, exact pieces
    /// for any other piecewise-linear chain, else the chain fitted as a piecewise
    /// polynomial.
    pub fn mpc_step<C: MpcCx>(&self, graph: &Graph, v: ValueId, x: Reg, out: Reg, cx: &C) -> Result<StepOp, C::Error> {
        let len = graph.ty(v).shape.numel();
        let chain = self.chain_to(graph, v);
        if let [only] = chain[..] {
            if matches!(graph.node(only).op, Op::Unary(Unary { kind: UnaryKind::Relu })) {
                return Ok(StepOp::Relu { x, len, out });
            }
        }
        let function = match self.pwl(graph, v) {
            Some(f) => cx.exact(v, self.source, &chain, &f)?,
            None => cx.fit(v, self.source, &chain)?,
        };
        Ok(StepOp::Piecewise { x, len, function, out })
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

/// The range float value `v` took on the calibration set.
fn range<C: QuantizeCx>(cx: &C, v: ValueId) -> Result<(f64, f64), C::Error> {
    cx.range(v).ok_or_else(|| cx.fail(v, "never calibrated"))
}

/// `(a − a_zp) + sign · (b − b_zp)` of two integer values of the new graph at one scale.
fn push_add_int<C: QuantizeCx>(
    cx: &mut C,
    a: ValueId,
    b: ValueId,
    sign: i64,
    name: String,
) -> Result<ValueId, C::Error> {
    let zp = |x: ValueId| cx.new_graph().ty(x).as_int().and_then(|t| t.quant.as_ref()).map_or(0, |q| q.zero_point[0]);
    let op = AddInt { sign, a_zp: zp(a), b_zp: zp(b) };
    cx.push(Op::AddInt(op), vec![a, b], name)
}

/// Float values `a` and `b` as integers at one per-tensor quantization, `bits` over
/// the union of their calibrated ranges.
pub(crate) fn at_one_scale<C: QuantizeCx>(cx: &mut C, a: ValueId, b: ValueId) -> Result<(ValueId, ValueId), C::Error> {
    let (ra, rb) = (range(cx, a)?, range(cx, b)?);
    let both = (ra.0.min(rb.0), ra.1.max(rb.1));
    Ok((cx.int_over(a, both)?, cx.int_over(b, both)?))
}

/// The elementwise product of integers `ia` and `ib` (new graph, one scale, one shape)
/// as `((a+b)² − (a−b)²) / 4`: their exact sum and difference, a table of `x²/4` on
/// each onto the product's grid, and the exact difference of the two tables.
pub(crate) fn push_product<C: QuantizeCx>(
    cx: &mut C,
    ia: ValueId,
    ib: ValueId,
    name: &str,
) -> Result<ValueId, C::Error> {
    let scale = cx.new_graph().ty(ia).as_int().and_then(|t| t.quant.as_ref()).map_or(1.0, |q| q.scale[0]);
    let sum = push_add_int(cx, ia, ib, 1, format!("{name}.sum"))?;
    let diff = push_add_int(cx, ia, ib, -1, format!("{name}.difference"))?;
    let peak = [sum, diff]
        .map(|x| {
            let (lo, hi) = cx.observed(x);
            lo.unsigned_abs().max(hi.unsigned_abs()) as f64 * scale
        })
        .into_iter()
        .fold(0.0, f64::max);
    let out = output_quant(0.0, peak * peak / 4.0, cx.config().bits);
    let quarter_square = |x: f32| x * x / 4.0;
    // These tables read `bits` bits, not `table_bits`: through 5-bit indices a
    // product of two activations is off by ~5% of its range, which cost the gate
    // model 2 points of accuracy.
    let index_bits = cx.config().bits.max(cx.config().table_bits);
    let u = cx.push_table(sum, &quarter_square, out.clone(), index_bits, format!("{name}.sum²/4"))?;
    let w = cx.push_table(diff, &quarter_square, out, index_bits, format!("{name}.difference²/4"))?;
    push_add_int(cx, u, w, -1, name.to_owned())
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
                let m =
                    format!("`{}` of two different computed tensors is not supported under quantization", k.mnemonic());
                return Err(cx.fail(v, m));
            }
        };
        let (ia, ib) = at_one_scale(cx, a, b)?;
        if self.kind != BinaryKind::Mul {
            return push_add_int(cx, ia, ib, sign, node.name.clone()).map(Lowered::Computed);
        }
        push_product(cx, ia, ib, &node.name).map(Lowered::Computed)
    }

    /// The SMPC lowering of `a ± b` or `a · b` for two different computed values.
    fn lower_two<C: MpcCx>(&self, graph: &Graph, v: ValueId, cx: &mut C) -> Result<Lowered<Reg>, C::Error> {
        let node = graph.node(v);
        let op = match self.kind {
            BinaryKind::Add => PairOp::Add,
            BinaryKind::Sub => PairOp::Sub,
            BinaryKind::Mul | BinaryKind::Div => PairOp::Mul,
            k => {
                let m =
                    format!("`{}` of two different computed tensors is not supported by the mpc backend", k.mnemonic());
                return Err(cx.fail(v, m));
            }
        };
        let (a, b) = (node.inputs[0], node.inputs[1]);
        let (ra, mut rb) = (cx.reg(a)?, cx.reg(b)?);
        if self.kind == BinaryKind::Div {
            // a / b = a · (1/b), the reciprocal fitted on b's calibrated range (a
            // LayerNorm's `d / √(var + ε)` as opset 13 writes it).
            let (lo, hi) = cx.range(b).ok_or_else(|| cx.fail(b, "never calibrated"))?;
            if lo <= 0.0 && hi >= 0.0 {
                return Err(cx.fail(v, format!("divides by a tensor whose calibrated range [{lo}, {hi}] reaches 0")));
            }
            let margin = (hi - lo) * 0.1;
            let tol = 1e-4 / lo.abs().min(hi.abs());
            let recip = cx.fit_fn(v, "1/x", &|x: f64| 1.0 / x, (lo - margin, hi + margin), tol)?;
            let r = cx.new_reg();
            cx.step(v, StepOp::Piecewise { x: rb, len: graph.ty(b).shape.numel(), function: recip, out: r });
            rb = r;
        }
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

impl Binary {
    /// `y = scale ⊙ x + bias` (per element of the output, constants broadcast) with `x`
    /// the computed operand, when this op is an affine map whose constant differs
    /// between elements (a standalone BatchNormalization, a per-channel bias or scale).
    fn per_channel_affine(&self, graph: &Graph, v: ValueId) -> Option<(ValueId, Vec<f64>, Vec<f64>)> {
        let [a, b] = graph.node(v).inputs[..] else { return None };
        let (x, c, const_first) = match (graph.const_value(a), graph.const_value(b)) {
            (None, Some(_)) => (a, b, false),
            (Some(_), None) => (b, a, true),
            _ => return None,
        };
        let shape = &graph.ty(v).shape;
        if uniform_const(graph, c).is_some() || graph.ty(x).shape != *shape {
            return None;
        }
        let c =
            graph.const_value(c)?.as_f32()?.broadcast(IxDyn(&shape.0))?.iter().map(|&c| c as f64).collect::<Vec<_>>();
        let ones = vec![1.0; c.len()];
        Some(match (self.kind, const_first) {
            (BinaryKind::Add, _) => (x, ones, c),
            (BinaryKind::Sub, false) => (x, ones, c.iter().map(|c| -c).collect()),
            (BinaryKind::Sub, true) => (x, vec![-1.0; c.len()], c),
            (BinaryKind::Mul, _) => (x, c, vec![]),
            (BinaryKind::Div, false) => (x, c.iter().map(|c| 1.0 / c).collect(), vec![]),
            _ => return None,
        })
    }
}

impl MpcRule for Binary {
    /// A per-channel affine map is one product with shared per-element weights and
    /// bias (a depthwise 1×1 convolution over the elements: one round) and one
    /// truncation; any other binary op joins its operands' chain.
    fn lower_mpc<C: MpcCx>(&self, graph: &Graph, v: ValueId, cx: &mut C) -> Result<Lowered<Reg>, C::Error> {
        let operands = graph.node(v).inputs.iter().map(|&i| Region::of(i, cx.state(i), |_| i)).collect::<Vec<_>>();
        if two_sources(&operands) {
            return self.lower_two(graph, v, cx);
        }
        let Some((x, scale, bias)) = self.per_channel_affine(graph, v) else { return lower_chain(graph, v, cx) };
        let f = cx.frac_bits();
        let x = cx.reg(x)?;
        let len = scale.len();
        let name = |what: &str| format!("{v} \"{}\" {what}", graph.node(v).name);
        let w = cx.raw_weight(name("scale"), scale.iter().map(|&s| encode_fixed(s, f)).collect());
        let b = (!bias.is_empty())
            .then(|| cx.raw_weight(name("bias"), bias.iter().map(|&b| encode_fixed(b, 2 * f)).collect()));
        let geometry = ConvGeometry {
            input: [1, len, 1, 1],
            kernel: [len, 1, 1, 1],
            output: [1, len, 1, 1],
            strides: [1, 1],
            pads: [0, 0],
            dilations: [1, 1],
            group: len,
        };
        let wide = cx.new_reg();
        cx.step(v, StepOp::Conv { x, w, b, geometry, out: wide });
        let out = cx.new_reg();
        cx.step(v, StepOp::Trunc { x: wide, len, bits: f, out });
        Ok(Lowered::Computed(out))
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
