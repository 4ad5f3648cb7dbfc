//! scikit-learn (skl2onnx), XGBoost and LightGBM (onnxmltools) models as their
//! exporters write them with default options (testdata/make_ml_models.py: `skl_*`,
//! `xgb_*`, `lgbm_*`): each compiles, computes what onnxruntime computes, and runs on
//! every backend its `meta.json` lists under `backends`.

mod common;

use common::{argmax, model_dir, run_plan, samples};
use secc_compiler::passes::precision::Budget;
use secc_compiler::pipeline::{compile_float, import_float, Compiled, Options};
use secc_ir::{Graph, Tensor};

#[derive(serde::Deserialize)]
struct Meta {
    task: String,
    backends: Vec<String>,
}

fn meta(name: &str) -> Meta {
    serde_json::from_str(&std::fs::read_to_string(model_dir(name).join("meta.json")).unwrap()).unwrap()
}

/// Every model of this family, with its metadata.
fn models() -> Vec<(String, Meta)> {
    let mut names: Vec<String> = std::fs::read_dir(model_dir(""))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| ["skl_", "xgb_", "lgbm_"].iter().any(|p| n.starts_with(p)))
        .collect();
    names.sort();
    assert!(names.len() >= 19, "the ML models are missing: {names:?}");
    names
        .into_iter()
        .map(|n| {
            let m = meta(&n);
            (n, m)
        })
        .collect()
}

fn csv(name: &str, file: &str) -> Vec<Vec<f64>> {
    std::fs::read_to_string(model_dir(name).join(file))
        .unwrap()
        .lines()
        .map(|l| l.split(',').map(|v| v.trim().parse().unwrap()).collect())
        .collect()
}

fn run(g: &Graph, xs: &[Vec<Tensor>]) -> Vec<Vec<f64>> {
    xs.iter().map(|x| secc_ir::interp::run_graph(g, x).unwrap()[0].to_f64_vec()).collect()
}

/// Accuracy, or the mean over targets of R².
fn score(task: &str, outputs: &[Vec<f64>], labels: &[Vec<f64>]) -> f64 {
    if task == "classification" {
        let right = outputs.iter().zip(labels).filter(|(o, l)| argmax(o) == l[0] as usize).count();
        return right as f64 / outputs.len() as f64;
    }
    let targets = labels[0].len();
    let r2 = |t: usize| {
        let mean = labels.iter().map(|l| l[t]).sum::<f64>() / labels.len() as f64;
        let residual: f64 = outputs.iter().zip(labels).map(|(o, l)| (o[t] - l[t]).powi(2)).sum();
        let total: f64 = labels.iter().map(|l| (l[t] - mean).powi(2)).sum();
        1.0 - residual / total
    };
    (0..targets).map(r2).sum::<f64>() / targets as f64
}

fn compiled(name: &str) -> (Compiled, Vec<Vec<Tensor>>) {
    let g = import_float(&model_dir(name).join("model.onnx")).unwrap();
    let calib = samples(&g, name, "calib.csv");
    let test = samples(&g, name, "test.csv");
    // As `secc compile` does by default: the widths the accuracy budget picks.
    let opts = Options { budget: Some(Budget::default()), ..Options::default() };
    (compile_float(g, &calib, &opts).unwrap(), test)
}

#[test]
fn float_ir_matches_onnxruntime() {
    for (name, meta) in models() {
        assert!(meta.backends.iter().any(|b| b == "float"), "{name}: every model runs in float");
        let g = import_float(&model_dir(&name).join("model.onnx")).unwrap_or_else(|e| panic!("{name}: {e}"));
        let xs = samples(&g, &name, "test.csv");
        let expected = csv(&name, "expected.csv");
        let got = run(&g, &xs);
        let mut worst = 0f64;
        for (y, e) in got.iter().zip(&expected) {
            assert_eq!(y.len(), e.len(), "{name}: {} outputs, onnxruntime has {}", y.len(), e.len());
            for (a, b) in y.iter().zip(e) {
                worst = worst.max((a - b).abs() / b.abs().max(1.0));
            }
        }
        eprintln!("{name}: float IR within {worst:.2e} of onnxruntime on {} rows", xs.len());
        assert!(worst <= 1e-4, "{name}: float IR differs from onnxruntime by {worst}");
    }
}

