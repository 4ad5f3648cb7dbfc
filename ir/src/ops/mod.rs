//! The closed set of IR ops. An op is one file holding every facet of it:
//!
//! - [`OpSpec`]: its mnemonic, its exact semantics (`eval`), its type rule with the
//!   integer range analysis (`infer`) and its text attributes, printed and parsed
//!   there ([`Op::parse`] is the one table from mnemonics to ops);
//! - [`QuantizeRule`]: what the quantizer makes of it;
//! - [`FheRule`]: how the TFHE backend computes it;
//! - [`MpcRule`]: how the SMPC backend computes it.
//!
//! None of these traits has a default, and [`Op`] implements each by delegating to
//! the variant's struct (one `dispatch!`), so a new op is a compile error until every
//! facet is written; `docs/add-an-op.md` is the checklist. Families share helpers
//! written once: `linear.rs` for multiply-accumulates (and [`LinearMap`], the levelled
//! form of any integer op), [`Region`] for elementwise chains.

mod add_int;
mod batch_matmul;
mod bucketize;
mod conv;
mod elementwise;
mod facets;
mod fake_quant;
mod gather;
mod input;
mod konst;
mod linear;
mod lut;
mod matmul;
mod normalize;
mod pool;
mod pwl;
mod quant;
mod reduce;
mod shape;
mod softmax;
mod tree;

pub use add_int::AddInt;
pub use batch_matmul::BatchMatMul;
pub use bucketize::{Bucketize, Cut};
pub use conv::{conv_accumulate, Conv, ConvGeometry};
pub use elementwise::{uniform_const, Binary, BinaryKind, Region, Unary, UnaryKind};
pub use facets::{Channels, FheLowering, FheRule, Lowered, MpcCx, MpcRule, QuantizeCx, QuantizeRule, TableNoise};
pub use fake_quant::{quantize_linear, FakeQuant};
pub use gather::Gather;
pub use input::Input;
pub use konst::Const;
pub use linear::{LinearMap, MapOperand};
pub use lut::{round_shift, Lut};
pub use matmul::MatMul;
pub use normalize::{Norm, Normalize};
pub use pool::{AvgPool, MaxPool, SumPool, Window};
pub use pwl::Pwl;
pub use quant::{interval_quant, output_quant, quantize_value, Dequantize, Quantize};
pub use reduce::{Reduce, ReduceKind};
pub use shape::Reshape;
pub use softmax::Softmax;
pub use tree::{Aggregate, BranchMode, LeafPath, Literal, Split, Tree, TreeEnsemble, TreeNode, FOREST_FRAC_BITS};

use crate::tensor::Tensor;
use crate::text::{ParseError, Parser, Printer};
use crate::types::TensorType;
use serde::{Deserialize, Serialize};

/// An operand as `infer` sees it: its type, and its value when it is a constant
/// (range analysis of linear ops needs the clear weights).
#[derive(Clone, Copy, Debug)]
pub struct Operand<'a> {
    /// The operand's type.
    pub ty: &'a TensorType,
    /// The operand's value, when it is produced by a `const`.
    pub value: Option<&'a Tensor>,
}

/// Behaviour every op provides. Implemented by each op struct; [`Op`] delegates.
pub trait OpSpec {
    /// The op's name in the text form.
    fn mnemonic(&self) -> &'static str;
    /// The output type, including the exact integer range for integer ops.
    fn infer(&self, inputs: &[Operand]) -> Result<TensorType, String>;
    /// The exact semantics. Inputs have been checked by the verifier; a mismatch is a bug.
    fn eval(&self, inputs: &[&Tensor]) -> Tensor;
    /// Prints the attributes ([`Printer::attr`] each, in a fixed order), leaving out
    /// those at their default and those the node's type already says. The op's
    /// `parse_attrs` reads them back.
    fn print_attrs(&self, w: &mut Printer);
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
    /// Softmax or log-softmax over some axes (float).
    Softmax(Softmax),
    /// Each row divided by its norm (ONNX-ML Normalizer, float).
    Normalize(Normalize),
    /// Data movement: a selection of the operands' elements and constants.
    Gather(Gather),
    /// Sum or maximum over axes.
    Reduce(Reduce),
    /// A quantize → dequantize pair on floats (ONNX QDQ), float IR only. Last, so the
    /// serialized form (and so the digests) of graphs without it is unchanged.
    FakeQuant(FakeQuant),
    // Appended: a variant's serialized tag is its position, which graph digests hash.
    /// Matrix product of two computed tensors, float IR only.
    BatchMatMul(BatchMatMul),
    /// Integer sum or difference of two tensors at one scale.
    AddInt(AddInt),
    /// Float features to the count of cuts each passes (a tree ensemble's input).
    Bucketize(Bucketize),
}

