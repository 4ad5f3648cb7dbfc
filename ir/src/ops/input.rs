//! `input N`: the graph's N-th input. Its type is given, not inferred.

use super::{OpClass, OpSpec, Operand};
use crate::tensor::Tensor;
use crate::text::{ParseError, Parser, Printer};
use crate::types::TensorType;
use serde::{Deserialize, Serialize};

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
    fn print_attrs(&self, w: &mut Printer) {
        w.attr("index", |w| w.display(self.index));
        if w.node_type() != Some(&self.ty) {
            w.attr("type", |w| self.ty.print(w));
        }
    }
}

impl Input {
    /// Reads `{index=N}`, and `type=...` when it is not the node's type.
    pub(crate) fn parse_attrs(p: &mut Parser) -> Result<Self, ParseError> {
        let index = p.attr("index", Parser::usize)?;
        let ty = match (p.opt_attr("type", TensorType::parse)?, p.node_type()) {
            (Some(ty), _) => ty,
            (None, Some(ty)) => ty.clone(),
            (None, None) => return Err(p.expected("attribute `type`")),
        };
        Ok(Input { index, ty })
    }
}
