//! `softmax %x {axes=[...]}` and `log_softmax %x {axes=[...]}` (ONNX `Softmax`,
//! `LogSoftmax`; before opset 13 tract coerces them to 2-D, which arrives here as the
//! trailing axes): `y = e^(x − m) / Σ e^(x − m)` over `axes`, `m` the maximum over
//! them, so no term overflows; the log form is `x − m − ln Σ e^(x − m)`. Float only.
//!
//! Quantization: a softmax is no univariate table (each output reads its whole row),
//! so it has an integer form only where it ends the model: its operand is dequantized
//! for the receiver, who computes the softmax in float after decryption, exactly, as
//! it does for a final sigmoid (a classifier's probabilities are then the client's own
//! computation; the logits it sees carry the same information, up to a constant per
//! row). Anywhere else the quantizer refuses it, and so does TFHE. SMPC: none yet.

use super::facets::{Channels, FheLowering, FheRule, Lowered, MpcCx, MpcRule, QuantizeCx, QuantizeRule, TableNoise};
use super::{expect_arity, Dequantize, Op, OpSpec, Operand};
use crate::lowered::mpc::Reg;
use crate::tensor::Tensor;
use crate::text::{ParseError, Parser, Printer};
use crate::types::TensorType;
use crate::{Graph, ValueId};
use ndarray::{ArrayD, Axis};
use serde::{Deserialize, Serialize};

/// Softmax or log-softmax over some axes.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Softmax {
    /// The axes normalised over, ascending.
    pub axes: Vec<usize>,
    /// `log_softmax` rather than `softmax`.
    pub log: bool,
}

impl OpSpec for Softmax {
    fn mnemonic(&self) -> &'static str {
        if self.log {
            "log_softmax"
        } else {
            "softmax"
        }
    }
    fn infer(&self, inputs: &[Operand]) -> Result<TensorType, String> {
        expect_arity(inputs, 1..=1)?;
        let x = inputs[0].ty;
        if !x.is_float() {
            return Err("is a float op; it has no integer form".into());
        }
        if self.axes.is_empty() || self.axes.windows(2).any(|w| w[0] >= w[1]) {
            return Err("axes must be non-empty and ascending".into());
        }
        if let Some(a) = self.axes.iter().find(|&&a| a >= x.shape.rank()) {
            return Err(format!("axis {a} is out of range for shape {}", x.shape));
        }
        Ok(x.clone())
    }
    fn eval(&self, inputs: &[&Tensor]) -> Tensor {
        let x = inputs[0].as_f32().expect("float operand verified");
        Tensor::F32(self.apply(x))
    }
    fn print_attrs(&self, w: &mut Printer) {
        w.attr("axes", |w| w.dims(&self.axes));
    }
}

impl Softmax {
    /// Reads `{axes=[...]}`; `log` comes from the mnemonic.
    pub(crate) fn parse_attrs(p: &mut Parser, log: bool) -> Result<Self, ParseError> {
        Ok(Softmax { axes: p.attr("axes", Parser::dims)?, log })
    }

    /// The function, in f64 within each row (f32 sums of many terms drift).
    fn apply(&self, x: &ArrayD<f32>) -> ArrayD<f32> {
        // Move the normalised axes last and flatten them: one row per other index.
        let rank = x.ndim();
        let kept: Vec<usize> = (0..rank).filter(|a| !self.axes.contains(a)).collect();
        let order: Vec<usize> = kept.iter().chain(&self.axes).copied().collect();
        let row_len: usize = self.axes.iter().map(|&a| x.shape()[a]).product();
        let moved = x.view().permuted_axes(order.clone());
        let moved_shape = moved.shape().to_vec();
        let rows = moved.as_standard_layout().into_owned().into_shape_with_order((x.len() / row_len.max(1), row_len));
        let mut rows = rows.expect("row-major reshape");
        for mut row in rows.axis_iter_mut(Axis(0)) {
            let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
            let sum: f64 = row.iter().map(|&v| (v as f64 - m).exp()).sum();
            row.mapv_inplace(|v| {
                let d = v as f64 - m;
                (if self.log { d - sum.ln() } else { d.exp() / sum }) as f32
            });
        }
        let back = rows.into_shape_with_order(moved_shape).expect("same length").into_dyn();
        let mut inverse = vec![0; rank];
        order.iter().enumerate().for_each(|(i, &a)| inverse[a] = i);
        back.permuted_axes(inverse).as_standard_layout().into_owned()
    }
}

