//! `normalize %x {norm=max|l1|l2}` (ONNX-ML `Normalizer`): each row (the last axis)
//! divided by its norm, as onnxruntime computes it in f32: `z = max_i x_i` (signed),
//! `Σ |x_i|` or `sqrt(Σ x_i²)`, accumulated in order; `y = x / z`, or `y = x` where
//! `z = 0`. Float only.
//!
//! Like a softmax, a normalizer has no integer form (each output reads its whole row):
//! it runs only where it ends the model, on the receiving side after decryption or
//! reveal (scikit-learn's classifiers end with one, an L1 normalizer over the
//! probabilities). Anywhere else the quantizer refuses it, and so does TFHE. SMPC: none.

use super::facets::{Channels, FheLowering, FheRule, Lowered, MpcCx, MpcRule, QuantizeCx, QuantizeRule, TableNoise};
use super::{expect_arity, Dequantize, Op, OpSpec, Operand};
use crate::lowered::mpc::Reg;
use crate::tensor::Tensor;
use crate::text::{ParseError, Parser, Printer};
use crate::types::TensorType;
use crate::{Graph, ValueId};
use ndarray::Axis;
use serde::{Deserialize, Serialize};

/// The norm a row is divided by.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Norm {
    /// The row's largest element (signed).
    Max,
    /// The sum of absolute values.
    L1,
    /// The Euclidean norm.
    L2,
}

const NORMS: [&str; 3] = ["max", "l1", "l2"];

/// Each row divided by its norm.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Normalize {
    /// Which norm.
    pub norm: Norm,
}

impl OpSpec for Normalize {
    fn mnemonic(&self) -> &'static str {
        "normalize"
    }
    fn infer(&self, inputs: &[Operand]) -> Result<TensorType, String> {
        expect_arity(inputs, 1..=1)?;
        let x = inputs[0].ty;
        if !x.is_float() {
            return Err("is a float op; it has no integer form".into());
        }
        if x.shape.rank() == 0 {
            return Err("needs at least one axis".into());
        }
        Ok(x.clone())
    }
    fn eval(&self, inputs: &[&Tensor]) -> Tensor {
        let mut y = inputs[0].as_f32().expect("float operand verified").clone();
        let last = Axis(y.ndim() - 1);
        for mut row in y.lanes_mut(last) {
            let z = match self.norm {
                Norm::Max => row.iter().copied().fold(f32::NEG_INFINITY, f32::max),
                Norm::L1 => row.iter().fold(0f32, |s, v| s + v.abs()),
                Norm::L2 => row.iter().fold(0f32, |s, v| s + v * v).sqrt(),
            };
            if z != 0.0 {
                row.mapv_inplace(|v| v / z);
            }
        }
        Tensor::F32(y)
    }
    fn print_attrs(&self, w: &mut Printer) {
        w.attr("norm", |w| w.text(NORMS[self.norm as usize]));
    }
}

impl Normalize {
    /// Reads `{norm=max|l1|l2}`.
    pub(crate) fn parse_attrs(p: &mut Parser) -> Result<Self, ParseError> {
        let norm = [Norm::Max, Norm::L1, Norm::L2][p.attr("norm", |p| p.one_of(&NORMS))?];
        Ok(Normalize { norm })
    }
}

/// Whether everything after `v` runs on the receiving side: `v` is a graph output
/// nothing reads, or every reader is a `normalize` for which that holds.
pub(crate) fn ends_model(graph: &Graph, v: ValueId) -> bool {
    let users: Vec<usize> = (0..graph.nodes.len()).filter(|&i| graph.nodes[i].inputs.contains(&v)).collect();
    if users.is_empty() {
        return graph.outputs.contains(&v);
    }
    !graph.outputs.contains(&v)
        && users.iter().all(|&i| matches!(graph.nodes[i].op, Op::Normalize(_)) && ends_model(graph, ValueId(i as u32)))
}

impl QuantizeRule for Normalize {
    fn quantize<C: QuantizeCx>(&self, graph: &Graph, v: ValueId, cx: &mut C) -> Result<Lowered<ValueId>, C::Error> {
        if !ends_model(graph, v) || cx.config().output_tables {
            return Err(cx.fail(
                v,
                "a normalizer has no integer form (each output reads its whole row): it runs only at the \
                 end of the model, on the receiving side after decryption",
            ));
        }
        let node = graph.node(v);
        let x = cx.int(node.inputs[0])?;
        // A float operand is already the receiver's (a final softmax).
        let x = match cx.new_graph().ty(x).as_int().and_then(|t| t.quant.clone()) {
            Some(quant) => {
                cx.push(Op::Dequantize(Dequantize { quant }), vec![x], graph.node(node.inputs[0]).name.clone())?
            }
            None => x,
        };
        Ok(Lowered::Computed(cx.push(Op::Normalize(self.clone()), vec![x], node.name.clone())?))
    }
    fn table_noise(&self) -> TableNoise {
        TableNoise::Untracked
    }
    fn weight_channels(&self, _: usize) -> Option<Channels> {
        None
    }
}

impl FheRule for Normalize {
    fn fhe_lowering(&self) -> FheLowering<'_> {
        FheLowering::FloatOnly
    }
}

impl MpcRule for Normalize {
    fn lower_mpc<C: MpcCx>(&self, _: &Graph, v: ValueId, cx: &mut C) -> Result<Lowered<Reg>, C::Error> {
        Err(cx.fail(v, "`normalize` has no SMPC lowering (a division by each row's norm)"))
    }
    fn min_frac_bits(&self) -> u32 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::arr2;

    fn normalize(norm: Norm, x: [[f32; 3]; 3]) -> Vec<f32> {
        let x = Tensor::F32(arr2(&x).into_dyn());
        Normalize { norm }.eval(&[&x]).as_f32().unwrap().iter().copied().collect()
    }

    /// The values onnxruntime 1.32 returns for the same rows.
    #[test]
    fn rows_are_divided_as_onnxruntime_does() {
        let x = [[0.3, -1.0, 2.0], [0.0, 0.0, 0.0], [-2.0, -1.0, -0.5]];
        assert_eq!(normalize(Norm::Max, x), [0.15, -0.5, 1.0, 0.0, 0.0, 0.0, 4.0, 2.0, 1.0]);
        let l1 = normalize(Norm::L1, x);
        assert!((l1[0] - 0.09090909).abs() < 1e-7 && (l1[6] + 0.5714286).abs() < 1e-7, "{l1:?}");
        assert_eq!(normalize(Norm::L2, [[1e-30, 0.0, 0.0]; 3])[0], 1e-30, "x² underflows: left as is");
    }
}
