//! `const`: a constant tensor (weights, biases, scalars). Integer constants carry
//! the quantization of the real weights they stand for; their range is their min and max.

use super::{OpClass, OpSpec, Operand};
use crate::tensor::Tensor;
use crate::types::{Quant, TensorType};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A constant tensor.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Const {
    /// The data.
    pub value: Tensor,
    /// For integer constants: the real values they stand for.
    pub quant: Option<Quant>,
}

impl OpSpec for Const {
    fn mnemonic(&self) -> &'static str {
        "const"
    }
    fn class(&self) -> OpClass {
        OpClass::Source
    }
    fn infer(&self, inputs: &[Operand]) -> Result<TensorType, String> {
        super::expect_arity(inputs, 0..=0)?;
        let shape = self.value.shape();
        Ok(match &self.value {
            Tensor::F32(_) => TensorType::f32(shape),
            Tensor::I64(a) => {
                let lo = a.iter().copied().min().unwrap_or(0);
                let hi = a.iter().copied().max().unwrap_or(0);
                TensorType::int(shape, lo, hi, self.quant.clone())
            }
        })
    }
    fn eval(&self, _: &[&Tensor]) -> Tensor {
        self.value.clone()
    }
    fn write_attrs(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "value={}", self.value)
    }
}
