//! `const`: a constant tensor (weights, biases, scalars). Integer constants carry
//! the quantization of the real weights they stand for; their range is their min and max.
//!
//! Every pass leaves a constant to its users: the quantizer quantizes weights for the
//! op that reads them, the TFHE server holds them in the clear, the SMPC model owner
//! shares them when an op registers them as weights.

use super::facets::{Channels, FheLowering, FheRule, Lowered, MpcCx, MpcRule, QuantizeCx, QuantizeRule, TableNoise};
use super::{OpSpec, Operand};
use crate::lowered::mpc::Reg;
use crate::tensor::Tensor;
use crate::types::{Quant, TensorType};
use crate::{Graph, ValueId};
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
