//! The boundary between reals and integers, run by the client in the clear.
//!
//! - `quantize %x {q(s, z), range}`: `q = clamp(round(x / s) + z, lo, hi)`, rounding half
//!   away from zero; values outside the calibrated range are clipped. Per tensor, or per
//!   channel (tree ensembles quantize each feature on its own grid).
//! - `dequantize %q {q(...)}`: `x = s[c] · (q − z[c])`, per channel where the input is.
//!
//! Both exist in the integer IR only: the quantizer places them (they have no rule of
//! their own) and the SMPC backend, which lowers the float IR, never sees them. Under
//! TFHE the client encrypts what `quantize` makes and decrypts what `dequantize` reads.

use super::{expect_arity, OpSpec, Operand};
use crate::tensor::Tensor;
use crate::text::{ParseError, Parser, Printer};
use crate::types::{Quant, Shape, TensorType};
use ndarray::ArrayD;
use serde::{Deserialize, Serialize};

/// Float to integer.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Quantize {
    /// Scale and zero point, per tensor or per channel.
    pub quant: Quant,
    /// Smallest integer (clipping bound).
    pub lo: i64,
    /// Largest integer (clipping bound).
    pub hi: i64,
}

/// `clamp(round(x / scale) + zero_point, lo, hi)`: the one rounding rule of the boundary.
pub fn quantize_value(x: f64, scale: f64, zero_point: i64, lo: i64, hi: i64) -> i64 {
    let q = (x / scale).round();
    // Clamp in float first so huge or non-finite inputs cannot overflow the cast.
    (q.clamp((lo - zero_point) as f64, (hi - zero_point) as f64) as i64 + zero_point).clamp(lo, hi)
}

/// Unsigned `bits`-bit quantization of `[lo, hi]` widened to contain 0: `(quant, qmin, qmax)`.
pub fn output_quant(lo: f64, hi: f64, bits: u32) -> (Quant, i64, i64) {
    let (lo, hi) = (lo.min(0.0), hi.max(0.0));
    let qmax = (1i64 << bits) - 1;
    let scale = if hi > lo { (hi - lo) / qmax as f64 } else { 1.0 };
    let zp = ((-lo / scale).round() as i64).clamp(0, qmax);
    (Quant::per_tensor(scale, zp), 0, qmax)
}

/// The largest zero point [`interval_quant`] gives: an interval farther from 0, next to
/// its width, gets none (its caller keeps a grid that holds 0).
const ZERO_POINT_REACH: f64 = (1u64 << 40) as f64;

/// Unsigned `bits`-bit quantization of exactly `[lo, hi]` (0 need not be on the grid):
/// `(scale, zero point)`, or `None` when the interval is empty or too far from 0.
pub fn interval_quant(lo: f64, hi: f64, bits: u32) -> Option<(f64, i64)> {
    let scale = (hi - lo) / ((1i64 << bits) - 1) as f64;
    let zp = (-lo / scale).round();
    (hi > lo && scale.is_normal() && zp.abs() < ZERO_POINT_REACH).then_some((scale, zp as i64))
}

impl OpSpec for Quantize {
    fn mnemonic(&self) -> &'static str {
        "quantize"
    }
    fn infer(&self, inputs: &[Operand]) -> Result<TensorType, String> {
        expect_arity(inputs, 1..=1)?;
        if !inputs[0].ty.is_float() {
            return Err("expects a float operand".into());
        }
        let shape = &inputs[0].ty.shape;
        if let Some(axis) = self.quant.axis {
            if shape.0.get(axis) != Some(&self.quant.scale.len()) {
                return Err(format!("{} channel parameters for axis {axis} of {shape}", self.quant.scale.len()));
            }
        }
        Ok(TensorType::int(inputs[0].ty.shape.clone(), self.lo, self.hi, Some(self.quant.clone())))
    }
    fn eval(&self, inputs: &[&Tensor]) -> Tensor {
        let x = inputs[0].as_f32().expect("float operand verified");
        let shape = Shape(x.shape().to_vec());
        let q = x.iter().enumerate().map(|(e, &v)| {
            let (s, z) = self.quant.params_at(&shape, e);
            quantize_value(v as f64, s, z, self.lo, self.hi)
        });
        Tensor::I64(ArrayD::from_shape_vec(x.raw_dim(), q.collect()).expect("same shape"))
    }
    fn print_attrs(&self, w: &mut Printer) {
        let node = w.node_type().and_then(TensorType::as_int);
        let same_quant = node.and_then(|t| t.quant.as_ref()) == Some(&self.quant);
        let same_range = node.map(|t| (t.lo, t.hi)) == Some((self.lo, self.hi));
        if !same_quant {
            w.attr("quant", |w| self.quant.print(w));
        }
        if !same_range {
            w.attr("range", |w| w.text(&format!("[{}, {}]", self.lo, self.hi)));
        }
    }
}

