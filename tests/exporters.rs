//! Every model under testdata/models (each made by a real exporter: torch.onnx.export,
//! skl2onnx, ...) on each backend its meta.json lists: `float` equals onnxruntime's
//! output, `sim` keeps the float accuracy (R² for regressors), `mpc` agrees with float
//! within the plan's bound and has the same argmax, `fhe` agrees with the simulation.
//! A model that lists no backend must be refused with an error, not a panic.

mod common;

use common::*;
use secc_compiler::passes::precision::Budget;
use secc_compiler::pipeline::{compile_float, import_float, Compiled, Options};
use secc_ir::lowered::mpc::StepOp;
use secc_ir::Tensor;
use std::sync::OnceLock;

/// Test rows each model runs under SMPC (three parties over loopback) and TFHE.
const MPC_ROWS: usize = 2;
const FHE_ROWS: usize = 2;

struct Model {
    name: String,
    meta: Meta,
    /// The float IR the model imports to, or the error (or panic) it gave.
    float: Result<secc_ir::Graph, String>,
    /// The compilation with default settings, or the error (or panic) it gave.
    compiled: Result<Compiled, String>,
    test: Vec<Vec<Tensor>>,
}

impl Model {
    fn has(&self, backend: &str) -> bool {
        self.meta.backends.iter().any(|b| b == backend)
    }

    /// The float IR: every model that lists a backend imports.
    fn float(&self) -> &secc_ir::Graph {
        match &self.float {
            Ok(g) => g,
            Err(e) => panic!("{} lists backends {:?} but does not import: {e}", self.name, self.meta.backends),
        }
    }

    /// Whether each sample has several targets.
    fn multi_target(&self) -> bool {
        let labels = std::fs::read_to_string(model_dir(&self.name).join("labels.csv")).unwrap();
        labels.lines().next().is_some_and(|l| l.contains(','))
    }

    fn compiled(&self) -> &Compiled {
        match &self.compiled {
            Ok(c) => c,
            Err(e) => panic!("{} lists backends {:?} but does not compile: {e}", self.name, self.meta.backends),
        }
    }
}

/// The model's float IR, its compilation and its test rows.
type Compilation = (secc_ir::Graph, Result<Compiled, String>, Vec<Vec<Tensor>>);

fn compile_dir(name: &str) -> Result<Compilation, String> {
    let g = import_float(&model_dir(name).join("model.onnx")).map_err(|e| e.to_string())?;
    let calib = samples(&g, name, "calib.csv");
    let test = samples(&g, name, "test.csv");
    // As `secc compile` does by default: the widths the accuracy budget picks.
    let opts = Options { budget: Some(Budget::default()), ..Options::default() };
    let c = compile_float(g.clone(), &calib, &opts).map_err(|e| e.to_string());
    Ok((g, c, test))
}

/// Every model directory with a meta.json, compiled once for all the tests (one
/// thread per model: a panic is recorded as such, not propagated).
fn models() -> &'static [Model] {
    static MODELS: OnceLock<Vec<Model>> = OnceLock::new();
    MODELS.get_or_init(|| {
        let mut names: Vec<String> = std::fs::read_dir(model_dir(""))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| model_dir(n).join("meta.json").exists())
            .collect();
        names.sort();
        std::thread::scope(|s| {
            let jobs: Vec<_> = names.iter().map(|name| s.spawn(move || compile_dir(name))).collect();
            names
                .iter()
                .zip(jobs)
                .map(|(name, job)| {
                    let meta = meta(name);
                    let (float, compiled, test) = match job.join() {
                        Ok(Ok((g, c, test))) => (Ok(g), c, test),
                        Ok(Err(e)) => (Err(e.clone()), Err(e), Vec::new()),
                        Err(_) => (Err(PANICKED.into()), Err(PANICKED.into()), Vec::new()),
                    };
                    Model { name: name.clone(), meta, float, compiled, test }
                })
                .collect()
        })
    })
}

const PANICKED: &str = "compiling panicked";

fn listing(backend: &str) -> impl Iterator<Item = &'static Model> + '_ {
    models().iter().filter(move |m| m.has(backend))
}

/// 1e-4 absolute, relative beyond magnitude 1 (f32 spacing is 1.2e-4 at 1000).
fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * a.abs().max(b.abs()).max(1.0)
}

/// Every output of `g` on each sample, flattened and laid end to end (as `secc run`
/// writes a row).
fn run(g: &secc_ir::Graph, xs: &[Vec<Tensor>]) -> Vec<Vec<f64>> {
    xs.iter().map(|x| secc_ir::interp::run_graph(g, x).unwrap().iter().flat_map(Tensor::to_f64_vec).collect()).collect()
}

