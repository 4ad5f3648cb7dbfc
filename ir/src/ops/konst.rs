//! `const`: a constant tensor (weights, biases, scalars). Integer constants carry
//! the quantization of the real weights they stand for; their range is their min and max.
//!
//! Every pass leaves a constant to its users: the quantizer quantizes weights for the
//! op that reads them, the TFHE server holds them in the clear, the SMPC model owner
//! shares them when an op registers them as weights.

use super::facets::{Channels, FheLowering, FheRule, Lowered, MpcCx, MpcRule, QuantizeCx, QuantizeRule, TableNoise};
use super::{node_quant, OpSpec, Operand};
use crate::lowered::mpc::Reg;
use crate::tensor::Tensor;
use crate::text::{ParseError, Parser, Printer};
use crate::types::{Quant, TensorType};
use crate::{Graph, ValueId};
use serde::{Deserialize, Serialize};

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
    fn print_attrs(&self, w: &mut Printer) {
        w.attr("value", |w| self.value.print(w));
        if self.quant.as_ref() != node_quant(w.node_type()) {
            w.attr("quant", |w| Quant::print_opt(self.quant.as_ref(), w));
        }
    }
}

impl Const {
    /// Reads `{value=...}`, and `quant=...` when it is not the node type's.
    pub(crate) fn parse_attrs(p: &mut Parser) -> Result<Self, ParseError> {
        let value = p.attr("value", Tensor::parse)?;
        let quant = match p.opt_attr("quant", Quant::parse_opt)? {
            Some(q) => q,
            None => node_quant(p.node_type()).cloned(),
        };
        Ok(Const { value, quant })
    }
}

impl QuantizeRule for Const {
    fn quantize<C: QuantizeCx>(&self, _: &Graph, _: ValueId, _: &mut C) -> Result<Lowered<ValueId>, C::Error> {
        Ok(Lowered::Const)
    }
    fn table_noise(&self) -> TableNoise {
        TableNoise::Untracked
    }
    fn weight_channels(&self, _: usize) -> Option<Channels> {
        None
    }
}

impl FheRule for Const {
    fn fhe_lowering(&self) -> FheLowering<'_> {
        FheLowering::Cleartext
    }
}

impl MpcRule for Const {
    fn lower_mpc<C: MpcCx>(&self, _: &Graph, _: ValueId, _: &mut C) -> Result<Lowered<Reg>, C::Error> {
        Ok(Lowered::Const)
    }
    fn min_frac_bits(&self) -> u32 {
        0
    }
}
