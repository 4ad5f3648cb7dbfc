//! Pooling over 2-D windows of NCHW tensors.
//!
//! - `max_pool`: `y = max` over the window's in-image taps (floats and integers;
//!   the integer range and quantization are the input's).
//! - `avg_pool` (float): the window sum divided by the window size
//!   (`count_include_pad=1`) or by the number of in-image taps.
//! - `sum_pool` (integer): `y = Σ (x − x_zp)` over in-image taps, the exact quantized
//!   form of `avg_pool` with `count_include_pad=1`: it stands for `s_x / (kh·kw) · y`.

use super::{expect_arity, write_usizes, OpClass, OpSpec, Operand};
use crate::tensor::Tensor;
use crate::types::{Quant, Shape, TensorType};
use ndarray::{ArrayD, IxDyn};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A pooling window: kernel, strides and ONNX-order padding (top, left, bottom, right).
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Window {
    /// Kernel size (kh, kw).
    pub kernel: Vec<usize>,
    /// Strides (sh, sw).
    pub strides: Vec<usize>,
    /// Padding (top, left, bottom, right).
    pub pads: Vec<usize>,
}

impl Window {
    /// Output shape for an NCHW input.
    pub fn output_shape(&self, x: &Shape) -> Result<Shape, String> {
        if x.rank() != 4 || self.kernel.len() != 2 || self.strides.len() != 2 || self.pads.len() != 4 {
            return Err(format!("only 2-D pooling of NCHW tensors is supported, got input {x}"));
        }
        // Checked: the attributes may come from a crafted file.
        let out = |size: usize, pads: [usize; 2], k: usize, s: usize| {
            let padded = size.checked_add(pads[0])?.checked_add(pads[1])?;
            (padded >= k && k > 0 && s > 0).then(|| (padded - k) / s + 1)
        };
        match (
            out(x.0[2], [self.pads[0], self.pads[2]], self.kernel[0], self.strides[0]),
            out(x.0[3], [self.pads[1], self.pads[3]], self.kernel[1], self.strides[1]),
        ) {
            (Some(oh), Some(ow)) => Ok(Shape(vec![x.0[0], x.0[1], oh, ow])),
            _ => Err(format!("window {:?} does not fit input {x}", self.kernel)),
        }
    }

    /// Number of taps in a window.
    pub fn size(&self) -> usize {
        self.kernel.iter().product()
    }

    fn has_padding(&self) -> bool {
        self.pads.iter().any(|&p| p > 0)
    }

    /// Applies `reduce` to each window's in-image taps.
    pub fn apply<T: Copy + Default, U: Default + Clone>(&self, x: &ArrayD<T>, reduce: impl Fn(&[T]) -> U) -> ArrayD<U> {
        let out = self.output_shape(&Shape(x.shape().to_vec())).expect("pool operands verified");
        let (h, w) = (x.shape()[2] as isize, x.shape()[3] as isize);
        let mut y = ArrayD::<U>::default(IxDyn(&out.0));
        let mut taps = Vec::with_capacity(self.size());
        for ((n, c, i, j), slot) in y.indexed_iter_mut().map(|(ix, s)| ((ix[0], ix[1], ix[2], ix[3]), s)) {
            taps.clear();
            for k in 0..self.kernel[0] {
                let r = (i * self.strides[0] + k) as isize - self.pads[0] as isize;
                for l in 0..self.kernel[1] {
                    let s = (j * self.strides[1] + l) as isize - self.pads[1] as isize;
                    if (0..h).contains(&r) && (0..w).contains(&s) {
                        taps.push(x[[n, c, r as usize, s as usize]]);
                    }
                }
            }
            *slot = reduce(&taps);
        }
        y
    }

    fn write(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_usizes(f, "kernel", &self.kernel)?;
        write!(f, ", ")?;
        write_usizes(f, "strides", &self.strides)?;
        write!(f, ", ")?;
        write_usizes(f, "pads", &self.pads)
    }
}

/// Max pooling.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct MaxPool {
    /// The window.
    pub window: Window,
}

