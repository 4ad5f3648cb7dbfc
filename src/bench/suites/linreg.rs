//! Linear regression `y = x · w + b` by number of features: under TFHE a levelled sum
//! (no bootstrap), under SMPC a constant number of rounds whatever the features.

use super::{row_shape, Rng, Scale, Workload};
use secc_compiler::passes::quantize::QuantConfig;
use secc_ir::ops::{Input, MatMul};
use secc_ir::{Graph, Op, TensorType};

/// One row per number of features.
pub fn workloads(scale: Scale) -> Vec<Workload> {
    let features: &[usize] = match scale {
        Scale::Smoke => &[2],
        Scale::Quick => &[2, 8, 32, 128],
        Scale::Full => &[2, 4, 8, 16, 32, 64, 128],
    };
    features.iter().map(|&f| workload(f)).collect()
}

fn workload(f: usize) -> Workload {
    let mut rng = Rng::new(1000 + f as u64);
    let mut g = Graph::new(format!("linreg_{f}"));
    let x = g.push(Op::Input(Input { index: 0, ty: TensorType::f32(row_shape(f)) }), vec![], "x").expect("input");
    let w = g.push_const(super::tensor(&[f, 1], rng.uniform(f, -2.0, 2.0)), None, "w");
    let b = g.push_const(super::tensor(&[1], vec![0.5]), None, "b");
    let y = g.push(Op::MatMul(MatMul { x_zp: 0 }), vec![x, w, b], "linreg").expect("matmul");
    g.outputs.push(y);
    Workload {
        suite: "linreg",
        name: format!("linear regression, {f} features"),
        x: f.to_string(),
        graph: g,
        calib: rng.samples(64, &[1, f], -1.0, 1.0),
        samples: rng.samples(20, &[1, f], -1.0, 1.0),
        quant: QuantConfig::default(),
    }
}
