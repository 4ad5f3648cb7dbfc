//! `reduce_sum %x {axes}` and `reduce_max %x {axes}`: the sum or the maximum over
//! `axes`, which keep length 1 (ONNX ReduceSum, ReduceMax, and ReduceMean and
//! GlobalAveragePool, which tract writes as a sum then a division; keepdims=0 is a
//! reshape after it, as tract writes it).
//!
//! Integers: `reduce_sum` is `Σ (x − x_zp)`, standing for `s_x · y` (zero point 0),
//! range `n · [lo − x_zp, hi − x_zp]` over `n` reduced elements; `reduce_max` keeps its
//! input's quantization and range.
//!
//! Quantization: the input per tensor (a maximum across channels of different scales
//! compares different units); `reduce_max` of a table's outputs becomes an exact
//! tournament over their ranks as max pooling does ([`super::pool::quantize_max`]), of
//! anything else an integer `reduce_max`. TFHE: `reduce_sum` is levelled; an integer
//! `reduce_max` is refused (a maximum of wide integers). SMPC: the pooling steps over
//! arbitrary taps: a max tournament, and window sums (divisor 1).

use super::facets::{
    Channels, FheLowering, FheRule, Lowered, MpcCx, MpcRule, QuantizeCx, QuantizeRule, TableNoise, ALREADY_QUANTIZED,
};
use super::linear::minus_zero_point;
use super::pool::{quantize_max, WIDE_MAX};
use super::{common_is_float, expect_arity, Op, OpSpec, Operand};
use crate::lowered::mpc::{PoolTaps, Reg, StepOp};
use crate::tensor::Tensor;
use crate::text::{ParseError, Parser, Printer};
use crate::types::{Quant, Shape, TensorType};
use crate::{Graph, ValueId};
use ndarray::{ArrayD, Axis, IxDyn};
use serde::{Deserialize, Serialize};

/// What a reduction computes.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum ReduceKind {
    /// The sum.
    Sum,
    /// The maximum.
    Max,
}

/// A reduction over axes that keep length 1.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Reduce {
    /// Sum or max.
    pub kind: ReduceKind,
    /// The reduced axes, increasing.
    pub axes: Vec<usize>,
    /// Zero point subtracted from every element of an integer sum (0 for floats).
    pub x_zp: i64,
}

impl Reduce {
    fn out_shape(&self, x: &Shape) -> Shape {
        Shape(x.0.iter().enumerate().map(|(i, &d)| if self.axes.contains(&i) { 1 } else { d }).collect())
    }

    /// The input elements (C order) each output element reduces.
    fn taps(&self, x: &Shape) -> PoolTaps {
        let index = ArrayD::from_shape_vec(IxDyn(&x.0), (0..x.numel()).collect::<Vec<usize>>()).expect("numel");
        let mut groups = index.mapv(|i| vec![i]);
        for &a in &self.axes {
            groups = groups.fold_axis(Axis(a), Vec::new(), |acc, g| [acc.as_slice(), g.as_slice()].concat());
            groups.insert_axis_inplace(Axis(a));
        }
        PoolTaps { input_len: x.numel(), taps: groups.into_iter().collect() }
    }

    fn reduce<T: Copy>(&self, x: &ArrayD<T>, f: impl Fn(&[T]) -> T) -> ArrayD<T> {
        let shape = Shape(x.shape().to_vec());
        let flat: Vec<T> = x.iter().copied().collect();
        let y = self.taps(&shape).taps.iter().map(|t| f(&t.iter().map(|&i| flat[i]).collect::<Vec<T>>())).collect();
        ArrayD::from_shape_vec(IxDyn(&self.out_shape(&shape).0), y).expect("shape")
    }
}