/// The first output's part of each row of [`run`]: what the metric reads.
fn first(g: &secc_ir::Graph, rows: Vec<Vec<f64>>) -> Vec<Vec<f64>> {
    let n = g.ty(g.outputs[0]).shape.numel();
    rows.into_iter()
        .map(|mut r| {
            r.truncate(n);
            r
        })
        .collect()
}

/// Accuracy for classifiers, R² for regressors.
fn score(m: &Model, outputs: &[Vec<f64>]) -> f64 {
    let labels = labels(&m.name);
    if m.meta.task == "regression" {
        r2(outputs, &labels)
    } else {
        metric("classification", outputs, &labels)
    }
}

#[test]
fn every_model_is_listed_or_refused_with_an_error() {
    let all = models();
    assert!(all.len() >= 20, "only {} models found", all.len());
    let mut refused = Vec::new();
    for m in all {
        assert!(!m.meta.exporter.is_empty(), "{}: meta.json names no exporter", m.name);
        for b in &m.meta.backends {
            assert!(["float", "sim", "mpc", "fhe"].contains(&b.as_str()), "{}: unknown backend {b}", m.name);
        }
        // `float` needs the import; any other backend the whole pipeline, and its own
        // product (`sim` the quantized IR, `mpc` the plan). A model says in its
        // meta.json why a product it lacks is refused.
        if m.meta.backends.iter().any(|b| b != "float") {
            let c = m.compiled();
            let missing = [("sim", c.quantized.as_ref().err()), ("mpc", c.mpc.as_ref().err())];
            for (backend, e) in missing.into_iter().filter_map(|(b, e)| Some((b, e?))) {
                assert!(!m.has(backend), "{} lists {backend} but has none: {e}", m.name);
                assert!(m.meta.blocked_by.is_some(), "{}: no {backend} ({e}) but meta.json says by what", m.name);
                refused.push(format!("{} (no {backend}): {e}", m.name));
            }
            continue;
        }
        if !m.meta.backends.is_empty() {
            m.float();
            if let Err(e) = &m.compiled {
                assert_ne!(e, PANICKED, "{}: compiling panicked instead of giving an error", m.name);
                assert!(m.meta.blocked_by.is_some(), "{}: refused ({e}) but meta.json says by what", m.name);
                refused.push(format!("{} (float only): {e}", m.name));
            }
            continue;
        }
        match &m.compiled {
            Ok(_) => panic!("{} compiles: list the backends it passes in its meta.json", m.name),
            Err(e) => {
                assert_ne!(e, PANICKED, "{}: compiling panicked instead of giving an error", m.name);
                assert!(m.meta.blocked_by.is_some(), "{}: refused ({e}) but meta.json says by what", m.name);
                refused.push(format!("{}: {e}", m.name));
            }
        }
    }
    eprintln!("refused, as their meta.json says:\n  {}", refused.join("\n  "));
}

#[test]
fn float_matches_onnxruntime() {
    for m in listing("float") {
        let g = m.float();
        let ys = run(g, &m.test);
        let width = g.outputs.iter().map(|&o| g.ty(o).shape.numel()).sum();
        let expected = rows(&m.name, "expected.csv", width);
        assert_eq!(ys.len(), expected.len(), "{}: test rows vs expected rows", m.name);
        for (row, (y, e)) in ys.iter().zip(&expected).enumerate() {
            for (a, b) in y.iter().zip(e) {
                assert!(close(*a, *b as f64, 1e-4), "{} row {row}: float IR {a}, onnxruntime {b}", m.name);
            }
        }
        // Several targets (a labels.csv row per sample with a column per target): the
        // per-target checks are tests/ml_models.rs's.
        if m.multi_target() {
            continue;
        }
        let task = if m.meta.task == "regression" { "regression" } else { "classification" };
        let ys = first(g, ys);
        let f = metric(task, &ys, &labels(&m.name));
        assert!(close(f, m.meta.float_metric, 1e-5), "{}: float metric {f}, meta.json {}", m.name, m.meta.float_metric);
        if let Some(r) = m.meta.r2_float {
            let got = r2(&ys, &labels(&m.name));
            assert!((got - r).abs() <= 1e-5, "{}: R² {got}, meta.json {r}", m.name);
        }
    }
}

