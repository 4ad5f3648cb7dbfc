//! `x · W` with `x[1, n]` encrypted or shared and `W[n, n]` the model's: linear only, so
//! no bootstrap under TFHE and one round (plus truncation) under SMPC.

use super::{row_shape, Rng, Scale, Workload};
use secc_compiler::passes::quantize::QuantConfig;
use secc_ir::ops::{Input, MatMul};
use secc_ir::{Graph, Op, TensorType};

/// One row per size `n`.
pub fn workloads(scale: Scale) -> Vec<Workload> {
    let sizes: &[usize] = match scale {
        Scale::Smoke => &[4],
        Scale::Quick => &[4, 16, 64, 256],
        Scale::Full => &[4, 8, 16, 32, 64, 128, 256],
    };
    sizes.iter().map(|&n| workload(n)).collect()
}

/// `x[1, n] · W[n, n]`.
pub fn workload(n: usize) -> Workload {
    let mut rng = Rng::new(n as u64);
    let mut g = Graph::new(format!("matmul_{n}"));
    let x = g.push(Op::Input(Input { index: 0, ty: TensorType::f32(row_shape(n)) }), vec![], "x").expect("input");
    let scale = 1.0 / (n as f64).sqrt();
    let w = g.push_const(super::tensor(&[n, n], rng.uniform(n * n, -scale, scale)), None, "w");
    let y = g.push(Op::MatMul(MatMul { x_zp: 0 }), vec![x, w], "matmul").expect("matmul");
    g.outputs.push(y);
    Workload {
        suite: "matmul",
        name: format!("x·W, n={n}"),
        x: n.to_string(),
        graph: g,
        calib: rng.samples(64, &[1, n], -1.0, 1.0),
        samples: rng.samples(20, &[1, n], -1.0, 1.0),
        quant: QuantConfig::default(),
    }
}
