//! `conv %x, %w[, %b]`: 2-D convolution, NCHW input, OIHW weights (ONNX `Conv`).
//!
//! Semantics, floats and integers alike:
//! `y[n,o,i,j] = b[o] + Σ_{c,k,l} w[o,c,k,l] · (x[n, g·C/G + c, i·sh + k·dh − pt, j·sw + l·dw − pl] − x_zp)`
//! where out-of-image taps contribute 0 and `g` is the group of output channel `o`.
//! `x_zp` is 0 in the float IR; in the quantized IR it is the input's zero point, so the
//! accumulator is exact and stands for `s_x · s_w[o] · y` (see `linear_quant`).
//! The weights and bias must be constants: range analysis sums, per output channel,
//! the interval of every tap `w · (x − x_zp)` (with 0 included where padding can occur).
//!
//! Quantization: weights per output channel (axis 0), input per tensor
//! (the rule in `linear.rs`). TFHE: levelled. SMPC: one local product per output
//! plus a truncation.

use super::facets::{Channels, FheLowering, FheRule, Lowered, MpcCx, MpcRule, QuantizeCx, QuantizeRule, TableNoise};
use super::linear::{
    eval_linear, linear_quant, linear_range, lower_linear, minus_zero_point, quantize_linear, LinearKernel,
};
use super::{common_is_float, expect_arity, Op, OpSpec, Operand};
use crate::lowered::mpc::{Reg, StepOp};
use crate::tensor::Tensor;
use crate::text::{ParseError, Parser, Printer};
use crate::types::{Shape, TensorType};
use crate::{Graph, ValueId};
use ndarray::{ArrayD, IxDyn, LinalgScalar};
use serde::{Deserialize, Serialize};

/// 2-D convolution.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Conv {
    /// Strides (sh, sw).
    pub strides: Vec<usize>,
    /// Padding in ONNX order: (top, left, bottom, right).
    pub pads: Vec<usize>,
    /// Dilations (dh, dw).
    pub dilations: Vec<usize>,
    /// Number of groups.
    pub group: usize,
    /// Zero point subtracted from every input element (0 for floats).
    pub x_zp: i64,
}

/// Shapes and attributes of one convolution: everything its index maths needs. The
/// SMPC plan carries it per conv step, so the parties run [`conv_accumulate`] too.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConvGeometry {
    /// Input shape `[n, c, h, w]` of one sample.
    pub input: [usize; 4],
    /// Kernel shape `[o, c/group, kh, kw]`.
    pub kernel: [usize; 4],
    /// Output shape `[n, o, oh, ow]` of one sample.
    pub output: [usize; 4],
    /// Strides.
    pub strides: [usize; 2],
    /// Padding (top, left); the bottom and right padding only decide the output size.
    pub pads: [usize; 2],
    /// Dilations.
    pub dilations: [usize; 2],
    /// Groups.
    pub group: usize,
}

/// The convolution sum over `images` samples of `g.input`: `x(i)` and `w(i)` read the
/// input and the kernel by flat C-order index (the IR subtracts its zero point there),
/// and output channel `o` starts from `bias(o)`. Generic over the element so the float
/// IR, the integer IR and the SMPC parties' wrapping ring (`std::num::Wrapping<u64>`)
/// share this one copy of the index maths.
pub fn conv_accumulate<T>(
    g: &ConvGeometry,
    images: usize,
    x: impl Fn(usize) -> T,
    w: impl Fn(usize) -> T,
    bias: impl Fn(usize) -> T,
) -> Vec<T>
where
    T: Copy + std::ops::Add<Output = T> + std::ops::Mul<Output = T>,
{
    let [_, c, h, wd] = g.input;
    let [o, cg, kh, kw] = g.kernel;
    let [_, _, oh, ow] = g.output;
    let per_group = o / g.group;
    let (strides, dilations, pads) = (g.strides, g.dilations, g.pads);
    // Input coordinate of output position `i`, tap `k` on axis `axis` (0 = rows), if inside.
    let source = |axis: usize, i: usize, k: usize, size: usize| {
        let p = (i * strides[axis] + k * dilations[axis]) as isize - pads[axis] as isize;
        (0..size as isize).contains(&p).then_some(p as usize)
    };
    let mut y = Vec::with_capacity(images * o * oh * ow);
    for n in 0..images {
        for oc in 0..o {
            let c0 = (oc / per_group) * cg;
            for i in 0..oh {
                for j in 0..ow {
                    let mut acc = bias(oc);
                    for ci in 0..cg {
                        for ki in 0..kh {
                            let Some(r) = source(0, i, ki, h) else { continue };
                            for kj in 0..kw {
                                let Some(q) = source(1, j, kj, wd) else { continue };
                                let xv = x(((n * c + c0 + ci) * h + r) * wd + q);
                                acc = acc + w(((oc * cg + ci) * kh + ki) * kw + kj) * xv;
                            }
                        }
                    }
                    y.push(acc);
                }
            }
        }
    }
    y
}

