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
//! row). Anywhere else the quantizer refuses it, and so does TFHE: the sum over a row
//! and the division by it are no univariate table of one encrypted value.
//!
//! SMPC, anywhere in the graph, over each row of `n` elements:
//!
//! 1. `m = max(row)` by the max-pooling tournament of exact comparisons;
//! 2. `d = x − m` (local), so `d ∈ [−(hi − lo), 0]` for `x` calibrated in `[lo, hi]`;
//! 3. `e = exp(d)` fitted on `[−1.1·(hi − lo), 0]` (error `ε_e`);
//! 4. `a = Σ e / n` (the average-pooling step: a local sum, one truncation);
//!    `a ∈ [1/n, 1]` since the maximum's term is 1;
//! 5. softmax: `r = 1/(n·a)` fitted on `[1/2n, 1 + 1/2n]` (error `ε_r`), then
//!    `y = e · r` (one multiplication round); log-softmax: `y = d − ln(n·a)`, fitted
//!    likewise.
//!
//! Error of an output, to first order: `|Δy| ≤ ε_e + n·ε_e + ε_r` (softmax: `r ≤ 1`,
//! `e ≤ 1`, `a` is off by `ε_e` and `|∂r/∂a| = 1/(n·a²) ≤ n`; log-softmax likewise)
//! plus a few `2^−f` of truncation (times `n` through `r`). Both fits are checked on a dense grid at compile time, and the plan
//! states the bound in the last fit's name (`secc inspect` prints it).

use super::facets::{Channels, FheLowering, FheRule, Lowered, MpcCx, MpcRule, QuantizeCx, QuantizeRule, TableNoise};
use super::{expect_arity, Dequantize, Op, OpSpec, Operand};
use crate::lowered::mpc::{Broadcast, PairOp, PoolTaps, Reg, StepOp};
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
        if !super::normalize::ends_model(graph, v) || cx.config().output_tables {
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

impl Softmax {
    /// The shape of the row maxima and sums: `shape` with the normalised axes set to 1.
    fn reduced(&self, shape: &[usize]) -> Vec<usize> {
        shape.iter().enumerate().map(|(a, &d)| if self.axes.contains(&a) { 1 } else { d }).collect()
    }
}

/// Fit tolerance of the exponential and of the reciprocal (or logarithm).
const SOFTMAX_FIT_TOL: f64 = 1e-4;

impl MpcRule for Softmax {
    fn lower_mpc<C: MpcCx>(&self, graph: &Graph, v: ValueId, cx: &mut C) -> Result<Lowered<Reg>, C::Error> {
        let xv = graph.node(v).inputs[0];
        let shape = graph.ty(xv).shape.0.clone();
        let (len, reduced) = (graph.ty(xv).shape.numel(), self.reduced(&shape));
        let n = len / reduced.iter().product::<usize>().max(1);
        let spread = Broadcast { a: shape.clone(), b: reduced.clone(), out: shape.clone() };
        let mut taps = vec![Vec::with_capacity(n); reduced.iter().product()];
        (0..len).for_each(|e| taps[spread.index(&reduced, e)].push(e));
        let taps = PoolTaps { input_len: len, taps };
        let (lo, hi) = cx.range(xv).ok_or_else(|| cx.fail(xv, "never calibrated"))?;
        let x = cx.reg(xv)?;
        let m = cx.new_reg();
        cx.step(v, StepOp::MaxPool { x, taps: taps.clone(), out: m });
        let d = cx.new_reg();
        cx.step(v, StepOp::Pair { a: x, b: m, op: PairOp::Sub, shapes: spread.clone(), out: d });
        let exp = cx.fit_fn(v, "exp", &f64::exp, (-1.1 * (hi - lo).max(1e-3), 0.0), SOFTMAX_FIT_TOL)?;
        let eps_e = exp.max_error;
        let e = cx.new_reg();
        cx.step(v, StepOp::Piecewise { x: d, len, function: exp, out: e });
        let s = cx.new_reg();
        let divisors = vec![n; taps.taps.len()];
        cx.step(v, StepOp::AvgPool { x: e, taps, divisors, out: s });
        let nf = n as f64;
        let means = (0.5 / nf, 1.0 + 0.5 / nf);
        let ulps = 4.0 * nf / (1u64 << cx.frac_bits()) as f64;
        let log = self.log;
        let inner = if log { "ln(n·x)" } else { "1/(n·x)" };
        let g = |x: f64| if log { (nf * x).ln() } else { 1.0 / (nf * x) };
        let mut g = cx.fit_fn(v, inner, &g, means, SOFTMAX_FIT_TOL)?;
        let bound = eps_e * (n as f64 + 1.0) + g.max_error + ulps;
        g.function = format!("{inner} of the row mean of {} (output error ≤ {bound:.1e})", self.mnemonic());
        let r = cx.new_reg();
        cx.step(v, StepOp::Piecewise { x: s, len: len / n.max(1), function: g, out: r });
        let y = cx.new_reg();
        let shapes = spread;
        if self.log {
            cx.step(v, StepOp::Pair { a: d, b: r, op: PairOp::Sub, shapes, out: y });
            return Ok(Lowered::Computed(y));
        }
        cx.step(v, StepOp::Pair { a: e, b: r, op: PairOp::Mul, shapes, out: y });
        let (out, bits) = (cx.new_reg(), cx.frac_bits());
        cx.step(v, StepOp::Trunc { x: y, len, bits, out });
        Ok(Lowered::Computed(out))
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