#[test]
fn simulation_keeps_float_accuracy_within_one_point() {
    // Measured on every model that compiles (the README's table), checked where listed.
    let quantized = |m: &&Model| m.compiled.as_ref().is_ok_and(|c| c.quantized.is_ok());
    for m in models().iter().filter(quantized).filter(|m| !m.multi_target()) {
        let c = m.compiled();
        let q = c.quantized.as_ref().unwrap();
        let (f, q) = (score(m, &first(&c.float, run(&c.float, &m.test))), score(m, &first(q, run(q, &m.test))));
        let what = if m.meta.task == "regression" { "R²" } else { "accuracy" };
        eprintln!("{}: {what} float {f:.4}, simulation {q:.4}", m.name);
        // Quantization may lose at most one point (a luckier simulation is no failure).
        if m.has("sim") {
            assert!(q >= f - 0.01 - 1e-9, "{}: simulated {what} {q} vs float {f}", m.name);
        }
    }
}

#[test]
fn mpc_agrees_with_float_within_the_plan_bound() {
    for m in listing("mpc") {
        let c = m.compiled();
        let plan = c.mpc.as_ref().unwrap_or_else(|e| panic!("{}: no SMPC plan: {e}", m.name));
        let xs = &m.test[..MPC_ROWS];
        let got = run_plan(plan, xs);
        // The plan is exact up to its fixed point (2^-frac_bits per truncation) except
        // where it evaluates a fitted function; `secc inspect` states each one's error,
        // not the outputs': through the layers after it, that error reaches the logits
        // scaled by the weights, which MPC_FITTED_BOUND covers on these nets.
        let fitted: Vec<f64> = plan
            .steps
            .iter()
            .filter_map(|s| match &s.op {
                StepOp::Piecewise { function, .. } => Some(function.max_error),
                _ => None,
            })
            .collect();
        // A step that states a larger error (a QDQ model's fake-quantization, whose
        // rounding SMPC skips: half a grid step) carries it through the next layers.
        let largest = fitted.iter().copied().fold(0.0, f64::max);
        let bound = if fitted.is_empty() { 1e-3 } else { MPC_FITTED_BOUND.max(4.0 * largest) };
        for (row, (y, want)) in got.iter().zip(run(&c.float, xs)).enumerate() {
            let y: Vec<f64> = y.iter().map(|&v| v as f64).collect();
            for (a, b) in y.iter().zip(&want) {
                assert!(
                    close(*a, *b, bound),
                    "{} row {row}: SMPC {a}, float {b} (bound {bound}; fitted functions err ≤ {fitted:?})",
                    m.name
                );
            }
            if m.meta.task == "classification" {
                let n = c.float.ty(c.float.outputs[0]).shape.numel();
                assert_eq!(argmax(&y[..n]), argmax(&want[..n]), "{} row {row}: SMPC argmax differs", m.name);
            }
        }
    }
}

/// Largest output error (relative beyond magnitude 1) of a plan with fitted
/// activations, as tests/mpc.rs bounds the digits nets' logits: each activation errs by
/// at most its stated bound (1e-4 of its peak by default) and a logit sums a few dozen.
const MPC_FITTED_BOUND: f64 = 0.05;

#[test]
fn fhe_agrees_with_the_simulation() {
    use secc_runtime::fhe::exec::{decrypt_sample, encrypt_sample, ServerProgram};
    for m in listing("fhe") {
        let c = m.compiled();
        let circuit = c.fhe.as_ref().unwrap_or_else(|e| panic!("{}: no TFHE circuit: {e}", m.name));
        let (ck, sk) =
            secc_runtime::fhe::keys::generate_local_keys(&circuit.key_layout(c.quantized.as_ref().unwrap())).unwrap();
        let program = ServerProgram::new(c.quantized.as_ref().unwrap(), circuit, &sk).unwrap();
        let spec = secc_ir::client_spec::ClientSpec::new(c.quantized.as_ref().unwrap(), circuit, [0; 32]).unwrap();
        for (row, x) in m.test.iter().take(FHE_ROWS).enumerate() {
            let cts = encrypt_sample(&spec, &ck, x).unwrap();
            let out = program.evaluate(cts, &|| {}).unwrap();
            let fhe = decrypt_sample(&spec, &ck, &out).unwrap()[0].to_f64_vec();
            let sim = secc_ir::interp::run_graph(c.quantized.as_ref().unwrap(), x).unwrap()[0].to_f64_vec();
            if m.meta.task == "classification" {
                // A bootstrap may read the neighbouring table entry (tests/fhe.rs bounds how
                // often), which moves the logits a little but must not change the class.
                assert_eq!(argmax(&fhe), argmax(&sim), "{} row {row}: TFHE argmax differs", m.name);
            } else {
                // Regressors here are forests: comparisons read exact integers, and the
                // levelled sum of leaves carries noise far below 1%.
                for (a, b) in fhe.iter().zip(&sim) {
                    assert!(close(*a, *b, 1e-2), "{} row {row}: TFHE {a}, simulation {b}", m.name);
                }
            }
        }
    }
}