/// Why a softmax inside a model has no quantized form.
const NOT_FINAL: &str = "a softmax has no integer form (each output reads its whole row): \
    it runs only as the model's last op, on the receiving side after decryption";

impl QuantizeRule for Softmax {
    fn quantize<C: QuantizeCx>(&self, graph: &Graph, v: ValueId, cx: &mut C) -> Result<Lowered<ValueId>, C::Error> {
        let used = graph.nodes.iter().any(|n| n.inputs.contains(&v));
        if !graph.outputs.contains(&v) || used || cx.config().output_tables {
            let why = if cx.config().output_tables { "; --output-tables asks for it under encryption" } else { "" };
            return Err(cx.fail(v, format!("{NOT_FINAL}{why}")));
        }
        let node = graph.node(v);
        let x = cx.int(node.inputs[0])?;
        let quant = cx.new_graph().ty(x).as_int().and_then(|t| t.quant.clone()).expect("quantized values");
        let name = graph.node(node.inputs[0]).name.clone();
        let clear = cx.push(Op::Dequantize(Dequantize { quant }), vec![x], name)?;
        // The quantizer's output loop takes a float value as already on the client.
        Ok(Lowered::Computed(cx.push(Op::Softmax(self.clone()), vec![clear], node.name.clone())?))
    }
    fn table_noise(&self) -> TableNoise {
        TableNoise::Untracked
    }
    fn weight_channels(&self, _: usize) -> Option<Channels> {
        None
    }
}

impl FheRule for Softmax {
    fn fhe_lowering(&self) -> FheLowering<'_> {
        FheLowering::FloatOnly
    }
}

impl MpcRule for Softmax {
    fn lower_mpc<C: MpcCx>(&self, _: &Graph, v: ValueId, cx: &mut C) -> Result<Lowered<Reg>, C::Error> {
        Err(cx.fail(v, format!("`{}` has no SMPC lowering yet", self.mnemonic())))
    }
    fn min_frac_bits(&self) -> u32 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::arr2;

    #[test]
    fn rows_sum_to_one_and_the_log_form_is_their_log() {
        let x = arr2(&[[1.0f32, 2.0, 3.0], [-1000.0, 0.0, 1000.0]]).into_dyn();
        let s = Softmax { axes: vec![1], log: false }.apply(&x);
        let l = Softmax { axes: vec![1], log: true }.apply(&x);
        let e = [1f64.exp(), 2f64.exp(), 3f64.exp()];
        let total: f64 = e.iter().sum();
        for j in 0..3 {
            assert!((s[[0, j]] as f64 - e[j] / total).abs() < 1e-7);
            assert!((l[[0, j]] as f64 - (e[j] / total).ln()).abs() < 1e-6);
        }
        assert_eq!(s.index_axis(Axis(0), 1).iter().copied().collect::<Vec<_>>(), [0.0, 0.0, 1.0]);
        assert_eq!(l[[1, 2]], 0.0);
    }

    #[test]
    fn a_leading_axis_normalises_columns() {
        let x = arr2(&[[0.0f32, 5.0], [0.0, 5.0]]).into_dyn();
        let s = Softmax { axes: vec![0], log: false }.apply(&x);
        assert_eq!(s.iter().copied().collect::<Vec<_>>(), [0.5; 4]);
    }
}
