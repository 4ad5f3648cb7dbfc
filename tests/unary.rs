//! Elementwise ops end to end: the torch activation models (testdata/models/torch_act*,
//! made by testdata/make_unary_models.py) against onnxruntime and on the simulation and
//! SMPC backends; and every univariate op's SMPC plan over a grid of its calibrated
//! range, held to the error bound the plan states (`secc inspect` prints it).

mod common;

use common::*;
use secc_ir::lowered::mpc::StepOp;
use secc_ir::ops::{Binary, BinaryKind, Input, Unary, UnaryKind};
use secc_ir::{Graph, Op, Shape, Tensor, TensorType, ValueId};
use std::time::Duration;

fn torch_act_models() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(model_dir(""))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("torch_act"))
        .collect();
    names.sort();
    assert!(names.len() >= 9, "{names:?}");
    names
}

/// The backends a model's meta.json says it must pass.
fn backends(name: &str) -> Vec<String> {
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(model_dir(name).join("meta.json")).unwrap()).unwrap();
    meta["backends"].as_array().unwrap().iter().map(|b| b.as_str().unwrap().to_string()).collect()
}

/// Float matches onnxruntime (1e-4, relative above 1); the simulation keeps the
/// accuracy within 5 points (where meta.json lists `sim`; 8-bit activations, tables
/// read at 5 bits); SMPC has float's argmax and
/// logits within 0.05.
#[test]
fn torch_activation_models_match_onnxruntime_and_run_on_sim_and_mpc() {
    for name in torch_act_models() {
        let (c, _) = compile(&name, &Default::default());
        let xs = samples(&c.float, &name, "test.csv");
        let expected = rows(&name, "expected.csv", 2);
        let mut sim_out = Vec::new();
        for (x, want) in xs.iter().zip(&expected) {
            let got = secc_ir::interp::run_graph(&c.float, x).unwrap()[0].to_f64_vec();
            for (g, &w) in got.iter().zip(want) {
                assert!(
                    (g - w as f64).abs() <= 1e-4 * (w.abs() as f64).max(1.0),
                    "{name}: float {g} vs onnxruntime {w}"
                );
            }
            sim_out.push(secc_ir::interp::run_graph(c.quantized.as_ref().unwrap(), x).unwrap()[0].to_f64_vec());
        }
        let float_acc = meta(&name).float_metric;
        let sim_acc = metric("classification", &sim_out, &labels(&name));
        println!("{name}: float accuracy {float_acc}, sim {sim_acc}");
        if backends(&name).iter().any(|b| b == "sim") {
            assert!(sim_acc >= float_acc - 0.05, "{name}: sim accuracy {sim_acc} vs float {float_acc}");
        }

        let plan = c.mpc.unwrap_or_else(|e| panic!("{name}: {e}"));
        let flat: Vec<Vec<f32>> = xs[..8].iter().map(|s| s[0].as_f32().unwrap().iter().copied().collect()).collect();
        let reports = secc_runtime::mpc::session::run_local(&plan, &flat, Duration::from_secs(60), 1).unwrap();
        for (x, y) in xs.iter().zip(reports[plan.roles.receiver].outputs.as_ref().unwrap()) {
            let want = secc_ir::interp::run_graph(&c.float, x).unwrap()[0].to_f64_vec();
            let y: Vec<f64> = y.iter().map(|&v| v as f64).collect();
            assert_eq!(argmax(&y), argmax(&want), "{name}: mpc {y:?} vs float {want:?}");
            let worst = y.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
            assert!(worst <= 0.05, "{name}: mpc logits off by {worst}");
        }
    }
}

/// One elementwise chain of `x`: a graph `x[1, N] → chain`.
struct Case {
    name: &'static str,
    range: (f32, f32),
    build: fn(&mut Graph, ValueId) -> ValueId,
}

fn unary(g: &mut Graph, x: ValueId, kind: UnaryKind) -> ValueId {
    g.push(Op::Unary(Unary { kind }), vec![x], kind.mnemonic()).unwrap()
}

fn with_const(g: &mut Graph, x: ValueId, kind: BinaryKind, c: f32) -> ValueId {
    let c = g.push_const(Tensor::F32(ndarray::arr0(c).into_dyn()), None, "c");
    g.push(Op::Binary(Binary { kind }), vec![x, c], kind.mnemonic()).unwrap()
}

const N: usize = 64;