#[test]
fn simulation_keeps_accuracy_within_a_point_and_r2_within_a_hundredth() {
    let mut failed = Vec::new();
    for (name, meta) in models().into_iter().filter(|(_, m)| m.backends.iter().any(|b| b == "sim")) {
        let (c, xs) = compiled(&name);
        let labels = csv(&name, "labels.csv");
        let (f, q) = (
            score(&meta.task, &run(&c.float, &xs), &labels),
            score(&meta.task, &run(c.quantized.as_ref().unwrap(), &xs), &labels),
        );
        eprintln!("{name}: float {f:.4}, simulation {q:.4}");
        if q < f - 0.01 {
            failed.push(format!("{name}: simulation scores {q}, float {f}"));
        }
    }
    assert!(failed.is_empty(), "{failed:#?}");
}

#[test]
fn mpc_agrees_with_the_float_ir() {
    const ROWS: usize = 3;
    let mut failed = Vec::new();
    for (name, meta) in models().into_iter().filter(|(_, m)| m.backends.iter().any(|b| b == "mpc")) {
        let (c, xs) = compiled(&name);
        let plan = match c.mpc.as_ref() {
            Ok(p) => p,
            Err(e) => {
                failed.push(format!("{name}: no plan: {e}"));
                continue;
            }
        };
        let xs = &xs[..ROWS];
        let got = run_plan(plan, xs);
        for (y, want) in got.iter().zip(run(&c.float, xs)) {
            let y: Vec<f64> = y.iter().map(|&v| v as f64).collect();
            let worst = y.iter().zip(&want).map(|(a, b)| (a - b).abs() / b.abs().max(1.0)).fold(0.0, f64::max);
            let label_differs = meta.task == "classification" && argmax(&y) != argmax(&want);
            if worst > 1e-2 || label_differs {
                failed.push(format!("{name}: mpc {y:?} vs float {want:?}"));
            }
        }
        eprintln!("{name}: mpc ran {ROWS} rows");
    }
    assert!(failed.is_empty(), "{failed:#?}");
}

/// What secc does with a classifier's outputs, for each exporter's layout.
#[test]
fn classifiers_compute_their_probabilities_and_leave_labels_to_the_receiver() {
    use secc_compiler::frontend::import_onnx_outputs;
    // skl2onnx: a label and a ZipMap (the probabilities stand for the ZipMap).
    let path = model_dir("skl_rf_multi").join("model.onnx");
    let (g, choice) = import_onnx_outputs(&path, &[]).unwrap();
    assert_eq!(choice.chosen, ["output_probability"]);
    assert_eq!(choice.left_out, ["output_label"]);
    let note = choice.note().unwrap();
    assert!(note.contains("`output_probability`") && note.contains("`output_label`") && note.contains("--output"));
    assert_eq!(g.outputs.len(), 1);
    let (_, explicit) = import_onnx_outputs(&path, &["output_probability".into()]).unwrap();
    assert_eq!(explicit.note(), None);
    let err = import_onnx_outputs(&path, &["output_label".into()]).unwrap_err().to_string();
    assert!(err.contains("output `output_label`") && err.contains("`output_probability`"), "{err}");
    let err = import_onnx_outputs(&path, &["proba".into()]).unwrap_err().to_string();
    assert!(err.contains("no output `proba`; the outputs are `output_label`, `output_probability`"), "{err}");
    // onnxmltools' XGBoost: a label and a probability tensor.
    let (_, choice) = import_onnx_outputs(&model_dir("xgb_clf_bin").join("model.onnx"), &[]).unwrap();
    assert_eq!(choice.chosen, ["probabilities"]);
    // A regressor has one output: nothing to say.
    let (_, choice) = import_onnx_outputs(&model_dir("skl_linreg").join("model.onnx"), &[]).unwrap();
    assert_eq!(choice.note(), None);
}
