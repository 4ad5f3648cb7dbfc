//! The workloads of `secc bench`, one file per suite. Synthetic suites build float IR
//! graphs directly (seeded weights and data, no ONNX at bench time); model suites read
//! `testdata/models`.

mod activations;
mod linreg;
mod matmul;
mod models;

use ndarray::{ArrayD, IxDyn};
use secc_compiler::passes::quantize::QuantConfig;
use secc_ir::ops::{Input, MatMul};
use secc_ir::{Graph, Op, Shape, Tensor, TensorType};

/// How much of each suite runs, and how often.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scale {
    /// The smallest row of three suites, once each (the tests' end-to-end check)
    Smoke,
    /// Every suite at a few sizes, few repetitions: a few minutes
    Quick,
    /// Every suite at every size, more repetitions
    Full,
}

/// The suites, in the order they run.
pub const SUITES: &[&str] = &["matmul", "activations", "linreg", "forest", "dense", "cnn"];

/// One benchmark row: a float model, its calibration set and the samples it runs on.
pub struct Workload {
    /// The suite it belongs to.
    pub suite: &'static str,
    /// Its name in the table.
    pub name: String,
    /// Its place on the suite's chart (a size, an activation, a model).
    pub x: String,
    /// The float IR.
    pub graph: Graph,
    /// Calibration samples.
    pub calib: Vec<Vec<Tensor>>,
    /// Samples to time and to check accuracy on.
    pub samples: Vec<Vec<Tensor>>,
    /// Quantizer settings.
    pub quant: QuantConfig,
}

/// A row that could not even be built (a model missing, an op not imported).
pub struct Unbuilt {
    /// The suite.
    pub suite: &'static str,
    /// The row's name.
    pub name: String,
    /// Why.
    pub reason: String,
}

/// The rows of `suites` at `scale`.
pub fn workloads(scale: Scale, suites: &[&str]) -> Vec<Result<Workload, Unbuilt>> {
    let mut rows = Vec::new();
    for &suite in SUITES.iter().filter(|s| suites.contains(s)) {
        match suite {
            "matmul" => rows.extend(matmul::workloads(scale).into_iter().map(Ok)),
            "activations" => rows.extend(activations::workloads(scale).into_iter().map(Ok)),
            "linreg" => rows.extend(linreg::workloads(scale).into_iter().map(Ok)),
            "forest" => rows.extend(models::forest(scale)),
            "dense" => rows.extend(models::dense(scale)),
            "cnn" => rows.extend(models::cnn(scale)),
            _ => unreachable!("SUITES lists every suite"),
        }
    }
    rows
}

pub use activations::workload as activation;
pub use matmul::workload as matmul;

/// `x[1, k] · W[k, n] (+ b)`: weights uniform in `[-w, w)`, inputs (calibration and
/// measured samples) uniform in `[-1, 1)`, all from the stream `seed`.
#[allow(clippy::too_many_arguments)]
fn linear(
    suite: &'static str,
    name: String,
    x: String,
    seed: u64,
    k: usize,
    n: usize,
    w: f64,
    bias: Option<f32>,
) -> Workload {
    let mut rng = Rng::new(seed);
    let mut g = Graph::new(format!("{suite}_{x}"));
    let input =
        g.push(Op::Input(Input { index: 0, ty: TensorType::f32(Shape(vec![1, k])) }), vec![], "x").expect("input");
    let mut operands = vec![input, g.push_const(tensor(&[k, n], rng.uniform(k * n, -w, w)), None, "w")];
    operands.extend(bias.map(|b| g.push_const(tensor(&[n], vec![b; n]), None, "b")));
    let y = g.push(Op::MatMul(MatMul { x_zp: 0 }), operands, suite).expect("matmul");
    g.outputs.push(y);
    Workload {
        suite,
        name,
        x,
        graph: g,
        calib: rng.samples(64, &[1, k], -1.0, 1.0),
        samples: rng.samples(20, &[1, k], -1.0, 1.0),
        quant: QuantConfig::default(),
    }
}

/// Uniform numbers in `[lo, hi)` from a fixed xorshift stream: the same weights and
/// data on every run and machine.
pub struct Rng(u64);

impl Rng {
    /// A stream for `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(0x9e37_79b9_7f4a_7c15 ^ seed.wrapping_mul(0x2545_f491_4f6c_dd1d))
    }

    /// `n` numbers uniform in `[lo, hi)`.
    pub fn uniform(&mut self, n: usize, lo: f64, hi: f64) -> Vec<f32> {
        (0..n)
            .map(|_| {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                (lo + (hi - lo) * (self.0 >> 11) as f64 / (1u64 << 53) as f64) as f32
            })
            .collect()
    }

    /// `count` samples of shape `shape`, uniform in `[lo, hi)`.
    pub fn samples(&mut self, count: usize, shape: &[usize], lo: f64, hi: f64) -> Vec<Vec<Tensor>> {
        let n = shape.iter().product();
        (0..count).map(|_| vec![tensor(shape, self.uniform(n, lo, hi))]).collect()
    }
}

/// A float tensor of `shape`.
pub fn tensor(shape: &[usize], data: Vec<f32>) -> Tensor {
    Tensor::F32(ArrayD::from_shape_vec(IxDyn(shape), data).expect("data fills the shape"))
}