/// Every unary kind at its defaults on a range where it is defined, plus the binary
/// ops with a constant and the chains ONNX ops become (Clip, PRelu).
fn cases() -> Vec<Case> {
    let mut cases: Vec<Case> = Vec::new();
    macro_rules! kind {
        ($name:literal, $lo:expr, $hi:expr, $kind:expr) => {
            cases.push(Case { name: $name, range: ($lo, $hi), build: |g, x| unary(g, x, $kind) })
        };
    }
    kind!("relu", -4.0, 4.0, UnaryKind::Relu);
    kind!("sigmoid", -8.0, 8.0, UnaryKind::Sigmoid);
    kind!("tanh", -4.0, 4.0, UnaryKind::Tanh);
    kind!("erf", -3.0, 3.0, UnaryKind::Erf);
    kind!("gelu", -5.0, 5.0, UnaryKind::Gelu);
    kind!("exp", -3.0, 3.0, UnaryKind::Exp);
    kind!("neg", -4.0, 4.0, UnaryKind::Neg);
    kind!("abs", -4.0, 4.0, UnaryKind::Abs);
    kind!("sqrt", 0.03, 2.55, UnaryKind::Sqrt);
    kind!("reciprocal", 0.5, 4.0, UnaryKind::Reciprocal);
    kind!("softplus", -6.0, 6.0, UnaryKind::Softplus);
    kind!("leaky_relu", -4.0, 4.0, UnaryKind::LeakyRelu { alpha: 0.1 });
    kind!("elu", -4.0, 4.0, UnaryKind::Elu { alpha: 0.8 });
    kind!("selu", -4.0, 4.0, UnaryKind::Selu { alpha: 1.673_263_2, gamma: 1.050_701 });
    kind!("celu", -4.0, 4.0, UnaryKind::Celu { alpha: 1.5 });
    kind!("hard_sigmoid", -5.0, 5.0, UnaryKind::HardSigmoid { alpha: 0.2, beta: 0.5 });
    kind!("hard_swish", -5.0, 5.0, UnaryKind::HardSwish);
    kind!("log", 0.1, 5.0, UnaryKind::Log);
    kind!("mish", -5.0, 5.0, UnaryKind::Mish);
    kind!("gelu_tanh", -5.0, 5.0, UnaryKind::GeluTanh);
    kind!("silu", -6.0, 6.0, UnaryKind::Silu);
    cases.push(Case {
        name: "clip(-1, 2)",
        range: (-4.0, 4.0),
        build: |g, x| {
            let lo = with_const(g, x, BinaryKind::Max, -1.0);
            with_const(g, lo, BinaryKind::Min, 2.0)
        },
    });
    cases.push(Case { name: "max(x, 0.5)", range: (-4.0, 4.0), build: |g, x| with_const(g, x, BinaryKind::Max, 0.5) });
    cases.push(Case {
        name: "min(x, -0.5)",
        range: (-4.0, 4.0),
        build: |g, x| with_const(g, x, BinaryKind::Min, -0.5),
    });
    cases.push(Case { name: "pow(x, 2)", range: (-3.0, 3.0), build: |g, x| with_const(g, x, BinaryKind::Pow, 2.0) });
    cases.push(Case { name: "pow(x, 3)", range: (-2.0, 2.0), build: |g, x| with_const(g, x, BinaryKind::Pow, 3.0) });
    cases.push(Case {
        name: "3x - 1",
        range: (-4.0, 4.0),
        build: |g, x| {
            let m = with_const(g, x, BinaryKind::Mul, 3.0);
            with_const(g, m, BinaryKind::Sub, 1.0)
        },
    });
    cases.push(Case {
        name: "prelu(0.25)",
        range: (-4.0, 4.0),
        build: |g, x| {
            let pos = unary(g, x, UnaryKind::Relu);
            let neg = with_const(g, x, BinaryKind::Min, 0.0);
            let scaled = with_const(g, neg, BinaryKind::Mul, 0.25);
            g.push(Op::Binary(Binary { kind: BinaryKind::Add }), vec![pos, scaled], "add").unwrap()
        },
    });
    cases
}

fn row(lo: f32, hi: f32, offset: f32) -> Tensor {
    let v = ndarray::Array2::from_shape_fn((1, N), |(_, i)| lo + (hi - lo) * ((i as f32 + offset) / N as f32).min(1.0));
    Tensor::F32(v.into_dyn())
}

