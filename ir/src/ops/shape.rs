//! `reshape %x {shape=[...]}`: the same elements in C order under a new shape
//! (ONNX `Reshape`, `Flatten`, `Squeeze`, `Unsqueeze`). Integer ranges carry over;
//! per-channel quantization survives only when the channel axis keeps its place.

use super::{expect_arity, write_usizes, OpClass, OpSpec, Operand};
use crate::tensor::Tensor;
use crate::types::{ElemType, IntType, Shape, TensorType};
use ndarray::IxDyn;
use serde::{Deserialize, Serialize};
use std::fmt;

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
    fn class(&self) -> OpClass {
        OpClass::Structural
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
    fn write_attrs(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_usizes(f, "shape", &self.shape.0)
    }
}
