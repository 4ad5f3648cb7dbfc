//! `matmul %x, %w[, %b]`: `y[..., n] = b[n] + Σ_k (x[..., k] − x_zp) · w[k, n]` with a
//! constant `w` of shape `[K, N]` (ONNX `MatMul` / `Gemm`, transposes folded at import).
//!
//! `x_zp` is 0 in the float IR and the input's zero point in the quantized IR; the
//! accumulator then stands for `s_x · s_w[n] · y` (per output column `n`). Range
//! analysis: per column, the sum over `k` of the interval of `w[k,n] · (x − x_zp)`, plus `b[n]`.
//!
//! Quantization: weights per output column (axis 1), input per tensor
//! (the rule in `linear.rs`). TFHE: levelled. SMPC: one local product plus a truncation.

use super::facets::{Channels, FheLowering, FheRule, Lowered, MpcCx, MpcRule, QuantizeCx, QuantizeRule, TableNoise};
use super::linear::{
    eval_linear, linear_quant, linear_range, lower_linear, minus_zero_point, quantize_linear, LinearKernel,
};
use super::{common_is_float, expect_arity, Op, OpSpec, Operand};
use crate::lowered::mpc::{Reg, StepOp};
use crate::tensor::Tensor;
use crate::text::{ParseError, Parser, Printer};
use crate::types::{Shape, TensorType};
use crate::{Graph, ValueId};
use ndarray::{ArrayD, Ix2, IxDyn, LinalgScalar};
use serde::{Deserialize, Serialize};

/// Matrix product with constant weights.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct MatMul {
    /// Zero point subtracted from every input element (0 for floats).
    pub x_zp: i64,
}

impl LinearKernel for MatMul {
    fn x_zp(&self) -> i64 {
        self.x_zp
    }

    fn run<T: LinalgScalar>(&self, x: &ArrayD<T>, w: &ArrayD<T>, b: Option<&ArrayD<T>>, zp: T) -> ArrayD<T> {
        let k = *x.shape().last().expect("rank >= 1");
        let m = x.len() / k;
        let x2 = x.to_shape((m, k)).expect("contiguous input").mapv(|v| v - zp);
        let w2 = w.view().into_dimensionality::<Ix2>().expect("rank-2 weights");
        let mut y = x2.dot(&w2);
        if let Some(b) = b {
            let b = b.view().into_dimensionality::<ndarray::Ix1>().expect("rank-1 bias");
            y.rows_mut().into_iter().for_each(|mut r| r.zip_mut_with(&b, |v, &c| *v = *v + c));
        }
        let mut shape = x.shape().to_vec();
        *shape.last_mut().expect("rank >= 1") = w2.ncols();
        y.into_shape_with_order(IxDyn(&shape)).expect("same element count")
    }
}

impl OpSpec for MatMul {
    fn mnemonic(&self) -> &'static str {
        "matmul"
    }
    fn infer(&self, inputs: &[Operand]) -> Result<TensorType, String> {
        expect_arity(inputs, 2..=3)?;
        let (x, w) = (inputs[0].ty, inputs[1].ty);
        let (Some(&k), &[wk, n]) = (x.shape.0.last(), w.shape.0.as_slice()) else {
            return Err(format!("expects x[..., K] and w[K, N], got {} and {}", x.shape, w.shape));
        };
        if k != wk {
            return Err(format!("inner dimensions differ: {} and {}", x.shape, w.shape));
        }
        if let Some(b) = inputs.get(2) {
            if b.ty.shape.0 != [n] {
                return Err(format!("bias shape {} does not match {n} output columns", b.ty.shape));
            }
        }
        let mut out = x.shape.0.clone();
        *out.last_mut().expect("rank >= 1") = n;
        let out_shape = Shape(out);
        if common_is_float(inputs)? {
            return Ok(TensorType::f32(out_shape));
        }
        let xi = x.as_int().expect("integer operand");
        let (lo, hi) = linear_range(inputs, 1, minus_zero_point(xi.lo, xi.hi, self.x_zp)?)?;
        let axis = out_shape.rank() - 1;
        Ok(TensorType::int(out_shape, lo, hi, linear_quant(x, w, axis, Some(x.shape.rank() - 1))))
    }
    fn eval(&self, inputs: &[&Tensor]) -> Tensor {
        eval_linear(self, inputs)
    }
    fn print_attrs(&self, w: &mut Printer) {
        if self.x_zp != 0 {
            w.attr("x_zp", |w| w.display(self.x_zp));
        }
    }
}

impl MatMul {
    /// Reads `{x_zp=Z}` (0 when absent).
    pub(crate) fn parse_attrs(p: &mut Parser) -> Result<Self, ParseError> {
        Ok(MatMul { x_zp: p.opt_attr("x_zp", Parser::i64)?.unwrap_or(0) })
    }
}

impl QuantizeRule for MatMul {
    fn quantize<C: QuantizeCx>(&self, graph: &Graph, v: ValueId, cx: &mut C) -> Result<Lowered<ValueId>, C::Error> {
        quantize_linear(graph, v, cx, true, |x_zp| Op::MatMul(MatMul { x_zp }))
    }
    fn table_noise(&self) -> TableNoise {
        TableNoise::Untracked
    }
    fn weight_channels(&self, output_rank: usize) -> Option<Channels> {
        Some(Channels { weights: 1, output: output_rank - 1 })
    }
}

impl FheRule for MatMul {
    fn fhe_lowering(&self) -> FheLowering<'_> {
        FheLowering::Levelled
    }
}

impl MpcRule for MatMul {
    fn lower_mpc<C: MpcCx>(&self, graph: &Graph, v: ValueId, cx: &mut C) -> Result<Lowered<Reg>, C::Error> {
        let node = graph.node(v);
        let (k, n) = (graph.ty(node.inputs[1]).shape.0[0], graph.ty(node.inputs[1]).shape.0[1]);
        let m = graph.ty(node.inputs[0]).shape.numel() / k;
        lower_linear(graph, v, cx, |x, w, b, out| StepOp::MatMul { x, w, b, m, k, n, out })
    }
    fn min_frac_bits(&self) -> u32 {
        0
    }
}
