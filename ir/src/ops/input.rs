//! `input N`: the graph's N-th input. Its type is given, not inferred.
//!
//! Quantization: the quantizer keeps the float input and quantizes it per tensor to
//! `input_bits` unsigned bits over its calibrated range, plus `input_margin` of its
//! width on each side and widened to include 0 (so zero padding is exact); the client
//! does that in the clear. SMPC: the data owner secret-shares it.

use super::facets::{
    Channels, FheLowering, FheRule, Lowered, MpcCx, MpcRule, QuantizeCx, QuantizeRule, TableNoise, FHE_NOT_YET,
};
use super::{output_quant, Op, OpSpec, Operand, Quantize};
use crate::lowered::mpc::{Reg, StepOp};
use crate::tensor::Tensor;
use crate::text::{ParseError, Parser, Printer};
use crate::types::TensorType;
use crate::{Graph, ValueId};
use serde::{Deserialize, Serialize};

/// The graph's `index`-th input, of the declared type.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Input {
    /// Position among the graph inputs.
    pub index: usize,
    /// The declared type (inputs have nothing to infer from).
    pub ty: TensorType,
}

impl OpSpec for Input {
    fn mnemonic(&self) -> &'static str {
        "input"
    }
    fn infer(&self, inputs: &[Operand]) -> Result<TensorType, String> {
        super::expect_arity(inputs, 0..=0)?;
        Ok(self.ty.clone())
    }
    fn eval(&self, _: &[&Tensor]) -> Tensor {
        unreachable!("graph inputs are bound by the executor, not evaluated")
    }
    fn print_attrs(&self, w: &mut Printer) {
        w.attr("index", |w| w.display(self.index));
        if w.node_type() != Some(&self.ty) {
            w.attr("type", |w| self.ty.print(w));
        }
    }
}

impl Input {
    /// Reads `{index=N}`, and `type=...` when it is not the node's type.
    pub(crate) fn parse_attrs(p: &mut Parser) -> Result<Self, ParseError> {
        let index = p.attr("index", Parser::usize)?;
        let ty = match (p.opt_attr("type", TensorType::parse)?, p.node_type()) {
            (Some(ty), _) => ty,
            (None, Some(ty)) => ty.clone(),
            (None, None) => return Err(p.expected("attribute `type`")),
        };
        Ok(Input { index, ty })
    }
}

impl QuantizeRule for Input {
    fn quantize<C: QuantizeCx>(&self, graph: &Graph, v: ValueId, cx: &mut C) -> Result<Lowered<ValueId>, C::Error> {
        let name = graph.node(v).name.clone();
        let x = cx.push(Op::Input(self.clone()), vec![], name.clone())?;
        let (lo, hi) = cx.range(v).ok_or_else(|| cx.fail(v, "input never calibrated"))?;
        let (lo, hi) = cx.config().input_span(lo, hi);
        let (quant, qlo, qhi) = output_quant(lo, hi, cx.config().input_bits);
        Ok(Lowered::Computed(cx.push(Op::Quantize(Quantize { quant, lo: qlo, hi: qhi }), vec![x], name)?))
    }
    fn table_noise(&self) -> TableNoise {
        TableNoise::Untracked
    }
    fn weight_channels(&self, _: usize) -> Option<Channels> {
        None
    }
}

impl FheRule for Input {
    fn fhe_lowering(&self) -> FheLowering<'_> {
        // The client encrypts what `quantize` makes of its float inputs: an integer
        // input would need an encryption step of its own.
        FheLowering::Refused(FHE_NOT_YET)
    }
}

impl MpcRule for Input {
    fn lower_mpc<C: MpcCx>(&self, graph: &Graph, v: ValueId, cx: &mut C) -> Result<Lowered<Reg>, C::Error> {
        let out = cx.new_reg();
        // The weights are appended to this step's secrets as they are found.
        cx.step(v, StepOp::Share { out, len: graph.ty(v).shape.numel() });
        Ok(Lowered::Computed(out))
    }
    fn min_frac_bits(&self) -> u32 {
        0
    }
}
