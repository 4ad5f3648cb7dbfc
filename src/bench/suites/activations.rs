//! One activation over 100 values: under TFHE one bootstrap each (the table runs on the
//! server: `output_tables`), under SMPC a comparison (ReLU) or a piecewise polynomial
//! fitted on the calibrated range (GELU, sigmoid).

use super::{Rng, Scale, Workload};
use secc_compiler::passes::quantize::QuantConfig;
use secc_ir::ops::{Input, Unary, UnaryKind};
use secc_ir::{Graph, Op, Shape, TensorType};

/// ReLU, GELU and sigmoid over 100 values (8 in the smoke suite, ReLU only).
pub fn workloads(scale: Scale) -> Vec<Workload> {
    use UnaryKind::{Gelu, Relu, Sigmoid};
    match scale {
        Scale::Smoke => vec![workload(Relu, 8, (-4.0, 4.0))],
        Scale::Quick | Scale::Full => vec![
            workload(Relu, 100, (-4.0, 4.0)),
            workload(Gelu, 100, (-5.0, 5.0)),
            workload(Sigmoid, 100, (-8.0, 8.0)),
        ],
    }
}

/// `kind` over `n` values, calibrated and sampled uniform in `[lo, hi]`.
pub fn workload(kind: UnaryKind, n: usize, (lo, hi): (f64, f64)) -> Workload {
    let mut rng = Rng::new(2000 + n as u64);
    let mut g = Graph::new(format!("{}_{n}", kind.mnemonic()));
    let x = g.push(Op::Input(Input { index: 0, ty: TensorType::f32(Shape(vec![1, n])) }), vec![], "x").expect("input");
    let y = g.push(Op::Unary(Unary { kind }), vec![x], kind.mnemonic()).expect("activation");
    g.outputs.push(y);
    Workload {
        suite: "activations",
        name: format!("{n} × {}", kind.mnemonic()),
        x: kind.mnemonic().to_string(),
        graph: g,
        calib: rng.samples(64, &[1, n], lo, hi),
        samples: rng.samples(20, &[1, n], lo, hi),
        quant: QuantConfig { output_tables: true, ..QuantConfig::default() },
    }
}
