//! int8 QDQ models from onnxruntime's `quantize_static` (testdata/make_qdq_models.py):
//! the float IR is the QDQ model's float meaning (every QuantizeLinear → DequantizeLinear
//! pair a `fake_quant`), checked against onnxruntime run with graph optimizations off
//! (`expected.csv`: it evaluates Q and DQ as written); the quantized IR takes the
//! model's own grids; SMPC runs the float meaning (clamps exact, rounding skipped);
//! TFHE equals the simulation.

mod common;

use common::*;
use secc_compiler::passes::quantize::QuantConfig;
use secc_compiler::pipeline::import_float;
use secc_ir::{Op, OpSpec};
use std::time::Duration;

const QDQ: &[&str] = &["qdq_dense_s8", "qdq_dense_s8_pc", "qdq_dense_u8", "qdq_cnn_s8_pc"];

fn outputs(g: &secc_ir::Graph, xs: &[Vec<secc_ir::Tensor>]) -> Vec<Vec<f64>> {
    xs.iter().map(|x| secc_ir::interp::run_graph(g, x).unwrap()[0].to_f64_vec()).collect()
}

#[test]
fn float_ir_is_the_qdq_models_meaning() {
    for name in QDQ {
        let g = import_float(&model_dir(name).join("model.onnx")).unwrap();
        let fakes = g.nodes.iter().filter(|n| matches!(n.op, Op::FakeQuant(_))).count();
        // Input, each hidden layer's output (its ReLU folded into the clamp), the logits.
        assert!(fakes >= 4, "{name}: {fakes} fake_quant nodes");
        assert!(!g.nodes.iter().any(|n| n.op.mnemonic() == "relu"), "{name}: the quantizer removed the ReLUs");
        let xs = samples(&g, name, "test.csv");
        let expected = rows(name, "expected.csv", 10);
        let mut worst = 0f64;
        for (y, want) in outputs(&g, &xs).iter().zip(&expected) {
            for (a, b) in y.iter().zip(want) {
                worst = worst.max((a - *b as f64).abs() / a.abs().max(1.0));
            }
        }
        eprintln!("{name}: float IR vs onnxruntime (ORT_DISABLE_ALL): {worst:e}");
        assert!(worst <= 1e-4, "{name}: float IR differs from onnxruntime by {worst}");
        let acc = metric("classification", &outputs(&g, &xs), &labels(name));
        assert!((acc - meta(name).float_metric).abs() < 1e-9, "{name}: accuracy {acc}");
    }
}

#[test]
fn quantized_ir_takes_the_models_grids_and_keeps_accuracy() {
    for name in QDQ {
        let (c, _) = compile(name, &QuantConfig::default());
        let xs = samples(&c.float, name, "test.csv");
        let labels = labels(name);
        let (f, q) = (outputs(&c.float, &xs), outputs(&c.quantized, &xs));
        let (fa, qa) = (metric("classification", &f, &labels), metric("classification", &q, &labels));
        eprintln!("{name}: accuracy float {fa:.4}, simulation {qa:.4}");
        assert!(qa >= fa - 0.01, "{name}: simulated accuracy {qa} more than 1 point below float {fa}");
        // The client quantizes the input onto the model's input grid, and every table
        // of the model's fake-quantizations writes onto its grid.
        let grids: Vec<_> = c
            .float
            .nodes
            .iter()
            .filter_map(|n| match &n.op {
                Op::FakeQuant(fq) => Some(fq.quant.clone()),
                _ => None,
            })
            .collect();
        let input_q = c.quantized.nodes.iter().find(|n| matches!(n.op, Op::Quantize(_))).unwrap();
        assert_eq!(input_q.ty.as_int().unwrap().quant.as_ref(), Some(&grids[0]), "{name}: input grid");
        for n in c.quantized.nodes.iter().filter(|n| matches!(n.op, Op::Lut(_))) {
            let quant = n.ty.as_int().unwrap().quant.as_ref().unwrap();
            assert!(grids.contains(quant), "{name}: table {} writes onto {quant}, not a model grid", n.name);
        }
    }
}

#[test]
fn smpc_runs_the_float_meaning() {
    for name in QDQ {
        let (g, plan) = mpc_plan(name);
        let xs = samples(&g, name, "test.csv");
        let xs = &xs[..4];
        let flat: Vec<Vec<f32>> = xs.iter().map(|s| s[0].as_f32().unwrap().iter().copied().collect()).collect();
        let reports = secc_runtime::mpc::session::run_local(&plan, &flat, Duration::from_secs(60), 1).unwrap();
        let got = reports[plan.roles.receiver].outputs.as_ref().unwrap();
        for (want, y) in outputs(&g, xs).iter().zip(got) {
            let y: Vec<f64> = y.iter().map(|&v| v as f64).collect();
            assert_eq!(argmax(&y), argmax(want), "{name}: argmax differs: {y:?} vs {want:?}");
        }
    }
}
