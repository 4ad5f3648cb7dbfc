//! Weights of every magnitude (zeros, float32 denormals such as a dead ReLU unit's,
//! tiny, ordinary, huge) never make the compiler panic: a seeded loop over random
//! two-layer MLPs. A channel whose weights are tiny next to its bias once got a weight
//! scale so fine that the bias overflowed its accumulator (and, in release builds,
//! `fuse_lut::tabulate` aborted with "capacity overflow").

use secc_compiler::pipeline::{compile_float, Options};
use secc_compiler::CompileError;
use secc_ir::ops::{Input, MatMul, Unary, UnaryKind};
use secc_ir::{Graph, Op, Shape, Tensor, TensorType};

/// xorshift64*: a seeded stream, so a failing case reproduces from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
    fn pick(&mut self, xs: &[f32]) -> f32 {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

/// Weight magnitudes: zeros, float32 denormals (the smallest, a dead unit's), the
/// smallest normal, tiny, ordinary and huge.
const MAGNITUDES: [f32; 10] = [0.0, 1.4e-45, 1e-41, 1e-39, f32::MIN_POSITIVE, 1e-20, 1e-3, 1.0, 1e4, 1e15];

/// `[k, n]` weights, each output column with a magnitude of its own (per-channel
/// scales are where a near-zero scale once overflowed the bias).
fn weights(rng: &mut Rng, k: usize, n: usize) -> Tensor {
    let mags: Vec<f32> = (0..n).map(|_| rng.pick(&MAGNITUDES)).collect();
    let w = ndarray::Array2::from_shape_fn((k, n), |(_, j)| mags[j] * (2.0 * rng.unit() - 1.0));
    Tensor::F32(w.into_dyn())
}

fn bias(rng: &mut Rng, n: usize) -> Tensor {
    Tensor::F32(ndarray::Array1::from_shape_fn(n, |_| rng.pick(&MAGNITUDES) * (2.0 * rng.unit() - 1.0)).into_dyn())
}

/// A two-layer ReLU MLP with random weights compiles, or is refused with an error
/// because its float values overflow; it never panics, and what compiles simulates.
#[test]
fn random_weights_with_denormals_zeros_and_huge_values_never_panic() {
    for seed in 1..=150u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut g = Graph::new("mlp");
        let x = g.push(Op::Input(Input { index: 0, ty: TensorType::f32(Shape(vec![1, 5])) }), vec![], "x").unwrap();
        let (w1, b1) = (g.push_const(weights(&mut rng, 5, 6), None, "w1"), g.push_const(bias(&mut rng, 6), None, "b1"));
        let h = g.push(Op::MatMul(MatMul { x_zp: 0 }), vec![x, w1, b1], "fc1").unwrap();
        let r = g.push(Op::Unary(Unary { kind: UnaryKind::Relu }), vec![h], "relu").unwrap();
        let (w2, b2) = (g.push_const(weights(&mut rng, 6, 2), None, "w2"), g.push_const(bias(&mut rng, 2), None, "b2"));
        let y = g.push(Op::MatMul(MatMul { x_zp: 0 }), vec![r, w2, b2], "fc2").unwrap();
        g.outputs.push(y);
        let samples: Vec<Vec<Tensor>> = (0..12)
            .map(|_| {
                let v = ndarray::Array2::from_shape_fn((1, 5), |_| 4.0 * rng.unit() - 2.0);
                vec![Tensor::F32(v.into_dyn())]
            })
            .collect();
        match compile_float(g, &samples, &Options::default()) {
            Ok(c) => {
                for s in &samples {
                    let out = secc_ir::interp::run_graph(c.quantized.as_ref().unwrap(), s).unwrap();
                    assert!(out[0].to_f64_vec().iter().all(|v| v.is_finite()), "seed {seed}");
                }
            }
            Err(CompileError::Calibration(m)) => assert!(m.contains("non-finite"), "seed {seed}: {m}"),
            Err(e) => panic!("seed {seed}: {e}"),
        }
    }
}
