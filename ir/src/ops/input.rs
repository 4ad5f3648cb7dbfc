//! `input N`: the graph's N-th input. Its type is given, not inferred.

use super::{OpClass, OpSpec, Operand};
use crate::tensor::Tensor;
use crate::types::TensorType;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The graph's `index`-th input, of the declared type.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Input {
    /// Position among the graph inputs.
    pub index: usize,
    /// The declared type (inputs have nothing to infer from).
    pub ty: TensorType,
}

impl OpSpec for Input {
    fn mnemonic(&self) -> &'static str {
        "input"
    }
    fn class(&self) -> OpClass {
        OpClass::Source
    }
    fn infer(&self, inputs: &[Operand]) -> Result<TensorType, String> {
        super::expect_arity(inputs, 0..=0)?;
        Ok(self.ty.clone())
    }
    fn eval(&self, _: &[&Tensor]) -> Tensor {
        unreachable!("graph inputs are bound by the executor, not evaluated")
    }
    fn write_attrs(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "index={}", self.index)
    }
}
