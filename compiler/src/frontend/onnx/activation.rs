//! ONNX activations secc reads as one univariate op each. tract expands most of them
//! into comparisons and selects (`Elu`, `Selu`: `Iff(x > 0, …)`), which no IR op
//! stands for, and truncates some defaults (`Selu`'s alpha to 1.67326); so secc
//! registers its own builders in tract's op table: each is one tract element-wise op
//! carrying the [`UnaryKind`] with its ONNX attributes, which `translate` reads back.
//! PRelu, whose slope is an operand, becomes `max(x, 0) + slope · min(x, 0)`: an
//! elementwise chain the quantizer tabulates and the SMPC backend runs exactly.

use secc_ir::ops::UnaryKind;
use tract_onnx::model::{OnnxOpRegister, ParsingContext};
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_core::ops::change_axes::wire_with_rank_broadcast;
use tract_onnx::tract_core::ops::element_wise::{ElementWiseMiniOp, ElementWiseOp};
use tract_onnx::tract_core::ops::math::{add, max, min, mul};
use tract_onnx::tract_hir::internal::*;

/// A secc activation inside tract's typed model.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Activation(pub UnaryKind);

// Parameters are ONNX attributes, never NaN.
impl Eq for Activation {}

impl ElementWiseMiniOp for Activation {
    fn name(&self) -> String {
        format!("secc.{}", self.0.mnemonic())
    }

    fn eval_in_place(&self, t: &mut Tensor, _: Option<DatumType>) -> TractResult<()> {
        let mut plain = t.try_as_plain_ram_mut()?;
        plain.as_slice_mut::<f32>()?.iter_mut().for_each(|x| *x = self.0.apply(*x));
        Ok(())
    }
}

type Built = TractResult<(Box<dyn InferenceOp>, Vec<String>)>;

/// The kind named `mnemonic` with the node's attributes (ONNX defaults where absent).
fn activation(mnemonic: &str, node: &NodeProto) -> Built {
    let mut kind = UnaryKind::from_mnemonic(mnemonic).expect("a listed kind");
    for (name, value) in kind.params_mut() {
        if let Some(v) = node.get_attr_opt::<f32>(name)? {
            *value = v;
        }
    }
    Ok((ElementWiseOp(Box::new(Activation(kind)), None).into_hir(), vec![]))
}

fn gelu(_: &ParsingContext, node: &NodeProto) -> Built {
    match node.get_attr_opt::<String>("approximate")?.as_deref() {
        None | Some("none") => activation("gelu", node),
        Some("tanh") => activation("gelu_tanh", node),
        Some(other) => bail!("Gelu approximate={other:?} is not an ONNX mode"),
    }
}

/// Registers the builders (replacing tract's for these ops).
pub(super) fn register(reg: &mut OnnxOpRegister) {
    reg.insert("Celu", |_, n| activation("celu", n));
    reg.insert("Elu", |_, n| activation("elu", n));
    reg.insert("Gelu", gelu);
    reg.insert("HardSigmoid", |_, n| activation("hard_sigmoid", n));
    reg.insert("HardSwish", |_, n| activation("hard_swish", n));
    reg.insert("LeakyRelu", |_, n| activation("leaky_relu", n));
    reg.insert("Mish", |_, n| activation("mish", n));
    reg.insert("PRelu", |_, _| Ok((expand(Prelu), vec![])));
    reg.insert("Selu", |_, n| activation("selu", n));
    reg.insert("Softplus", |_, n| activation("softplus", n));
    reg.insert("Softsign", |_, n| activation("softsign", n));
    reg.insert("ThresholdedRelu", |_, n| activation("thresholded_relu", n));
    reg.insert("Shrink", |_, n| activation("shrink", n));
    reg.insert("Sin", |_, n| activation("sin", n));
    reg.insert("Cos", |_, n| activation("cos", n));
    reg.insert("Tan", |_, n| activation("tan", n));
    reg.insert("Asin", |_, n| activation("asin", n));
    reg.insert("Acos", |_, n| activation("acos", n));
    reg.insert("Atan", |_, n| activation("atan", n));
    reg.insert("Sinh", |_, n| activation("sinh", n));
    reg.insert("Cosh", |_, n| activation("cosh", n));
    reg.insert("Asinh", |_, n| activation("asinh", n));
    reg.insert("Acosh", |_, n| activation("acosh", n));
    reg.insert("Atanh", |_, n| activation("atanh", n));
    reg.insert("Floor", |_, n| activation("floor", n));
    reg.insert("Ceil", |_, n| activation("ceil", n));
    reg.insert("Round", |_, n| activation("round", n));
    reg.insert("Sign", |_, n| activation("sign", n));
}

/// `max(x, 0) + slope · min(x, 0)`, the slope broadcast to x as ONNX says.
#[derive(Debug, Clone, Hash)]
struct Prelu;

impl Expansion for Prelu {
    fn name(&self) -> StaticName {
        "PRelu".into()
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        check_input_arity(inputs, 2)?;
        check_output_arity(outputs, 1)?;
        s.equals(&inputs[0].datum_type, &outputs[0].datum_type)?;
        s.equals(&inputs[0].shape, &outputs[0].shape)?;
        Ok(())
    }

    fn wire(&self, prefix: &str, model: &mut TypedModel, inputs: &[OutletId]) -> TractResult<TVec<OutletId>> {
        let zero = model.add_const(format!("{prefix}.zero"), tensor0(0f32))?;
        let pos = wire_with_rank_broadcast(format!("{prefix}.pos"), model, max(), &[inputs[0], zero])?[0];
        let neg = wire_with_rank_broadcast(format!("{prefix}.neg"), model, min(), &[inputs[0], zero])?[0];
        let scaled = wire_with_rank_broadcast(format!("{prefix}.scaled"), model, mul(), &[neg, inputs[1]])?[0];
        wire_with_rank_broadcast(prefix, model, add(), &[pos, scaled])
    }
}