/// Each case compiles to one SMPC step (the comparison protocol, exact pieces or a fit)
/// whose stated bound holds on 4·64 points spread over the calibrated range. Prints the
/// table of measured and stated errors (`cargo test --test unary -- --nocapture`).
#[test]
fn every_elementwise_op_meets_its_stated_smpc_bound_on_a_grid() {
    let mut table = vec!["| op | range | step | pieces | stated bound | measured max error |".to_string()];
    table.push("|---|---|---|---|---|---|".into());
    for case in cases() {
        let mut g = Graph::new(case.name);
        let x = g.push(Op::Input(Input { index: 0, ty: TensorType::f32(Shape(vec![1, N])) }), vec![], "x").unwrap();
        let y = (case.build)(&mut g, x);
        g.outputs.push(y);
        let (lo, hi) = case.range;
        let calib: Vec<Vec<Tensor>> = (0..4).map(|k| vec![row(lo, hi, k as f32 / 4.0)]).collect();
        let opts = secc_compiler::pipeline::Options::default();
        let c = secc_compiler::pipeline::compile_float(g, &calib, &opts).unwrap();
        let plan = c.mpc.unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let (step, pieces, bound) = plan
            .steps
            .iter()
            .find_map(|s| match &s.op {
                StepOp::Piecewise { function, .. } => Some(("piecewise", function.pieces.len(), function.max_error)),
                // The comparison protocol: exact but for the input's encoding.
                StepOp::Relu { .. } => Some(("relu", 2, 2.0f64.powi(-18))),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{}: no elementwise step", case.name));
        let inputs: Vec<Tensor> = (0..4).map(|k| row(lo, hi, 0.13 + k as f32 * 0.21)).collect();
        let flat: Vec<Vec<f32>> = inputs.iter().map(|t| t.as_f32().unwrap().iter().copied().collect()).collect();
        let reports = secc_runtime::mpc::session::run_local(&plan, &flat, Duration::from_secs(60), 1).unwrap();
        let mut worst: f64 = 0.0;
        for (t, got) in inputs.iter().zip(reports[plan.roles.receiver].outputs.as_ref().unwrap()) {
            let want = secc_ir::interp::run_graph(&c.float, std::slice::from_ref(t)).unwrap()[0].to_f64_vec();
            for (g, w) in got.iter().zip(&want) {
                // The output travels as f32: half its ulp on top of the plan's bound.
                let err = (*g as f64 - w).abs() - w.abs() * f32::EPSILON as f64;
                worst = worst.max(err);
            }
        }
        table.push(format!("| {} | [{lo}, {hi}] | {step} | {pieces} | {bound:.2e} | {worst:.2e} |", case.name));
        assert!(worst <= bound, "{}: measured {worst:e} over the stated bound {bound:e}", case.name);
    }
    println!("{}", table.join("\n"));
}

/// The ONNX backend suite's single-op cases for these activations
/// (testdata/unary_cases, from testdata/make_unary_cases.py): float equals the suite's
/// expected output (1e-4, relative above 1); calibrated on the case's own input, the
/// SMPC plan is within the bound it states, and the simulation within a tenth of the
/// output's range (8-bit tables read at 5 bits).
#[test]
fn onnx_backend_cases_run_on_float_sim_and_mpc() {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/unary_cases");
    let mut cases: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    cases.sort();
    assert!(cases.len() >= 17, "{cases:?}");
    for case in cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let g =
            secc_compiler::pipeline::import_float(&case.join("model.onnx")).unwrap_or_else(|e| panic!("{name}: {e}"));
        let shape = g.ty(g.inputs[0]).shape.clone();
        let read = |file: &str| secc_runtime::csv::read_csv(&case.join(file), shape.numel()).unwrap().remove(0);
        let (x, want) = (read("input.csv"), read("expected.csv"));
        let sample = vec![Tensor::F32(ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&shape.0), x.clone()).unwrap())];
        let got = secc_ir::interp::run_graph(&g, &sample).unwrap()[0].to_f64_vec();
        for (g, &w) in got.iter().zip(&want) {
            assert!((g - w as f64).abs() <= 1e-4 * (w.abs() as f64).max(1.0), "{name}: float {g} vs suite {w}");
        }
        let c = secc_compiler::pipeline::compile_float(g, std::slice::from_ref(&sample), &Default::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let sim = secc_ir::interp::run_graph(c.quantized.as_ref().unwrap(), &sample).unwrap()[0].to_f64_vec();
        let (lo, hi) = got.iter().fold((f64::MAX, f64::MIN), |(l, h), &v| (l.min(v), h.max(v)));
        let sim_err = sim.iter().zip(&got).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        assert!(sim_err <= 0.1 * (hi - lo).max(1e-3), "{name}: sim off by {sim_err} on a range of {}", hi - lo);

        let plan = c.mpc.unwrap_or_else(|e| panic!("{name}: {e}"));
        let bound = plan
            .steps
            .iter()
            .map(|s| match &s.op {
                StepOp::Piecewise { function, .. } => function.max_error,
                StepOp::Relu { .. } => 2.0f64.powi(-18),
                _ => 0.0,
            })
            .fold(2.0f64.powi(-18), f64::max);
        let reports = secc_runtime::mpc::session::run_local(&plan, &[x], Duration::from_secs(60), 1).unwrap();
        let mpc = &reports[plan.roles.receiver].outputs.as_ref().unwrap()[0];
        for (m, w) in mpc.iter().zip(&got) {
            let err = (*m as f64 - w).abs() - w.abs() * f32::EPSILON as f64;
            assert!(err <= bound, "{name}: mpc {m} vs float {w}, over the stated bound {bound:e}");
        }
    }
}
