//! Float elementwise ops: `relu`, `sigmoid`, `tanh`, `erf`, `gelu`, ... (unary) and
//! `add`, `sub`, `mul`, `div`, `max`, `min`, `pow` (binary, NumPy broadcasting).
//!
//! They exist only in the float IR. The quantizer turns every chain of them that
//! hangs off a single integer value into one table ([`super::Lut`]), so a new
//! activation needs an entry here and no backend code.

use super::{expect_arity, OpClass, OpSpec, Operand};
use crate::tensor::Tensor;
use crate::text::Printer;
use crate::types::{Shape, TensorType};
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
    fn class(&self) -> OpClass {
        OpClass::Elementwise
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
    fn class(&self) -> OpClass {
        OpClass::Elementwise
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
