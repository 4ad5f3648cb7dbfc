//! `fake_quant %x {quant=q(s, zp), range=[qmin, qmax]}`: an ONNX `QuantizeLinear` →
//! `DequantizeLinear` pair on a float tensor, as onnxruntime's `quantize_static` writes
//! QDQ models.
//!
//! `y = (clamp(round_half_even(x / s) + zp, qmin, qmax) − zp) · s`, computed in float32
//! as ONNX specifies (the division, the rounding and the product are float32 operations;
//! the integers are exact), per tensor or per channel (`s`, `zp` along `axis`). The
//! clamp is part of the meaning: the quantizer folds each ReLU into a `QuantizeLinear`
//! whose zero point sits at the bottom of the type's range, so `qmin` is the ReLU.
//!
//! - **Quantizer.** The op names a grid: its output is the integer `q` with
//!   quantization `q(s, zp)` and range `[qmin, qmax]`, in place of a calibrated one. On
//!   a graph input the client quantizes straight onto that grid; on a value already on
//!   it (max pooling or a reshape of a fake-quantized value) it is the identity; after
//!   a linear op it is a table whose outputs lie on the grid. (Its span stays the
//!   calibrated one even where the clamp saturates sooner: under TFHE a bootstrap covers
//!   exactly its table, and beyond it wraps around.)
//! - **TFHE**: never an integer itself (the quantizer turns it into the above).
//! - **SMPC**: the clamp exactly (piecewise linear, exact comparisons with the grid's
//!   ends); the rounding onto the grid is skipped, an error of at most `s/2` per element,
//!   which the plan states as the step's bound. Per-channel grids are refused there.

use super::facets::{Channels, FheLowering, FheRule, Lowered, MpcCx, MpcRule, QuantizeCx, QuantizeRule, TableNoise};
use super::{expect_arity, Op, OpSpec, Operand, Quantize, Region};
use crate::lowered::mpc::{Piece, Piecewise, Reg, StepOp};
use crate::tensor::Tensor;
use crate::text::{ParseError, Parser, Printer};
use crate::types::{Quant, Shape, TensorType};
use crate::{Graph, ValueId};
use ndarray::ArrayD;
use serde::{Deserialize, Serialize};

/// A quantize → dequantize pair on floats.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct FakeQuant {
    /// The grid: scale and zero point, per tensor or per channel.
    pub quant: Quant,
    /// Smallest integer of the type (`-128` for int8, `0` for uint8).
    pub lo: i64,
    /// Largest integer of the type.
    pub hi: i64,
}

/// ONNX `QuantizeLinear` of one float32: `clamp(round_half_even(x / s) + zp, lo, hi)`.
pub fn quantize_linear(x: f32, scale: f32, zero_point: i64, lo: i64, hi: i64) -> i64 {
    let q = (x / scale).round_ties_even() + zero_point as f32;
    // Clamped in float so infinities saturate like ONNX's; NaN goes to the zero point.
    if q.is_nan() {
        zero_point
    } else {
        q.clamp(lo as f32, hi as f32) as i64
    }
}

impl FakeQuant {
    /// The integer grid point element `e` of a tensor of `shape` lands on.
    fn index(&self, shape: &Shape, e: usize, x: f32) -> i64 {
        let (s, z) = self.quant.params_at(shape, e);
        quantize_linear(x, s as f32, z, self.lo, self.hi)
    }
}

impl OpSpec for FakeQuant {
    fn mnemonic(&self) -> &'static str {
        "fake_quant"
    }
    fn infer(&self, inputs: &[Operand]) -> Result<TensorType, String> {
        expect_arity(inputs, 1..=1)?;
        if !inputs[0].ty.is_float() {
            return Err("expects a float operand".into());
        }
        if self.lo > self.hi {
            return Err(format!("has an empty range [{}, {}]", self.lo, self.hi));
        }
        if self.quant.scale.len() != self.quant.zero_point.len() || self.quant.scale.is_empty() {
            return Err("needs one zero point per scale".into());
        }
        if self.quant.scale.iter().any(|&s| !(s.is_finite() && s > 0.0 && s as f32 as f64 == s)) {
            return Err("scales must be positive float32 numbers".into());
        }
        let shape = &inputs[0].ty.shape;
        match self.quant.axis {
            Some(axis) if shape.0.get(axis) != Some(&self.quant.scale.len()) => {
                Err(format!("{} channel parameters for axis {axis} of {shape}", self.quant.scale.len()))
            }
            None if self.quant.scale.len() != 1 => Err("per-tensor parameters must be single".into()),
            _ => Ok(inputs[0].ty.clone()),
        }
    }
    fn eval(&self, inputs: &[&Tensor]) -> Tensor {
        let x = inputs[0].as_f32().expect("float operand verified");
        let shape = Shape(x.shape().to_vec());
        let y = x.iter().enumerate().map(|(e, &v)| {
            let (s, z) = self.quant.params_at(&shape, e);
            (self.index(&shape, e, v) - z) as f32 * s as f32
        });
        Tensor::F32(ArrayD::from_shape_vec(x.raw_dim(), y.collect()).expect("same shape"))
    }
    fn print_attrs(&self, w: &mut Printer) {
        w.attr("quant", |w| self.quant.print(w));
        w.attr("range", |w| w.text(&format!("[{}, {}]", self.lo, self.hi)));
    }
}

impl FakeQuant {
    /// Reads `{quant=q(...), range=[lo, hi]}`.
    pub(crate) fn parse_attrs(p: &mut Parser) -> Result<Self, ParseError> {
        let quant = p.attr("quant", Quant::parse)?;
        let (lo, hi) = p.attr("range", Parser::range)?;
        Ok(FakeQuant { quant, lo, hi })
    }
}

