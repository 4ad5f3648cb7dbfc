//! Tensor data: the payload of constants and the values executors pass around.

use crate::text::{print_inline, ParseError, Parser, Printer};
use crate::types::Shape;
use ndarray::{ArrayD, IxDyn};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A dense tensor of floats (float IR) or exact integers (quantized IR).
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub enum Tensor {
    /// 32-bit floats.
    F32(ArrayD<f32>),
    /// Integers; i64 holds every accumulator the range analysis admits.
    I64(ArrayD<i64>),
}

impl Tensor {
    /// The tensor's shape.
    pub fn shape(&self) -> Shape {
        Shape(match self {
            Tensor::F32(a) => a.shape().to_vec(),
            Tensor::I64(a) => a.shape().to_vec(),
        })
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        match self {
            Tensor::F32(a) => a.len(),
            Tensor::I64(a) => a.len(),
        }
    }

    /// The float array, or `None` for an integer tensor.
    pub fn as_f32(&self) -> Option<&ArrayD<f32>> {
        match self {
            Tensor::F32(a) => Some(a),
            Tensor::I64(_) => None,
        }
    }

    /// The integer array, or `None` for a float tensor.
    pub fn as_i64(&self) -> Option<&ArrayD<i64>> {
        match self {
            Tensor::I64(a) => Some(a),
            Tensor::F32(_) => None,
        }
    }

    /// Elements widened to f64, in C order.
    pub fn to_f64_vec(&self) -> Vec<f64> {
        match self {
            Tensor::F32(a) => a.iter().map(|&x| x as f64).collect(),
            Tensor::I64(a) => a.iter().map(|&x| x as f64).collect(),
        }
    }

    /// Prints `f32[shape] [elements in C order]` (`i64` for integers).
    pub(crate) fn print(&self, w: &mut Printer) {
        match self {
            Tensor::F32(a) => {
                w.text("f32");
                w.dims(a.shape());
                w.text(" ");
                w.list(a.iter(), |w, x| w.f32(*x));
            }
            Tensor::I64(a) => {
                w.text("i64");
                w.dims(a.shape());
                w.text(" ");
                w.list(a.iter(), |w, x| w.display(x));
            }
        }
    }

    /// Reads what [`Tensor::print`] writes.
    pub(crate) fn parse(p: &mut Parser) -> Result<Tensor, ParseError> {
        let float = p.one_of(&["f32", "i64"])? == 0;
        let shape = p.dims()?;
        let here = p.error("");
        let numel = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        let mismatch = |len: usize| ParseError {
            message: format!("{len} elements for shape {}", Shape(shape.clone())),
            ..here.clone()
        };
        let dim = IxDyn(&shape);
        if float {
            let v = p.list(Parser::f32)?;
            if numel != Some(v.len()) {
                return Err(mismatch(v.len()));
            }
            ArrayD::from_shape_vec(dim, v).map(Tensor::F32).map_err(|_| mismatch(numel.unwrap_or(0)))
        } else {
            let v = p.list(Parser::i64)?;
            if numel != Some(v.len()) {
                return Err(mismatch(v.len()));
            }
            ArrayD::from_shape_vec(dim, v).map(Tensor::I64).map_err(|_| mismatch(numel.unwrap_or(0)))
        }
    }
}

/// The text form, every list inline.
impl fmt::Display for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&print_inline(|w| self.print(w)))
    }
}
