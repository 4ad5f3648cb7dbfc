//! `batch_matmul %a, %b {transpose_b}`: `y[..., m, n] = Σ_k a[..., m, k] · b[..., k, n]`
//! (`b[..., n, k]` when `transpose_b`), both operands computed, one leading (batch)
//! shape: ONNX `MatMul` of two computed tensors, as attention's `Q·Kᵀ` and `A·V`.
//! tract folds a transpose of the right operand into the product, hence the flag.
//!
//! Float IR only. SMPC: every batch's product of shares (the cross terms of each
//! party's two slots, aby3.md §3) and one resharing round for all of them, at
//! `2^2f`, then one truncation. Quantization: both operands at one scale (as a `mul`
//! of two computed tensors), every term `a[.., i, l] · b[.., l, j]` gathered side by
//! side and multiplied as a product of squares (`((a+b)² − (a−b)²) / 4`, two tables
//! per term), the terms of each output summed exactly (`reduce_sum`): under TFHE,
//! `2·M·K·N` bootstraps per batch, the rest levelled.

use super::elementwise::{at_one_scale, push_product};
use super::facets::{Channels, FheLowering, FheRule, Lowered, MpcCx, MpcRule, QuantizeCx, QuantizeRule, TableNoise};
use super::{expect_arity, Gather, Op, OpSpec, Operand, Reduce, ReduceKind, Reshape};
use crate::lowered::mpc::{Reg, StepOp};
use crate::tensor::Tensor;
use crate::text::{ParseError, Parser, Printer};
use crate::types::{Shape, TensorType};
use crate::{Graph, ValueId};
use ndarray::{ArrayD, Axis, Ix2, IxDyn};
use serde::{Deserialize, Serialize};

/// Matrix product of two computed tensors, batched over leading axes.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct BatchMatMul {
    /// Whether `b` is laid out `[..., N, K]`.
    pub transpose_b: bool,
}

impl BatchMatMul {
    /// `(batch, m, k, n)` of operands of shapes `a` and `b`, or why they do not multiply.
    pub fn dims(&self, a: &Shape, b: &Shape) -> Result<(usize, usize, usize, usize), String> {
        let (ra, rb) = (a.rank(), b.rank());
        if ra < 2 || ra != rb || a.0[..ra - 2] != b.0[..rb - 2] {
            return Err(format!("expects a[..., M, K] and b[..., K, N] with one batch shape, got {a} and {b}"));
        }
        let (m, k) = (a.0[ra - 2], a.0[ra - 1]);
        let (bk, n) = if self.transpose_b { (b.0[rb - 1], b.0[rb - 2]) } else { (b.0[rb - 2], b.0[rb - 1]) };
        if k != bk {
            return Err(format!("inner dimensions differ: {a} and {b}"));
        }
        Ok((a.0[..ra - 2].iter().product(), m, k, n))
    }
}

impl OpSpec for BatchMatMul {
    fn mnemonic(&self) -> &'static str {
        "batch_matmul"
    }
    fn infer(&self, inputs: &[Operand]) -> Result<TensorType, String> {
        expect_arity(inputs, 2..=2)?;
        if !(inputs[0].ty.is_float() && inputs[1].ty.is_float()) {
            return Err("is a float op; its integer form is a sum of products of squares".into());
        }
        let (a, b) = (&inputs[0].ty.shape, &inputs[1].ty.shape);
        let (_, m, _, n) = self.dims(a, b)?;
        let mut out = a.0.clone();
        let r = out.len();
        (out[r - 2], out[r - 1]) = (m, n);
        Ok(TensorType::f32(Shape(out)))
    }
    fn eval(&self, inputs: &[&Tensor]) -> Tensor {
        let (a, b) = (inputs[0].as_f32().expect("float"), inputs[1].as_f32().expect("float"));
        let (batch, m, k, n) =
            self.dims(&Shape(a.shape().to_vec()), &Shape(b.shape().to_vec())).expect("verified operands");
        let a3 = a.to_shape((batch, m, k)).expect("contiguous");
        let b3 =
            if self.transpose_b { b.to_shape((batch, n, k)) } else { b.to_shape((batch, k, n)) }.expect("contiguous");
        let mut y = Vec::with_capacity(batch * m * n);
        for (x, w) in a3.axis_iter(Axis(0)).zip(b3.axis_iter(Axis(0))) {
            let w = w.into_dimensionality::<Ix2>().expect("rank 2");
            let w = if self.transpose_b { w.reversed_axes() } else { w };
            y.extend(x.into_dimensionality::<Ix2>().expect("rank 2").dot(&w).iter().copied());
        }
        let mut shape = a.shape().to_vec();
        let r = shape.len();
        (shape[r - 2], shape[r - 1]) = (m, n);
        Tensor::F32(ArrayD::from_shape_vec(IxDyn(&shape), y).expect("element count"))
    }
    fn print_attrs(&self, w: &mut Printer) {
        if self.transpose_b {
            w.attr("transpose_b", |w| w.display(true));
        }
    }
}