impl QuantizeRule for FakeQuant {
    fn quantize<C: QuantizeCx>(&self, graph: &Graph, v: ValueId, cx: &mut C) -> Result<Lowered<ValueId>, C::Error> {
        let x = graph.node(v).inputs[0];
        let name = graph.node(v).name.clone();
        let region = match cx.state(x).clone() {
            Lowered::Const => return Err(cx.fail(v, "fake-quantization of a constant was not folded")),
            Lowered::Computed(i) if matches!(graph.node(x).op, Op::Input(_)) => {
                // The client quantizes the input onto the model's own grid.
                let input = cx.new_graph().node(i).inputs[0];
                let q = Quantize { quant: self.quant.clone(), lo: self.lo, hi: self.hi };
                return cx.push(Op::Quantize(q), vec![input], name).map(Lowered::Computed);
            }
            Lowered::Computed(i) => {
                let t = cx.new_graph().ty(i).as_int().expect("computed values are integers").clone();
                if t.quant.as_ref() == Some(&self.quant) && self.lo <= t.lo && t.hi <= self.hi {
                    // Already on this grid and inside its clamp: the identity.
                    return Ok(Lowered::Computed(i));
                }
                Region { source: i, entries: vec![x], nodes: vec![v] }
            }
            Lowered::Chain(mut r) => {
                r.nodes.push(v);
                r
            }
        };
        cx.tabulate_onto(&region, v, (self.quant.clone(), self.lo, self.hi)).map(Lowered::Computed)
    }
    fn table_noise(&self) -> TableNoise {
        TableNoise::Untracked
    }
    fn weight_channels(&self, _: usize) -> Option<Channels> {
        None
    }
}

impl FheRule for FakeQuant {
    fn fhe_lowering(&self) -> FheLowering<'_> {
        FheLowering::FloatOnly
    }
}

impl MpcRule for FakeQuant {
    fn lower_mpc<C: MpcCx>(&self, graph: &Graph, v: ValueId, cx: &mut C) -> Result<Lowered<Reg>, C::Error> {
        let (&[s], &[z], None) = (self.quant.scale.as_slice(), self.quant.zero_point.as_slice(), self.quant.axis)
        else {
            return Err(cx.fail(v, "per-channel fake-quantization is not supported by the mpc backend yet"));
        };
        let x = cx.reg(graph.node(v).inputs[0])?;
        let (lo, hi) = (s * (self.lo - z) as f64, s * (self.hi - z) as f64);
        let piece = |lo, hi, coeffs| Piece { lo, hi, scale: 1.0, offset: 0.0, coeffs };
        let function = Piecewise {
            function: format!("fake_quant q({s}, {z}) [{}, {}]: the clamp, unrounded", self.lo, self.hi),
            breakpoints: vec![lo, hi],
            pieces: vec![
                piece(f64::NEG_INFINITY, lo, vec![lo]),
                piece(lo, hi, vec![0.0, 1.0]),
                piece(hi, f64::INFINITY, vec![hi]),
            ],
            // The grid's rounding is not computed: half a step, plus one fixed-point ulp.
            max_error: s / 2.0 + 0.5f64.powi(cx.frac_bits() as i32),
        };
        let out = cx.new_reg();
        cx.step(v, StepOp::Piecewise { x, len: graph.ty(v).shape.numel(), function, out });
        Ok(Lowered::Computed(out))
    }
    fn min_frac_bits(&self) -> u32 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fq(scale: f64, zp: i64, lo: i64, hi: i64) -> FakeQuant {
        FakeQuant { quant: Quant::per_tensor(scale, zp), lo, hi }
    }

    #[test]
    fn rounds_half_to_even_in_float32_and_clamps() {
        let s = (1.0f32 / 255.0) as f64;
        let t = Tensor::F32(ndarray::arr1(&[0.5f32, -0.3, 2.0, 0.0, 0.25]).into_dyn());
        let y = fq(s, -128, -128, 127).eval(&[&t]);
        let y = y.as_f32().unwrap();
        // s is a little above 1/255: 0.5 lies just below grid point 127.5, 127 steps up.
        assert_eq!(y[0], 127.0 * s as f32);
        assert_eq!(y[1], 0.0, "the zero point at the bottom of the range is a ReLU");
        assert_eq!(y[2], 255.0 * s as f32, "saturates at qmax");
        assert_eq!(y[3], 0.0);
        assert_eq!(quantize_linear(2.5, 1.0, 0, -128, 127), 2);
        assert_eq!(quantize_linear(-2.5, 1.0, 3, -128, 127), 1);
        assert_eq!(quantize_linear(f32::INFINITY, 1.0, 0, 0, 255), 255);
    }

    #[test]
    fn per_channel_grids_follow_the_axis() {
        let quant = Quant { axis: Some(1), scale: vec![0.5, 0.25], zero_point: vec![0, 10] };
        let f = FakeQuant { quant, lo: 0, hi: 255 };
        let t = Tensor::F32(ndarray::arr2(&[[1.3f32, 1.3]]).into_dyn());
        let ty = TensorType::f32(Shape(vec![1, 2]));
        assert!(f.infer(&[Operand { ty: &ty, value: None }]).is_ok());
        assert_eq!(f.eval(&[&t]).as_f32().unwrap().iter().copied().collect::<Vec<_>>(), [1.5, 1.25]);
        let bad = TensorType::f32(Shape(vec![2, 1]));
        assert!(f.infer(&[Operand { ty: &bad, value: None }]).is_err());
    }
}