impl Conv {
    /// The geometry of this convolution on input `x` with kernel `w`.
    pub fn geometry(&self, x: &Shape, w: &Shape) -> Result<ConvGeometry, String> {
        let (&[n, c, h, wd], &[o, cg, kh, kw]) = (x.0.as_slice(), w.0.as_slice()) else {
            return Err(format!("expects a rank-4 input and kernel, got {x} and {w}"));
        };
        if self.group == 0 || c != cg * self.group || o % self.group != 0 {
            return Err(format!("{c} input channels do not match kernel {w} with {} groups", self.group));
        }
        // Checked: the attributes may come from a crafted file.
        let out = |size: usize, pads: [usize; 2], k: usize, d: usize, s: usize| {
            let span = d.checked_mul(k.checked_sub(1)?)?.checked_add(1)?;
            let padded = size.checked_add(pads[0])?.checked_add(pads[1])?;
            (padded >= span && s > 0).then(|| (padded - span) / s + 1)
        };
        let (Some(oh), Some(ow)) = (
            out(h, [self.pads[0], self.pads[2]], kh, self.dilations[0], self.strides[0]),
            out(wd, [self.pads[1], self.pads[3]], kw, self.dilations[1], self.strides[1]),
        ) else {
            return Err(format!("kernel {w} is larger than the padded input {x}"));
        };
        Ok(ConvGeometry {
            input: [n, c, h, wd],
            kernel: [o, cg, kh, kw],
            output: [n, o, oh, ow],
            strides: [self.strides[0], self.strides[1]],
            pads: [self.pads[0], self.pads[1]],
            dilations: [self.dilations[0], self.dilations[1]],
            group: self.group,
        })
    }

    fn has_padding(&self) -> bool {
        self.pads.iter().any(|&p| p > 0)
    }
}

impl LinearKernel for Conv {
    fn x_zp(&self) -> i64 {
        self.x_zp
    }

    fn run<T: LinalgScalar>(&self, x: &ArrayD<T>, w: &ArrayD<T>, b: Option<&ArrayD<T>>, zp: T) -> ArrayD<T> {
        let g = self.geometry(&Shape(x.shape().to_vec()), &Shape(w.shape().to_vec())).expect("conv operands verified");
        let (x, w) = (x.as_standard_layout(), w.as_standard_layout());
        let (x, w) = (x.as_slice().expect("standard layout"), w.as_slice().expect("standard layout"));
        let y = conv_accumulate(&g, g.input[0], |i| x[i] - zp, |i| w[i], |o| b.map_or(T::zero(), |b| b[[o]]));
        ArrayD::from_shape_vec(IxDyn(&g.output), y).expect("output shape")
    }
}