impl BatchMatMul {
    /// Reads `{transpose_b=B}` (false when absent).
    pub(crate) fn parse_attrs(p: &mut Parser) -> Result<Self, ParseError> {
        Ok(BatchMatMul { transpose_b: p.opt_attr("transpose_b", Parser::bool)?.unwrap_or(false) })
    }
}

impl QuantizeRule for BatchMatMul {
    fn quantize<C: QuantizeCx>(&self, graph: &Graph, v: ValueId, cx: &mut C) -> Result<Lowered<ValueId>, C::Error> {
        let node = graph.node(v);
        let (a, b) = (node.inputs[0], node.inputs[1]);
        let (batch, m, k, n) = self.dims(&graph.ty(a).shape, &graph.ty(b).shape).map_err(|e| cx.fail(v, e))?;
        let (ia, ib) = at_one_scale(cx, a, b)?;
        // Row o = (t, i, j) of the terms holds a[t, i, l] and b[t, l, j] for every l.
        let (mut left, mut right) = (Vec::new(), Vec::new());
        for t in 0..batch {
            for i in 0..m {
                for j in 0..n {
                    for l in 0..k {
                        left.push((t * m * k + i * k + l) as i64);
                        let r = if self.transpose_b { t * n * k + j * k + l } else { t * k * n + l * n + j };
                        right.push(r as i64);
                    }
                }
            }
        }
        let terms = Shape(vec![batch * m * n, k]);
        let pick = |index| Op::Gather(Gather { shape: terms.clone(), index, values: Vec::new() });
        let xa = cx.push(pick(left), vec![ia], format!("{}.a", node.name))?;
        let xb = cx.push(pick(right), vec![ib], format!("{}.b", node.name))?;
        let products = push_product(cx, xa, xb, &format!("{}.terms", node.name))?;
        let sum = Op::Reduce(Reduce { kind: ReduceKind::Sum, axes: vec![1], x_zp: 0 });
        let sums = cx.push(sum, vec![products], format!("{}.sum", node.name))?;
        let shape = Op::Reshape(Reshape { shape: node.ty.shape.clone() });
        Ok(Lowered::Computed(cx.push(shape, vec![sums], node.name.clone())?))
    }
    fn table_noise(&self) -> TableNoise {
        TableNoise::Untracked
    }
    fn weight_channels(&self, _: usize) -> Option<Channels> {
        None
    }
}

impl FheRule for BatchMatMul {
    fn fhe_lowering(&self) -> FheLowering<'_> {
        FheLowering::FloatOnly
    }
}

impl MpcRule for BatchMatMul {
    fn lower_mpc<C: MpcCx>(&self, graph: &Graph, v: ValueId, cx: &mut C) -> Result<Lowered<Reg>, C::Error> {
        let node = graph.node(v);
        let (a, b) = (node.inputs[0], node.inputs[1]);
        let (batch, m, k, n) = self.dims(&graph.ty(a).shape, &graph.ty(b).shape).map_err(|e| cx.fail(v, e))?;
        let (ra, rb) = (cx.reg(a)?, cx.reg(b)?);
        let wide = cx.new_reg();
        let transpose_b = self.transpose_b;
        cx.step(v, StepOp::MatMulShares { a: ra, b: rb, batch, m, k, n, transpose_b, out: wide });
        let (out, bits) = (cx.new_reg(), cx.frac_bits());
        cx.step(v, StepOp::Trunc { x: wide, len: batch * m * n, bits, out });
        Ok(Lowered::Computed(out))
    }
    fn min_frac_bits(&self) -> u32 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transposed_right_operand_multiplies_like_its_transpose() {
        let a = Tensor::F32(ndarray::Array::from_shape_vec((2, 1, 2), vec![1.0f32, 2.0, 3.0, 4.0]).unwrap().into_dyn());
        let b = ndarray::Array::from_shape_vec((2, 2, 3), (0..12).map(|v| v as f32).collect()).unwrap();
        let bt = Tensor::F32(b.clone().permuted_axes([0, 2, 1]).as_standard_layout().to_owned().into_dyn());
        let y = BatchMatMul { transpose_b: false }.eval(&[&a, &Tensor::F32(b.into_dyn())]);
        let yt = BatchMatMul { transpose_b: true }.eval(&[&a, &bt]);
        assert_eq!(y, yt);
        // [1 2]·[[0 1 2],[3 4 5]] = [6 9 12]; [3 4]·[[6 7 8],[9 10 11]] = [54 61 68]
        assert_eq!(y.as_f32().unwrap().iter().copied().collect::<Vec<_>>(), [6.0, 9.0, 12.0, 54.0, 61.0, 68.0]);
        assert_eq!(y.as_f32().unwrap().shape(), [2, 1, 3]);
    }
}
