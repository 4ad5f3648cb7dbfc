//! The three oracles on every testdata model: tract's float run, the float IR and
//! the quantized simulation, plus the exactness of the range analysis.

mod common;

use common::*;
use secc_compiler::passes::quantize::QuantConfig;
use secc_compiler::pipeline::{compile_float, import_float, Options};
use secc_ir::{OpSpec, Tensor};
use tract_onnx::prelude::*;

fn to_f64(t: &Tensor) -> Vec<f64> {
    t.to_f64_vec()
}

#[test]
fn float_ir_agrees_with_tract_and_onnxruntime() {
    for name in MODELS {
        let path = model_dir(name).join("model.onnx");
        let g = import_float(&path).unwrap();
        let xs = samples(&g, name, "test.csv");
        let expected = rows(name, "expected.csv", g.ty(g.outputs[0]).shape.numel());
        let tract = (!is_onnx_ml(name)).then(|| {
            let shape = g.ty(g.inputs[0]).shape.0.clone();
            tract_onnx::onnx()
                .model_for_path(&path)
                .unwrap()
                .with_input_fact(0, f32::fact(&shape).into())
                .unwrap()
                .into_optimized()
                .unwrap()
                .into_runnable()
                .unwrap()
        });
        let mut worst = 0f64;
        for (x, ort) in xs.iter().zip(&expected) {
            let y = to_f64(&secc_ir::interp::run_graph(&g, x).unwrap()[0]);
            // 1e-4 absolute, relative beyond |y| = 1: f32 spacing is 1.2e-4 at 1000.
            let err = |a: f64, b: f64| (a - b).abs() / a.abs().max(1.0);
            for (a, b) in y.iter().zip(ort) {
                worst = worst.max(err(*a, *b as f64));
            }
            if let Some(plan) = &tract {
                let t: tract_onnx::prelude::Tensor = x[0].as_f32().unwrap().clone().into();
                let out = plan.run(tvec!(t.into())).unwrap();
                let out = out[0].to_plain_array_view::<f32>().unwrap();
                for (a, b) in y.iter().zip(out.iter()) {
                    worst = worst.max(err(*a, *b as f64));
                }
            }
        }
        assert!(worst <= 1e-4, "{name}: float IR differs from tract/onnxruntime by {worst}");
    }
}

#[test]
fn quantized_simulation_keeps_accuracy_and_stays_in_range() {
    for name in MODELS {
        let (c, _) = compile(name, &QuantConfig::default());
        let xs = samples(&c.float, name, "test.csv");
        let labels = labels(name);
        let m = meta(name);
        let mut outs = Vec::new();
        let mut float_outs = Vec::new();
        for x in &xs {
            let values = secc_ir::interp::eval_all(c.quantized.as_ref().unwrap(), x).unwrap();
            // Range analysis is exact: every integer value lies in its type's range.
            for (node, v) in c.quantized.as_ref().unwrap().nodes.iter().zip(&values) {
                if let (Some(t), Some(a)) = (node.ty.as_int(), v.as_i64()) {
                    let (lo, hi) = (a.iter().min().unwrap(), a.iter().max().unwrap());
                    assert!(
                        t.lo <= *lo && *hi <= t.hi,
                        "{name}: {} = [{lo}, {hi}] outside {}",
                        node.op.mnemonic(),
                        node.ty
                    );
                }
            }
            outs.push(to_f64(&values[c.quantized.as_ref().unwrap().outputs[0].index()]));
            float_outs.push(to_f64(&secc_ir::interp::run_graph(&c.float, x).unwrap()[0]));
        }
        let q = metric(&m.task, &outs, &labels);
        let f = metric(&m.task, &float_outs, &labels);
        assert!((f - m.float_metric).abs() < 1e-6 * f.max(1.0), "{name}: float metric {f} vs meta {}", m.float_metric);
        eprintln!("{name}: float {f:.4}, simulation {q:.4}");
        if m.task == "regression" {
            assert!(q <= f * 1.02, "{name}: simulated RMSE {q} more than 2% above float {f}");
        } else {
            assert!(q >= f - 0.02, "{name}: simulated accuracy {q} more than 2 points below float {f}");
        }
    }
}

#[test]
fn tree_ensembles_keep_r2_and_labels_in_simulation() {
    for name in MODELS.iter().filter(|n| is_tree(n)) {
        let (c, _) = compile(name, &QuantConfig::default());
        let xs = samples(&c.float, name, "test.csv");
        let run = |g: &secc_ir::Graph| -> Vec<Vec<f64>> {
            xs.iter().map(|x| to_f64(&secc_ir::interp::run_graph(g, x).unwrap()[0])).collect()
        };
        let (f, q) = (run(&c.float), run(c.quantized.as_ref().unwrap()));
        if meta(name).task == "regression" {
            let labels = labels(name);
            let (rf, rq) = (r2(&f, &labels), r2(&q, &labels));
            eprintln!("{name}: R² float {rf:.4}, simulation {rq:.4}");
            assert!((rf - rq).abs() <= 0.02, "{name}: R² {rq} vs float {rf}");
        } else {
            // At the cheapest widths (no accuracy budget; `secc compile` widens them) a
            // label may move: accuracy stays within two points.
            let labels = labels(name);
            let (af, aq) = (metric("classification", &f, &labels), metric("classification", &q, &labels));
            eprintln!("{name}: accuracy float {af:.4}, simulation {aq:.4}");
            assert!(aq >= af - 0.02, "{name}: accuracy {aq} vs float {af}");
        }
    }
}

#[test]
fn final_activation_runs_on_the_client_unless_tables_are_asked_for() {
    let name = "logreg";
    let g = import_float(&model_dir(name).join("model.onnx")).unwrap();
    let calib = samples(&g, name, "calib.csv");
    let producer = |c: &secc_compiler::pipeline::Compiled| {
        let out = c.quantized.as_ref().unwrap().node(c.quantized.as_ref().unwrap().outputs[0]);
        c.quantized.as_ref().unwrap().node(out.inputs[0]).op.mnemonic()
    };
    let clear = compile_float(g.clone(), &calib, &Options::default()).unwrap();
    // sigmoid(dequantize(acc)): the client applies the sigmoid after decryption.
    assert_eq!(
        clear.quantized.as_ref().unwrap().node(clear.quantized.as_ref().unwrap().outputs[0]).op.mnemonic(),
        "sigmoid"
    );
    assert_eq!(producer(&clear), "dequantize");
    // The raw breast-cancer features give logits of ±200: an 8-bit table over them.
    let cfg = QuantConfig { output_tables: true, table_bits: 8, ..QuantConfig::default() };
    let tabled = compile_float(g, &calib, &Options { quant: cfg, ..Options::default() }).unwrap();
    assert_eq!(producer(&tabled), "lut");
    let xs = samples(&tabled.float, name, "test.csv");
    let mut worst = 0f64;
    for x in &xs {
        let f = to_f64(&secc_ir::interp::run_graph(&tabled.float, x).unwrap()[0])[0];
        let q = to_f64(&secc_ir::interp::run_graph(tabled.quantized.as_ref().unwrap(), x).unwrap()[0])[0];
        worst = worst.max((f - q).abs());
    }
    // Probabilities within a few table steps.
    assert!(worst < 0.15, "sigmoid table off by {worst}");
}