impl OpSpec for Conv {
    fn mnemonic(&self) -> &'static str {
        "conv"
    }
    fn infer(&self, inputs: &[Operand]) -> Result<TensorType, String> {
        expect_arity(inputs, 2..=3)?;
        if self.strides.len() != 2 || self.dilations.len() != 2 || self.pads.len() != 4 {
            return Err("only 2-D convolutions are supported (strides, dilations: 2 values; pads: 4)".into());
        }
        let (x, w) = (inputs[0].ty, inputs[1].ty);
        let g = self.geometry(&x.shape, &w.shape)?;
        let out_shape = Shape(g.output.to_vec());
        if let Some(b) = inputs.get(2) {
            if b.ty.shape.0 != [g.output[1]] {
                return Err(format!("bias shape {} does not match {} output channels", b.ty.shape, g.output[1]));
            }
        }
        if common_is_float(inputs)? {
            return Ok(TensorType::f32(out_shape));
        }
        let xi = x.as_int().expect("integer operand");
        let (xlo, xhi) = minus_zero_point(xi.lo, xi.hi, self.x_zp)?;
        // A padded tap contributes 0, whatever the input range.
        let x_range = if self.has_padding() { (xlo.min(0), xhi.max(0)) } else { (xlo, xhi) };
        let (lo, hi) = linear_range(inputs, 0, x_range)?;
        Ok(TensorType::int(out_shape, lo, hi, linear_quant(x, w, 1, None)))
    }
    fn eval(&self, inputs: &[&Tensor]) -> Tensor {
        eval_linear(self, inputs)
    }
    fn print_attrs(&self, w: &mut Printer) {
        w.attr("strides", |w| w.dims(&self.strides));
        w.attr("pads", |w| w.dims(&self.pads));
        w.attr("dilations", |w| w.dims(&self.dilations));
        w.attr("group", |w| w.display(self.group));
        if self.x_zp != 0 {
            w.attr("x_zp", |w| w.display(self.x_zp));
        }
    }
}

impl Conv {
    /// Reads `{strides, pads, dilations, group, x_zp}` (`x_zp` 0 when absent).
    pub(crate) fn parse_attrs(p: &mut Parser) -> Result<Self, ParseError> {
        Ok(Conv {
            strides: p.attr("strides", Parser::dims)?,
            pads: p.attr("pads", Parser::dims)?,
            dilations: p.attr("dilations", Parser::dims)?,
            group: p.attr("group", Parser::usize)?,
            x_zp: p.opt_attr("x_zp", Parser::i64)?.unwrap_or(0),
        })
    }
}

impl QuantizeRule for Conv {
    fn quantize<C: QuantizeCx>(&self, graph: &Graph, v: ValueId, cx: &mut C) -> Result<Lowered<ValueId>, C::Error> {
        quantize_linear(graph, v, cx, false, |x_zp| Op::Conv(Conv { x_zp, ..self.clone() }))
    }
    fn table_noise(&self) -> TableNoise {
        TableNoise::Untracked
    }
    fn weight_channels(&self, _: usize) -> Option<Channels> {
        Some(Channels { weights: 0, output: 1 })
    }
}

impl FheRule for Conv {
    fn fhe_lowering(&self) -> FheLowering<'_> {
        FheLowering::Levelled
    }
}

impl MpcRule for Conv {
    fn lower_mpc<C: MpcCx>(&self, graph: &Graph, v: ValueId, cx: &mut C) -> Result<Lowered<Reg>, C::Error> {
        let node = graph.node(v);
        let geometry =
            self.geometry(&graph.ty(node.inputs[0]).shape, &graph.ty(node.inputs[1]).shape).expect("conv verified");
        lower_linear(graph, v, cx, |x, w, b, out| StepOp::Conv { x, w, b, geometry, out })
    }
    fn min_frac_bits(&self) -> u32 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn conv(pads: [usize; 4], x_zp: i64) -> Conv {
        Conv { strides: vec![1, 1], pads: pads.to_vec(), dilations: vec![1, 1], group: 1, x_zp }
    }

    #[test]
    fn padded_conv_matches_hand_computation() {
        let x = array![[[[1.0f32, 2.0], [3.0, 4.0]]]].into_dyn();
        let w = array![[[[1.0f32, 1.0], [1.0, 1.0]]]].into_dyn();
        let y = conv([1, 1, 0, 0], 0).eval(&[&Tensor::F32(x), &Tensor::F32(w)]);
        assert_eq!(y.as_f32().unwrap(), &array![[[[1.0f32, 3.0], [4.0, 10.0]]]].into_dyn());
    }

    #[test]
    fn integer_conv_subtracts_zero_point_and_pads_with_it() {
        // x - 5 = [[-4, -3], [-2, -1]]; padding contributes 0 as a float 0 would.
        let x = array![[[[1i64, 2], [3, 4]]]].into_dyn();
        let w = array![[[[1i64, 1], [1, 1]]]].into_dyn();
        let y = conv([1, 1, 0, 0], 5).eval(&[&Tensor::I64(x), &Tensor::I64(w)]);
        assert_eq!(y.as_i64().unwrap(), &array![[[[-4i64, -7], [-6, -10]]]].into_dyn());
    }
}
