//! Shared helpers for the end-to-end tests: the testdata models and their files.
#![allow(dead_code)]

use ndarray::{ArrayD, IxDyn};
use secc_ir::{Graph, Tensor};
use std::path::PathBuf;

pub fn model_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/models").join(name)
}

/// The models every check runs on.
pub const MODELS: &[&str] = &[
    "linreg_2",
    "linreg_8",
    "linreg_32",
    "logreg",
    "dense_relu",
    "dense_sigmoid",
    "dense_gelu",
    "cnn",
    "cnn_tiny",
    "rf_regressor",
    "rf_20x4",
    "rf_10x4",
    "gb_classifier",
];

/// Whether a testdata model is a tree ensemble.
pub fn is_tree(name: &str) -> bool {
    name.starts_with("rf_") || name.starts_with("gb_")
}

/// Whether a testdata model holds ONNX-ML ops (scikit-learn's exports), which plain
/// tract does not load as skl2onnx writes them (ZipMap).
pub fn is_onnx_ml(name: &str) -> bool {
    is_tree(name) || name.starts_with("linreg_") || name == "logreg"
}

/// Coefficient of determination of single-output predictions.
pub fn r2(outputs: &[Vec<f64>], labels: &[f64]) -> f64 {
    let mean = labels.iter().sum::<f64>() / labels.len() as f64;
    let residual: f64 = outputs.iter().zip(labels).map(|(o, l)| (o[0] - l).powi(2)).sum();
    let total: f64 = labels.iter().map(|l| (l - mean).powi(2)).sum();
    1.0 - residual / total
}

#[derive(serde::Deserialize)]
pub struct Meta {
    pub task: String,
    pub float_metric: f64,
    pub r2_float: Option<f64>,
    pub exporter: String,
    /// The backends tests/exporters.rs checks the model on.
    pub backends: Vec<String>,
    /// What the model waits for, or why a backend is missing from `backends`.
    pub blocked_by: Option<String>,
}

/// Whether a testdata model's meta.json lists `backend` (a classifier whose forest
/// needs 32 fractional bits before a fitted softmax has no SMPC plan, for one).
pub fn runs_on(name: &str, backend: &str) -> bool {
    meta(name).backends.iter().any(|b| b == backend)
}

pub fn meta(name: &str) -> Meta {
    let text = std::fs::read_to_string(model_dir(name).join("meta.json")).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}/meta.json: {e}"))
}

pub fn rows(name: &str, file: &str, cols: usize) -> Vec<Vec<f32>> {
    secc_runtime::csv::read_csv(&model_dir(name).join(file), cols).unwrap()
}

/// Samples of `file` shaped as `graph`'s single input.
pub fn samples(graph: &Graph, name: &str, file: &str) -> Vec<Vec<Tensor>> {
    let shape = graph.ty(graph.inputs[0]).shape.clone();
    rows(name, file, shape.numel())
        .into_iter()
        .map(|r| vec![Tensor::F32(ArrayD::from_shape_vec(IxDyn(&shape.0), r).unwrap())])
        .collect()
}

pub fn labels(name: &str) -> Vec<f64> {
    std::fs::read_to_string(model_dir(name).join("labels.csv"))
        .unwrap()
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect()
}

pub fn argmax(v: &[f64]) -> usize {
    v.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0
}

/// Accuracy (classification) or RMSE (regression) of outputs against labels.
pub fn metric(task: &str, outputs: &[Vec<f64>], labels: &[f64]) -> f64 {
    let n = outputs.len() as f64;
    match task {
        "classification" => outputs.iter().zip(labels).filter(|(o, &l)| argmax(o) == l as usize).count() as f64 / n,
        "binary" => outputs.iter().zip(labels).filter(|(o, &l)| ((o[0] > 0.5) as u8 as f64) == l).count() as f64 / n,
        _ => (outputs.iter().zip(labels).map(|(o, l)| (o[0] - l).powi(2)).sum::<f64>() / n).sqrt(),
    }
}

/// Imports a testdata model and runs the whole pipeline with quantizer settings `cfg`
/// (default lowering settings) on its calibration rows; returns the compilation and
/// those rows.
pub fn compile(
    name: &str,
    cfg: &secc_compiler::passes::quantize::QuantConfig,
) -> (secc_compiler::pipeline::Compiled, Vec<Vec<Tensor>>) {
    let g = secc_compiler::pipeline::import_float(&model_dir(name).join("model.onnx")).unwrap();
    let calib = samples(&g, name, "calib.csv");
    let opts = secc_compiler::pipeline::Options { quant: cfg.clone(), ..Default::default() };
    (secc_compiler::pipeline::compile_float(g, &calib, &opts).unwrap(), calib)
}

/// The receiver's outputs of `plan` run by three parties over loopback TLS on `xs`
/// (samples of the plan's single input).
pub fn run_plan(plan: &secc_ir::lowered::mpc::Plan, xs: &[Vec<Tensor>]) -> Vec<Vec<f32>> {
    let flat: Vec<Vec<f32>> = xs.iter().map(|s| s[0].as_f32().unwrap().iter().copied().collect()).collect();
    let reports = secc_runtime::mpc::session::run_local(plan, &flat, std::time::Duration::from_secs(60), 1).unwrap();
    reports[plan.roles.receiver].outputs.clone().unwrap()
}

/// A testdata model's float IR and the SMPC plan the pipeline compiled (default settings).
pub fn mpc_plan(name: &str) -> (Graph, secc_ir::lowered::mpc::Plan) {
    let (c, _) = compile(name, &Default::default());
    (c.float, c.mpc.unwrap())
}