macro_rules! dispatch {
    ($self:ident, $op:ident => $e:expr) => {
        match $self {
            Op::Input($op) => $e,
            Op::Const($op) => $e,
            Op::Conv($op) => $e,
            Op::MatMul($op) => $e,
            Op::BatchMatMul($op) => $e,
            Op::Unary($op) => $e,
            Op::Binary($op) => $e,
            Op::MaxPool($op) => $e,
            Op::AvgPool($op) => $e,
            Op::SumPool($op) => $e,
            Op::Reshape($op) => $e,
            Op::Quantize($op) => $e,
            Op::Dequantize($op) => $e,
            Op::Lut($op) => $e,
            Op::AddInt($op) => $e,
            Op::Softmax($op) => $e,
            Op::Normalize($op) => $e,
            Op::TreeEnsemble($op) => $e,
            Op::Gather($op) => $e,
            Op::Reduce($op) => $e,
            Op::FakeQuant($op) => $e,
            Op::Bucketize($op) => $e,
        }
    };
}
pub(crate) use dispatch;

impl OpSpec for Op {
    fn mnemonic(&self) -> &'static str {
        dispatch!(self, op => op.mnemonic())
    }
    fn infer(&self, inputs: &[Operand]) -> Result<TensorType, String> {
        dispatch!(self, op => op.infer(inputs))
    }
    fn eval(&self, inputs: &[&Tensor]) -> Tensor {
        dispatch!(self, op => op.eval(inputs))
    }
    fn print_attrs(&self, w: &mut Printer) {
        dispatch!(self, op => op.print_attrs(w))
    }
}

impl Op {
    /// Reads the attributes of the op named `mnemonic`; `None` when no op has that name.
    pub(crate) fn parse(mnemonic: &str, p: &mut Parser) -> Option<Result<Op, ParseError>> {
        Some(match mnemonic {
            "input" => Input::parse_attrs(p).map(Op::Input),
            "const" => Const::parse_attrs(p).map(Op::Const),
            "conv" => Conv::parse_attrs(p).map(Op::Conv),
            "matmul" => MatMul::parse_attrs(p).map(Op::MatMul),
            "batch_matmul" => BatchMatMul::parse_attrs(p).map(Op::BatchMatMul),
            "max_pool" => MaxPool::parse_attrs(p).map(Op::MaxPool),
            "avg_pool" => AvgPool::parse_attrs(p).map(Op::AvgPool),
            "sum_pool" => SumPool::parse_attrs(p).map(Op::SumPool),
            "reshape" => Reshape::parse_attrs(p).map(Op::Reshape),
            "gather" => Gather::parse_attrs(p).map(Op::Gather),
            "reduce_sum" => Reduce::parse_attrs(ReduceKind::Sum, p).map(Op::Reduce),
            "reduce_max" => Reduce::parse_attrs(ReduceKind::Max, p).map(Op::Reduce),
            "quantize" => Quantize::parse_attrs(p).map(Op::Quantize),
            "bucketize" => Bucketize::parse_attrs(p).map(Op::Bucketize),
            "dequantize" => Dequantize::parse_attrs(p).map(Op::Dequantize),
            "fake_quant" => FakeQuant::parse_attrs(p).map(Op::FakeQuant),
            "lut" => Lut::parse_attrs(p).map(Op::Lut),
            "add_int" => AddInt::parse_attrs(p).map(Op::AddInt),
            "softmax" => Softmax::parse_attrs(p, false).map(Op::Softmax),
            "log_softmax" => Softmax::parse_attrs(p, true).map(Op::Softmax),
            "normalize" => Normalize::parse_attrs(p).map(Op::Normalize),
            "tree_ensemble" => TreeEnsemble::parse_attrs(p).map(Op::TreeEnsemble),
            m => match (UnaryKind::from_mnemonic(m), BinaryKind::ALL.into_iter().find(|k| k.mnemonic() == m)) {
                (Some(kind), _) => Unary::parse_attrs(kind, p).map(Op::Unary),
                (_, Some(kind)) => Ok(Op::Binary(Binary { kind })),
                (None, None) => return None,
            },
        })
    }
}

/// The quantization a node's type states (none for floats): attributes that repeat
/// it are not printed.
pub(crate) fn node_quant(ty: Option<&TensorType>) -> Option<&crate::types::Quant> {
    ty.and_then(TensorType::as_int).and_then(|t| t.quant.as_ref())
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

/// Checks that the operands of an op are all float, or all integers, and says which.
pub(crate) fn common_is_float(inputs: &[Operand]) -> Result<bool, String> {
    let float = inputs[0].ty.is_float();
    if inputs.iter().any(|o| o.ty.is_float() != float) {
        return Err("mixes float and integer operands".into());
    }
    Ok(float)
}
