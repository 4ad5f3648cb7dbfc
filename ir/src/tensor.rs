//! Tensor data: the payload of constants and the values executors pass around.

use crate::types::{fmt_f64, Shape};
use ndarray::ArrayD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
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

    /// A short content digest (first 8 hex digits of SHA-256 over shape and data),
    /// which names large constants in the text form.
    pub fn digest(&self) -> String {
        let mut h = Sha256::new();
        for d in self.shape().0 {
            h.update((d as u64).to_le_bytes());
        }
        match self {
            Tensor::F32(a) => a.iter().for_each(|x| h.update(x.to_bits().to_le_bytes())),
            Tensor::I64(a) => a.iter().for_each(|x| h.update(x.to_le_bytes())),
        }
        h.finalize()[..4].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Prints small tensors inline (`[0.5, -1]`) and large ones by digest (`#3fa2c1d0`).
impl fmt::Display for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.numel() > 4 {
            return write!(f, "#{}", self.digest());
        }
        let items: Vec<String> = match self {
            Tensor::F32(a) => a.iter().map(|&x| fmt_f64(x as f64)).collect(),
            Tensor::I64(a) => a.iter().map(|x| x.to_string()).collect(),
        };
        write!(f, "[{}]", items.join(", "))
    }
}