impl Quantize {
    /// Reads `{quant=q(...), range=[lo, hi]}`, each defaulting to the node type's.
    pub(crate) fn parse_attrs(p: &mut Parser) -> Result<Self, ParseError> {
        let node = p.node_type().and_then(TensorType::as_int).cloned();
        let quant = match (p.opt_attr("quant", Quant::parse)?, node.as_ref().and_then(|t| t.quant.clone())) {
            (Some(q), _) | (None, Some(q)) => q,
            (None, None) => return Err(p.expected("attribute `quant`")),
        };
        let (lo, hi) = match (p.opt_attr("range", Parser::range)?, node) {
            (Some(r), _) => r,
            (None, Some(t)) => (t.lo, t.hi),
            (None, None) => return Err(p.expected("attribute `range`")),
        };
        Ok(Quantize { quant, lo, hi })
    }
}

/// Integer to float.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Dequantize {
    /// The input's quantization.
    pub quant: Quant,
}

impl OpSpec for Dequantize {
    fn mnemonic(&self) -> &'static str {
        "dequantize"
    }
    fn infer(&self, inputs: &[Operand]) -> Result<TensorType, String> {
        expect_arity(inputs, 1..=1)?;
        let Some(t) = inputs[0].ty.as_int() else {
            return Err("expects an integer operand".into());
        };
        if t.quant.as_ref() != Some(&self.quant) {
            return Err("its quantization differs from its operand's".into());
        }
        Ok(TensorType::f32(inputs[0].ty.shape.clone()))
    }
    fn eval(&self, inputs: &[&Tensor]) -> Tensor {
        let q = inputs[0].as_i64().expect("integer operand verified");
        let shape = Shape(q.shape().to_vec());
        let data: Vec<f32> = q.iter().enumerate().map(|(i, &v)| self.quant.dequantize(&shape, i, v) as f32).collect();
        Tensor::F32(ndarray::ArrayD::from_shape_vec(q.raw_dim(), data).expect("same shape"))
    }
    fn print_attrs(&self, w: &mut Printer) {
        w.attr("quant", |w| self.quant.print(w));
    }
}

impl Dequantize {
    /// Reads `{quant=q(...)}`.
    pub(crate) fn parse_attrs(p: &mut Parser) -> Result<Self, ParseError> {
        Ok(Dequantize { quant: p.attr("quant", Quant::parse)? })
    }
}

/// The rules of an op of the integer IR that the client runs in the clear at the
/// boundary (`$fhe`: it encrypts the op's output, or decrypts its input): the
/// quantizer never meets it and SMPC, which lowers the float IR, never sees it.
macro_rules! client_boundary {
    ($op:ty, $fhe:ident) => {
        impl $crate::ops::QuantizeRule for $op {
            fn quantize<C: $crate::ops::QuantizeCx>(
                &self,
                _: &$crate::Graph,
                v: $crate::ValueId,
                cx: &mut C,
            ) -> Result<$crate::ops::Lowered<$crate::ValueId>, C::Error> {
                Err(cx.fail(v, $crate::ops::facets::ALREADY_QUANTIZED))
            }
            fn table_noise(&self) -> $crate::ops::TableNoise {
                $crate::ops::TableNoise::Untracked
            }
            fn weight_channels(&self, _: usize) -> Option<$crate::ops::Channels> {
                None
            }
        }

        impl $crate::ops::FheRule for $op {
            fn fhe_lowering(&self) -> $crate::ops::FheLowering<'_> {
                $crate::ops::FheLowering::$fhe
            }
        }

        impl $crate::ops::MpcRule for $op {
            fn lower_mpc<C: $crate::ops::MpcCx>(
                &self,
                _: &$crate::Graph,
                v: $crate::ValueId,
                cx: &mut C,
            ) -> Result<$crate::ops::Lowered<$crate::lowered::mpc::Reg>, C::Error> {
                Err(cx.fail(v, $crate::ops::facets::MPC_FLOAT_ONLY))
            }
            fn min_frac_bits(&self) -> u32 {
                0
            }
        }
    };
}
pub(crate) use client_boundary;

client_boundary!(Quantize, ClientEncrypts);
client_boundary!(Dequantize, ClientDecrypts);
