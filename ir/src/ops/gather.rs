//! `gather %a[, %b, ...] {shape, index[, values]}`: data movement. Output element `j`
//! (C order, output `shape`) is element `index[j]` of the operands' elements laid end
//! to end (each operand in C order), or the constant `values[−index[j] − 1]` when
//! `index[j] < 0`. The frontend maps every ONNX op that only moves, selects, repeats
//! or pads data onto it: Transpose, Slice, Gather with constant indices, Pad (constant
//! mode), Concat (of computed tensors, and of computed and constant ones: the
//! constants' elements become `values`), Split, Expand, Tile. tract's own
//! implementation of the op, run on tensors of element numbers, writes `index`, so
//! the semantics are tract's (and ONNX's) by construction.
//!
//! Split writes one `gather` per output rather than a multi-output node: the IR's
//! values are single node outputs everywhere (types, the text form, both lowerings,
//! the verifier), each output of a Split is an independent selection, and the
//! lowerings make a selection free, so one node per output costs nothing.
//!
//! Integers: every operand has the same per-tensor quantization, which the output
//! keeps; `values` are integers of that quantization; the range is the union of the
//! operands' and of the values read.
//!
//! Quantization: one operand (slicing, transposing, padding one tensor) keeps its
//! quantization, requantized per tensor when it is per channel. Several operands
//! (Concat) are requantized onto one quantization over the output's calibrated
//! range: an elementwise chain is tabulated straight onto it, an already computed
//! operand of another quantization gets an identity table. Constant values are
//! quantized with it (rounded; padding with 0 is exact, the zero point).
//! TFHE: levelled (a selection of the operands' ciphertexts, constants as trivial
//! ones). SMPC: the `gather` step, local (no rounds): a selection of
//! shares, constant values shared by the model owner as one weight.

use super::facets::{Channels, FheLowering, FheRule, Lowered, MpcCx, MpcRule, QuantizeCx, QuantizeRule, TableNoise};
use super::{common_is_float, Op, OpSpec, Operand};
use crate::lowered::fixed::encode_fixed;
use crate::lowered::mpc::{Reg, StepOp};
use crate::tensor::Tensor;
use crate::text::{ParseError, Parser, Printer};
use crate::types::{Shape, TensorType};
use crate::{Graph, ValueId};
use ndarray::{ArrayD, IxDyn};
use serde::{Deserialize, Serialize};

/// A selection of the operands' elements and of constants.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Gather {
    /// The output shape.
    pub shape: Shape,
    /// For each output element: an element of the operands laid end to end, or
    /// (negative) `−1 − k` for `values[k]`.
    pub index: Vec<i64>,
    /// The constants the output reads (integers in the quantized IR).
    pub values: Vec<f64>,
}

impl Gather {
    fn pick<T: Copy>(&self, flat: &[T], constant: impl Fn(f64) -> T) -> ArrayD<T> {
        let y = self
            .index
            .iter()
            .map(|&i| if i >= 0 { flat[i as usize] } else { constant(self.values[(-1 - i) as usize]) });
        ArrayD::from_shape_vec(IxDyn(&self.shape.0), y.collect()).expect("gather verified")
    }

    /// The constants the output reads.
    fn used_values(&self) -> impl Iterator<Item = f64> + '_ {
        self.index.iter().filter(|&&i| i < 0).map(|&i| self.values[(-1 - i) as usize])
    }
}

