//! `conv %x, %w[, %b]`: 2-D convolution, NCHW input, OIHW weights (ONNX `Conv`).
//!
//! Semantics, floats and integers alike:
//! `y[n,o,i,j] = b[o] + Σ_{c,k,l} w[o,c,k,l] · (x[n, g·C/G + c, i·sh + k·dh − pt, j·sw + l·dw − pl] − x_zp)`
//! where out-of-image taps contribute 0 and `g` is the group of output channel `o`.
//! `x_zp` is 0 in the float IR; in the quantized IR it is the input's zero point, so the
//! accumulator is exact and stands for `s_x · s_w[o] · y` (see [`super::linear_quant`]).
//! The weights and bias must be constants: range analysis sums, per output channel,
//! the interval of every tap `w · (x − x_zp)` (with 0 included where padding can occur).

use super::{
    common_is_float, eval_linear, expect_arity, linear_quant, linear_range, minus_zero_point, write_usizes,
    LinearKernel, OpClass, OpSpec, Operand,
};
use crate::tensor::Tensor;
use crate::types::{Shape, TensorType};
use ndarray::{ArrayD, IxDyn, LinalgScalar};
use serde::{Deserialize, Serialize};
use std::fmt;

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

struct Geometry {
    n: usize,
    h: usize,
    w: usize,
    o: usize,
    cg: usize,
    kh: usize,
    kw: usize,
    oh: usize,
    ow: usize,
}

impl Conv {
    fn geometry(&self, x: &Shape, w: &Shape) -> Result<Geometry, String> {
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
        Ok(Geometry { n, h, w: wd, o, cg, kh, kw, oh, ow })
    }

    fn has_padding(&self) -> bool {
        self.pads.iter().any(|&p| p > 0)
    }

    /// Input coordinate of output position `i`, tap `k` on axis `axis` (0 = rows), if inside.
    fn source(&self, axis: usize, i: usize, k: usize, size: usize) -> Option<usize> {
        let p = (i * self.strides[axis] + k * self.dilations[axis]) as isize - self.pads[axis] as isize;
        (0..size as isize).contains(&p).then_some(p as usize)
    }
}

impl LinearKernel for Conv {
    fn x_zp(&self) -> i64 {
        self.x_zp
    }

    fn run<T: LinalgScalar>(&self, x: &ArrayD<T>, w: &ArrayD<T>, b: Option<&ArrayD<T>>, zp: T) -> ArrayD<T> {
        let g = self.geometry(&Shape(x.shape().to_vec()), &Shape(w.shape().to_vec())).expect("conv operands verified");
        let per_group = g.o / self.group;
        let mut y = ArrayD::<T>::zeros(IxDyn(&[g.n, g.o, g.oh, g.ow]));
        for n in 0..g.n {
            for o in 0..g.o {
                let c0 = (o / per_group) * g.cg;
                let bias = b.map_or(T::zero(), |b| b[[o]]);
                for i in 0..g.oh {
                    for j in 0..g.ow {
                        let mut acc = bias;
                        for c in 0..g.cg {
                            for k in 0..g.kh {
                                let Some(r) = self.source(0, i, k, g.h) else { continue };
                                for l in 0..g.kw {
                                    let Some(s) = self.source(1, j, l, g.w) else { continue };
                                    acc = acc + w[[o, c, k, l]] * (x[[n, c0 + c, r, s]] - zp);
                                }
                            }
                        }
                        y[[n, o, i, j]] = acc;
                    }
                }
            }
        }
        y
    }
}

impl OpSpec for Conv {
    fn mnemonic(&self) -> &'static str {
        "conv"
    }
    fn class(&self) -> OpClass {
        OpClass::Linear
    }
    fn infer(&self, inputs: &[Operand]) -> Result<TensorType, String> {
        expect_arity(inputs, 2..=3)?;
        if self.strides.len() != 2 || self.dilations.len() != 2 || self.pads.len() != 4 {
            return Err("only 2-D convolutions are supported (strides, dilations: 2 values; pads: 4)".into());
        }
        let (x, w) = (inputs[0].ty, inputs[1].ty);
        let g = self.geometry(&x.shape, &w.shape)?;
        let out_shape = Shape(vec![g.n, g.o, g.oh, g.ow]);
        if let Some(b) = inputs.get(2) {
            if b.ty.shape.0 != [g.o] {
                return Err(format!("bias shape {} does not match {} output channels", b.ty.shape, g.o));
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
        Ok(TensorType::int(out_shape, lo, hi, linear_quant(x, w, 1)))
    }
    fn eval(&self, inputs: &[&Tensor]) -> Tensor {
        eval_linear(self, inputs)
    }
    fn write_attrs(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_usizes(f, "strides", &self.strides)?;
        write!(f, ", ")?;
        write_usizes(f, "pads", &self.pads)?;
        write!(f, ", ")?;
        write_usizes(f, "dilations", &self.dilations)?;
        write!(f, ", group={}", self.group)?;
        if self.x_zp != 0 {
            write!(f, ", x_zp={}", self.x_zp)?;
        }
        Ok(())
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