impl OpSpec for Reduce {
    fn mnemonic(&self) -> &'static str {
        match self.kind {
            ReduceKind::Sum => "reduce_sum",
            ReduceKind::Max => "reduce_max",
        }
    }
    fn infer(&self, inputs: &[Operand]) -> Result<TensorType, String> {
        expect_arity(inputs, 1..=1)?;
        let x = inputs[0].ty;
        if self.axes.is_empty()
            || self.axes.windows(2).any(|w| w[0] >= w[1])
            || self.axes.iter().any(|&a| a >= x.shape.rank())
        {
            return Err(format!("axes {:?} are not increasing axes of {}", self.axes, x.shape));
        }
        let shape = self.out_shape(&x.shape);
        if common_is_float(inputs)? {
            return Ok(TensorType::f32(shape));
        }
        let t = x.as_int().expect("integer operand");
        if t.quant.as_ref().is_some_and(|q| q.axis.is_some()) {
            return Err("reduces a per-channel quantized tensor".into());
        }
        match self.kind {
            ReduceKind::Max => Ok(TensorType::int(shape, t.lo, t.hi, t.quant.clone())),
            ReduceKind::Sum => {
                let n = (x.shape.numel() / shape.numel().max(1)) as i64;
                let (lo, hi) = minus_zero_point(t.lo, t.hi, self.x_zp)?;
                let (Some(lo), Some(hi)) = (lo.checked_mul(n), hi.checked_mul(n)) else {
                    return Err("the sum's range overflows 64 bits".into());
                };
                let quant = t.quant.as_ref().map(|q| Quant::per_tensor(q.scale[0], 0));
                Ok(TensorType::int(shape, lo, hi, quant))
            }
        }
    }
    fn eval(&self, inputs: &[&Tensor]) -> Tensor {
        match (inputs[0], self.kind) {
            (Tensor::F32(x), ReduceKind::Sum) => Tensor::F32(self.reduce(x, |t| t.iter().sum())),
            (Tensor::F32(x), ReduceKind::Max) => {
                Tensor::F32(self.reduce(x, |t| t.iter().copied().fold(f32::NEG_INFINITY, f32::max)))
            }
            (Tensor::I64(x), ReduceKind::Sum) => Tensor::I64(self.reduce(x, |t| t.iter().map(|v| v - self.x_zp).sum())),
            (Tensor::I64(x), ReduceKind::Max) => Tensor::I64(self.reduce(x, |t| *t.iter().max().expect("non-empty"))),
        }
    }
    fn print_attrs(&self, w: &mut Printer) {
        w.attr("axes", |w| w.dims(&self.axes));
        if self.x_zp != 0 {
            w.attr("x_zp", |w| w.display(self.x_zp));
        }
    }
}

impl Reduce {
    /// Reads `{axes[, x_zp]}` of the reduction `kind`.
    pub(crate) fn parse_attrs(kind: ReduceKind, p: &mut Parser) -> Result<Self, ParseError> {
        Ok(Reduce { kind, axes: p.attr("axes", Parser::dims)?, x_zp: p.opt_attr("x_zp", Parser::i64)?.unwrap_or(0) })
    }
}

impl QuantizeRule for Reduce {
    fn quantize<C: QuantizeCx>(&self, graph: &Graph, v: ValueId, cx: &mut C) -> Result<Lowered<ValueId>, C::Error> {
        let node = graph.node(v);
        if self.x_zp != 0 {
            return Err(cx.fail(v, ALREADY_QUANTIZED));
        }
        let x = cx.int_per_tensor(node.inputs[0])?;
        if self.kind == ReduceKind::Max {
            let taps = self.taps(&graph.ty(node.inputs[0]).shape).taps;
            let exact = Op::Reduce(Reduce { kind: self.kind, axes: self.axes.clone(), x_zp: 0 });
            return Ok(Lowered::Computed(quantize_max(cx, x, &taps, &node.ty.shape, &node.name, exact)?));
        }
        let x_zp = cx.new_graph().ty(x).as_int().and_then(|t| t.quant.as_ref()).map_or(0, |q| q.zero_point[0]);
        let op = Op::Reduce(Reduce { kind: self.kind, axes: self.axes.clone(), x_zp });
        Ok(Lowered::Computed(cx.push(op, vec![x], node.name.clone())?))
    }
    fn table_noise(&self) -> TableNoise {
        TableNoise::Forwarded
    }
    fn weight_channels(&self, _: usize) -> Option<Channels> {
        None
    }
}

impl FheRule for Reduce {
    fn fhe_lowering(&self) -> FheLowering<'_> {
        match self.kind {
            ReduceKind::Sum => FheLowering::Levelled,
            ReduceKind::Max => FheLowering::Refused(WIDE_MAX),
        }
    }
}

impl MpcRule for Reduce {
    fn lower_mpc<C: MpcCx>(&self, graph: &Graph, v: ValueId, cx: &mut C) -> Result<Lowered<Reg>, C::Error> {
        let input = graph.node(v).inputs[0];
        let x = cx.reg(input)?;
        let taps = self.taps(&graph.ty(input).shape);
        let out = cx.new_reg();
        let op = match self.kind {
            ReduceKind::Max => StepOp::MaxPool { x, taps, out },
            ReduceKind::Sum => StepOp::AvgPool { x, divisors: vec![1; taps.taps.len()], taps, out },
        };
        cx.step(v, op);
        Ok(Lowered::Computed(out))
    }
    fn min_frac_bits(&self) -> u32 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn reduces_over_several_axes_keeping_them() {
        let x = Tensor::I64(array![[[1i64, 5], [3, 4]], [[0, 2], [9, 1]]].into_dyn());
        let sum = Reduce { kind: ReduceKind::Sum, axes: vec![0, 2], x_zp: 1 };
        assert_eq!(sum.eval(&[&x]).as_i64().unwrap(), &array![[[4i64], [13]]].into_dyn());
        let max = Reduce { kind: ReduceKind::Max, axes: vec![1], x_zp: 0 };
        assert_eq!(max.eval(&[&x]).as_i64().unwrap(), &array![[[3i64, 5]], [[9, 2]]].into_dyn());
    }
}