impl OpSpec for MaxPool {
    fn mnemonic(&self) -> &'static str {
        "max_pool"
    }
    fn class(&self) -> OpClass {
        OpClass::Comparison
    }
    fn infer(&self, inputs: &[Operand]) -> Result<TensorType, String> {
        expect_arity(inputs, 1..=1)?;
        Ok(TensorType { elem: inputs[0].ty.elem.clone(), shape: self.window.output_shape(&inputs[0].ty.shape)? })
    }
    fn eval(&self, inputs: &[&Tensor]) -> Tensor {
        match inputs[0] {
            Tensor::F32(x) => {
                Tensor::F32(self.window.apply(x, |t| t.iter().copied().fold(f32::NEG_INFINITY, f32::max)))
            }
            Tensor::I64(x) => Tensor::I64(self.window.apply(x, |t| t.iter().copied().max().expect("non-empty window"))),
        }
    }
    fn write_attrs(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.window.write(f)
    }
}

/// Float average pooling.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct AvgPool {
    /// The window.
    pub window: Window,
    /// Divide by the full window size (true) or by the in-image taps (false).
    pub count_include_pad: bool,
}

impl OpSpec for AvgPool {
    fn mnemonic(&self) -> &'static str {
        "avg_pool"
    }
    fn class(&self) -> OpClass {
        OpClass::Linear
    }
    fn infer(&self, inputs: &[Operand]) -> Result<TensorType, String> {
        expect_arity(inputs, 1..=1)?;
        if !inputs[0].ty.is_float() {
            return Err("is a float op; its integer form is sum_pool".into());
        }
        Ok(TensorType::f32(self.window.output_shape(&inputs[0].ty.shape)?))
    }
    fn eval(&self, inputs: &[&Tensor]) -> Tensor {
        let x = inputs[0].as_f32().expect("float operand verified");
        let full = self.window.size() as f32;
        Tensor::F32(self.window.apply(x, |t| {
            let d = if self.count_include_pad { full } else { t.len() as f32 };
            t.iter().sum::<f32>() / d
        }))
    }
    fn write_attrs(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.window.write(f)?;
        write!(f, ", count_include_pad={}", self.count_include_pad as u8)
    }
}

/// Integer sum pooling of `x − x_zp`.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct SumPool {
    /// The window.
    pub window: Window,
    /// Zero point subtracted from every tap.
    pub x_zp: i64,
}

impl OpSpec for SumPool {
    fn mnemonic(&self) -> &'static str {
        "sum_pool"
    }
    fn class(&self) -> OpClass {
        OpClass::Linear
    }
    fn infer(&self, inputs: &[Operand]) -> Result<TensorType, String> {
        expect_arity(inputs, 1..=1)?;
        let Some(xi) = inputs[0].ty.as_int() else {
            return Err("is an integer op; its float form is avg_pool".into());
        };
        let shape = self.window.output_shape(&inputs[0].ty.shape)?;
        let (lo, hi) = super::minus_zero_point(xi.lo, xi.hi, self.x_zp)?;
        let (lo, hi) = if self.window.has_padding() { (lo.min(0), hi.max(0)) } else { (lo, hi) };
        let taps = self.window.kernel[0].checked_mul(self.window.kernel[1]).and_then(|k| i64::try_from(k).ok());
        let (Some(k), Some((lo, hi))) = (taps, taps.and_then(|k| Some((k.checked_mul(lo)?, k.checked_mul(hi)?))))
        else {
            return Err(format!("window {:?} sums beyond 64 bits", self.window.kernel));
        };
        let quant = xi.quant.as_ref().map(|q| Quant {
            axis: q.axis,
            scale: q.scale.iter().map(|s| s / k as f64).collect(),
            zero_point: vec![0; q.scale.len()],
        });
        Ok(TensorType::int(shape, k * lo, k * hi, quant))
    }
    fn eval(&self, inputs: &[&Tensor]) -> Tensor {
        let x = inputs[0].as_i64().expect("integer operand verified");
        Tensor::I64(self.window.apply(x, |t| t.iter().map(|v| v - self.x_zp).sum()))
    }
    fn write_attrs(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.window.write(f)?;
        write!(f, ", x_zp={}", self.x_zp)
    }
}
