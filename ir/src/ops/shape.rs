//! `reshape %x {shape=[...]}`: the same elements in C order under a new shape
//! (ONNX `Reshape`, `Flatten`, `Squeeze`, `Unsqueeze`). Integer ranges carry over;
//! per-channel quantization survives only when the channel axis keeps its place.
//!
//! Quantization: the input's, requantized per tensor when its channels would scatter.
//! TFHE: levelled (an index remap). SMPC: the same register, read in the new shape.

use super::facets::{Channels, FheLowering, FheRule, Lowered, MpcCx, MpcRule, QuantizeCx, QuantizeRule, TableNoise};
use super::{expect_arity, Op, OpSpec, Operand};
use crate::lowered::mpc::Reg;
use crate::tensor::Tensor;
use crate::text::{ParseError, Parser, Printer};
use crate::types::{ElemType, IntType, Shape, TensorType};
use crate::{Graph, ValueId};
use ndarray::IxDyn;
use serde::{Deserialize, Serialize};

/// A reshape to a static shape.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Reshape {
    /// The new shape.
    pub shape: Shape,
}

impl OpSpec for Reshape {
    fn mnemonic(&self) -> &'static str {
        "reshape"
    }
    fn infer(&self, inputs: &[Operand]) -> Result<TensorType, String> {
        expect_arity(inputs, 1..=1)?;
        let x = inputs[0].ty;
        if Some(x.shape.numel()) != self.shape.0.iter().try_fold(1usize, |p, &d| p.checked_mul(d)) {
            return Err(format!("cannot reshape {} into {}", x.shape, self.shape));
        }
        let elem = match &x.elem {
            ElemType::F32 => ElemType::F32,
            ElemType::Int(t) => {
                let quant = t.quant.as_ref().and_then(|q| match q.axis {
                    None => Some(q.clone()),
                    // The channel survives when every axis up to it is unchanged.
                    Some(a) if a < self.shape.rank() && x.shape.0[..=a] == self.shape.0[..=a] => Some(q.clone()),
                    Some(_) => None,
                });
                if t.quant.is_some() && quant.is_none() {
                    return Err(format!(
                        "reshape {} -> {} would scatter per-channel quantization",
                        x.shape, self.shape
                    ));
                }
                ElemType::Int(IntType { lo: t.lo, hi: t.hi, quant })
            }
        };
        Ok(TensorType { elem, shape: self.shape.clone() })
    }
    fn eval(&self, inputs: &[&Tensor]) -> Tensor {
        let sh = IxDyn(&self.shape.0);
        match inputs[0] {
            Tensor::F32(x) => Tensor::F32(x.to_shape(sh).expect("verified").into_owned()),
            Tensor::I64(x) => Tensor::I64(x.to_shape(sh).expect("verified").into_owned()),
        }
    }
    fn print_attrs(&self, w: &mut Printer) {
        w.attr("shape", |w| w.dims(&self.shape.0));
    }
}

impl Reshape {
    /// Reads `{shape=[...]}`.
    pub(crate) fn parse_attrs(p: &mut Parser) -> Result<Self, ParseError> {
        Ok(Reshape { shape: Shape(p.attr("shape", Parser::dims)?) })
    }
}

impl QuantizeRule for Reshape {
    fn quantize<C: QuantizeCx>(&self, graph: &Graph, v: ValueId, cx: &mut C) -> Result<Lowered<ValueId>, C::Error> {
        let node = graph.node(v);
        let x = cx.int(node.inputs[0])?;
        let op = Op::Reshape(Reshape { shape: self.shape.clone() });
        let keeps_channels = op.infer(&cx.new_graph().operands(&[x])).is_ok();
        let x = if keeps_channels { x } else { cx.int_per_tensor(node.inputs[0])? };
        Ok(Lowered::Computed(cx.push(op, vec![x], node.name.clone())?))
    }
    fn table_noise(&self) -> TableNoise {
        TableNoise::Forwarded
    }
    fn weight_channels(&self, _: usize) -> Option<Channels> {
        None
    }
}

impl FheRule for Reshape {
    fn fhe_lowering(&self) -> FheLowering<'_> {
        FheLowering::Levelled
    }
}

impl MpcRule for Reshape {
    fn lower_mpc<C: MpcCx>(&self, graph: &Graph, v: ValueId, cx: &mut C) -> Result<Lowered<Reg>, C::Error> {
        Ok(Lowered::Computed(cx.reg(graph.node(v).inputs[0])?))
    }
    fn min_frac_bits(&self) -> u32 {
        0
    }
}