impl OpSpec for Gather {
    fn mnemonic(&self) -> &'static str {
        "gather"
    }
    fn infer(&self, inputs: &[Operand]) -> Result<TensorType, String> {
        if inputs.is_empty() {
            return Err("expects at least one operand".into());
        }
        let total: usize = inputs.iter().map(|o| o.ty.shape.numel()).sum();
        if Some(self.index.len()) != self.shape.0.iter().try_fold(1usize, |p, &d| p.checked_mul(d)) {
            return Err(format!("{} indices for shape {}", self.index.len(), self.shape));
        }
        if let Some(i) =
            self.index.iter().find(|&&i| i >= total as i64 || (i < 0 && (-1 - i) as usize >= self.values.len()))
        {
            return Err(format!("index {i} is beyond the {total} operand elements and {} values", self.values.len()));
        }
        if common_is_float(inputs)? {
            return Ok(TensorType::f32(self.shape.clone()));
        }
        let ints: Vec<_> = inputs.iter().map(|o| o.ty.as_int().expect("integer operands")).collect();
        let quant = ints[0].quant.clone();
        if ints.iter().any(|t| t.quant != quant) || quant.as_ref().is_some_and(|q| q.axis.is_some()) {
            return Err("integer operands must share one per-tensor quantization".into());
        }
        if let Some(v) = self.values.iter().find(|v| v.fract() != 0.0 || v.abs() >= 2f64.powi(62)) {
            return Err(format!("integer gather reads value {v}, not an integer"));
        }
        let used: Vec<i64> = self.used_values().map(|v| v as i64).collect();
        let lo = ints.iter().map(|t| t.lo).chain(used.iter().copied()).min().expect("an operand");
        let hi = ints.iter().map(|t| t.hi).chain(used.iter().copied()).max().expect("an operand");
        Ok(TensorType::int(self.shape.clone(), lo, hi, quant))
    }
    fn eval(&self, inputs: &[&Tensor]) -> Tensor {
        match inputs[0] {
            Tensor::F32(_) => {
                let flat: Vec<f32> =
                    inputs.iter().flat_map(|t| t.as_f32().expect("float operands").iter().copied()).collect();
                Tensor::F32(self.pick(&flat, |v| v as f32))
            }
            Tensor::I64(_) => {
                let flat: Vec<i64> =
                    inputs.iter().flat_map(|t| t.as_i64().expect("integer operands").iter().copied()).collect();
                Tensor::I64(self.pick(&flat, |v| v as i64))
            }
        }
    }
    fn print_attrs(&self, w: &mut Printer) {
        w.attr("shape", |w| w.dims(&self.shape.0));
        w.attr("index", |w| w.list(&self.index, |w, i| w.display(i)));
        if !self.values.is_empty() {
            w.attr("values", |w| w.list(&self.values, |w, v| w.f64(*v)));
        }
    }
}

impl Gather {
    /// Reads `{shape, index[, values]}`.
    pub(crate) fn parse_attrs(p: &mut Parser) -> Result<Self, ParseError> {
        Ok(Gather {
            shape: Shape(p.attr("shape", Parser::dims)?),
            index: p.attr("index", |p| p.list(Parser::i64))?,
            values: p.opt_attr("values", |p| p.list(Parser::f64))?.unwrap_or_default(),
        })
    }
}

impl QuantizeRule for Gather {
    fn quantize<C: QuantizeCx>(&self, graph: &Graph, v: ValueId, cx: &mut C) -> Result<Lowered<ValueId>, C::Error> {
        let node = graph.node(v);
        let mut distinct = node.inputs.clone();
        distinct.dedup();
        let ints = if distinct.len() == 1 {
            vec![cx.int_per_tensor(node.inputs[0])?; node.inputs.len()]
        } else {
            let range = cx.range(v).ok_or_else(|| cx.fail(v, "no calibration range"))?;
            node.inputs.iter().map(|&x| cx.int_over(x, range)).collect::<Result<Vec<_>, _>>()?
        };
        let q = cx.new_graph().ty(ints[0]).as_int().and_then(|t| t.quant.clone()).expect("quantized operands");
        let (s, z) = (q.scale[0], q.zero_point[0]);
        let values = self.values.iter().map(|&c| (c / s).round() + z as f64).collect();
        let op = Op::Gather(Gather { shape: self.shape.clone(), index: self.index.clone(), values });
        Ok(Lowered::Computed(cx.push(op, ints, node.name.clone())?))
    }
    fn table_noise(&self) -> TableNoise {
        TableNoise::Forwarded
    }
    fn weight_channels(&self, _: usize) -> Option<Channels> {
        None
    }
}

impl FheRule for Gather {
    fn fhe_lowering(&self) -> FheLowering<'_> {
        FheLowering::Levelled
    }
}

impl MpcRule for Gather {
    fn lower_mpc<C: MpcCx>(&self, graph: &Graph, v: ValueId, cx: &mut C) -> Result<Lowered<Reg>, C::Error> {
        let node = graph.node(v);
        let xs = node.inputs.iter().map(|&x| cx.reg(x)).collect::<Result<Vec<_>, _>>()?;
        // Constants are the model's: the model owner shares them like any weight.
        let w = (!self.values.is_empty()).then(|| {
            let words = self.values.iter().map(|&c| encode_fixed(c, cx.frac_bits())).collect();
            cx.raw_weight(format!("{}.values", node.name), words)
        });
        let out = cx.new_reg();
        cx.step(v, StepOp::Gather { xs, w, index: self.index.clone(), out });
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
    fn concatenates_operands_and_reads_constants() {
        let g = Gather { shape: Shape(vec![2, 3]), index: vec![1, 0, -1, 3, 2, -2], values: vec![7.0, 9.0] };
        let a = Tensor::F32(array![1.0f32, 2.0].into_dyn());
        let b = Tensor::F32(array![[3.0f32, 4.0]].into_dyn());
        let y = g.eval(&[&a, &b]);
        assert_eq!(y.as_f32().unwrap(), &array![[2.0f32, 1.0, 7.0], [4.0, 3.0, 9.0]].into_dyn());
    }
}
