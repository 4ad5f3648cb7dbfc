//! `add_int %a, %b {sign, a_zp, b_zp}`: `y = (a − a_zp) + sign · (b − b_zp)`, NumPy
//! broadcasting, `sign` ±1: the quantized form of an `add` or `sub` of two computed
//! tensors (a residual connection), and of the two halves of a product of two
//! computed tensors (`((a+b)² − (a−b)²) / 4`, see `Binary`'s quantization rule).
//!
//! Both operands stand for reals at one per-tensor scale `s` (the quantizer re-encodes
//! one of them through a table when their scales differ), so the sum is exact and
//! stands for `s · y` with zero point 0. Range analysis: the interval sum of
//! `[a.lo − a_zp, a.hi − a_zp]` and `sign · [b.lo − b_zp, b.hi − b_zp]`.
//!
//! It exists in the integer IR only. TFHE: levelled, a sum of the two operands'
//! ciphertexts with weights ±1 (its map reads both operands; the noise is the sum of
//! theirs). SMPC lowers the float `add`/`sub` instead.

use super::elementwise::broadcast_shapes;
use super::facets::{
    Channels, FheLowering, FheRule, Lowered, MpcCx, MpcRule, QuantizeCx, QuantizeRule, TableNoise, ALREADY_QUANTIZED,
    MPC_FLOAT_ONLY,
};
use super::linear::minus_zero_point;
use super::{expect_arity, OpSpec, Operand};
use crate::lowered::mpc::Reg;
use crate::tensor::Tensor;
use crate::text::{ParseError, Parser, Printer};
use crate::types::{Quant, Shape, TensorType};
use crate::{Graph, ValueId};
use ndarray::{ArrayD, IxDyn, Zip};
use serde::{Deserialize, Serialize};

/// Sum or difference of two integer tensors at one scale.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct AddInt {
    /// 1 for a sum, −1 for a difference.
    pub sign: i64,
    /// Zero point of `a`.
    pub a_zp: i64,
    /// Zero point of `b`.
    pub b_zp: i64,
}

impl OpSpec for AddInt {
    fn mnemonic(&self) -> &'static str {
        "add_int"
    }
    fn infer(&self, inputs: &[Operand]) -> Result<TensorType, String> {
        expect_arity(inputs, 2..=2)?;
        if self.sign != 1 && self.sign != -1 {
            return Err(format!("sign {} is neither 1 nor -1", self.sign));
        }
        let (Some(a), Some(b)) = (inputs[0].ty.as_int(), inputs[1].ty.as_int()) else {
            return Err("expects two integer operands".into());
        };
        let shape = broadcast_shapes(&inputs[0].ty.shape, &inputs[1].ty.shape)?;
        let (alo, ahi) = minus_zero_point(a.lo, a.hi, self.a_zp)?;
        let (blo, bhi) = minus_zero_point(b.lo, b.hi, self.b_zp)?;
        let (blo, bhi) = if self.sign == 1 { (blo, bhi) } else { (bhi.saturating_neg(), blo.saturating_neg()) };
        let (Some(lo), Some(hi)) = (alo.checked_add(blo), ahi.checked_add(bhi)) else {
            return Err("the sum's range overflows 64 bits".into());
        };
        let quant = match (&a.quant, &b.quant) {
            (Some(qa), Some(qb)) => {
                let per_tensor = |q: &Quant| (q.axis.is_none()).then(|| q.scale[0]);
                match (per_tensor(qa), per_tensor(qb)) {
                    (Some(sa), Some(sb)) if sa == sb => Some(Quant::per_tensor(sa, 0)),
                    _ => return Err(format!("operands at different scales ({qa} and {qb}) do not add")),
                }
            }
            _ => None,
        };
        Ok(TensorType::int(shape, lo, hi, quant))
    }
    fn eval(&self, inputs: &[&Tensor]) -> Tensor {
        let (a, b) = (inputs[0].as_i64().expect("integer"), inputs[1].as_i64().expect("integer"));
        let shape = broadcast_shapes(&Shape(a.shape().to_vec()), &Shape(b.shape().to_vec())).expect("verified");
        let (a, b) = (a.broadcast(IxDyn(&shape.0)).expect("verified"), b.broadcast(IxDyn(&shape.0)).expect("verified"));
        let y: ArrayD<i64> = Zip::from(&a).and(&b).map_collect(|&x, &y| (x - self.a_zp) + self.sign * (y - self.b_zp));
        Tensor::I64(y)
    }
    fn print_attrs(&self, w: &mut Printer) {
        w.attr("sign", |w| w.display(self.sign));
        w.attr("a_zp", |w| w.display(self.a_zp));
        w.attr("b_zp", |w| w.display(self.b_zp));
    }
}

impl AddInt {
    /// Reads `{sign, a_zp, b_zp}`.
    pub(crate) fn parse_attrs(p: &mut Parser) -> Result<Self, ParseError> {
        Ok(AddInt {
            sign: p.attr("sign", Parser::i64)?,
            a_zp: p.attr("a_zp", Parser::i64)?,
            b_zp: p.attr("b_zp", Parser::i64)?,
        })
    }
}

impl QuantizeRule for AddInt {
    fn quantize<C: QuantizeCx>(&self, _: &Graph, v: ValueId, cx: &mut C) -> Result<Lowered<ValueId>, C::Error> {
        Err(cx.fail(v, ALREADY_QUANTIZED))
    }
    fn table_noise(&self) -> TableNoise {
        // The sum carries both operands' noise; the first stands for it (a table's,
        // when the second was re-encoded to its scale).
        TableNoise::Forwarded
    }
    fn weight_channels(&self, _: usize) -> Option<Channels> {
        None
    }
}

impl FheRule for AddInt {
    fn fhe_lowering(&self) -> FheLowering<'_> {
        FheLowering::Levelled
    }
}

impl MpcRule for AddInt {
    fn lower_mpc<C: MpcCx>(&self, _: &Graph, v: ValueId, cx: &mut C) -> Result<Lowered<Reg>, C::Error> {
        Err(cx.fail(v, MPC_FLOAT_ONLY))
    }
    fn min_frac_bits(&self) -> u32 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::Operand;

    #[test]
    fn a_difference_subtracts_zero_points_and_broadcasts() {
        let op = AddInt { sign: -1, a_zp: 2, b_zp: 1 };
        let a = Tensor::I64(ndarray::arr2(&[[2i64, 5], [3, 4]]).into_dyn());
        let b = Tensor::I64(ndarray::arr1(&[1i64, 3]).into_dyn());
        let y = op.eval(&[&a, &b]);
        assert_eq!(y.as_i64().unwrap().iter().copied().collect::<Vec<_>>(), [0, 1, 1, 0]);
        let q = Some(Quant::per_tensor(0.5, 2));
        let ta = TensorType::int(Shape(vec![2, 2]), 0, 10, q.clone());
        let tb = TensorType::int(Shape(vec![2]), 0, 4, Some(Quant::per_tensor(0.5, 1)));
        let t = op.infer(&[Operand { ty: &ta, value: None }, Operand { ty: &tb, value: None }]).unwrap();
        assert_eq!(t, TensorType::int(Shape(vec![2, 2]), -5, 9, Some(Quant::per_tensor(0.5, 0))));
        let other = TensorType::int(Shape(vec![2]), 0, 4, Some(Quant::per_tensor(0.25, 1)));
        let err = op.infer(&[Operand { ty: &ta, value: None }, Operand { ty: &other, value: None }]).unwrap_err();
        assert!(err.contains("different scales"), "{err}");
    }
}
