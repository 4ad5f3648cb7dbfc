//! The ONNX backend test suite, run the way tract runs it: the node tests and the
//! pytorch-converted and pytorch-operator models that ship with the `onnx` package.
//!
//! CI (`every_allowlisted_case_passes_on_its_backends`) runs every case listed in
//! `testdata/onnx-backend/allowlist.toml` from the copies committed next to it, on the
//! backends the list names, and fails on any regression; it needs no Python.
//!
//! The bless run (`bless`, ignored) runs the whole suite from a scratch directory that
//! `testdata/onnx_backend.py` writes, classifies every single-input float case on each
//! backend (pass, refused with the reason, wrong, panic), and rewrites the allowlist,
//! the committed cases and `testdata/onnx-backend/summary.md`:
//!
//!     /work/pyenv/bin/python testdata/onnx_backend.py /tmp/onnx-backend
//!     SECC_ONNX_BACKEND=/tmp/onnx-backend SECC_BLESS=1 cargo test --test onnx_backend -- --ignored
//!
//! Each backend is held to: `float` within 1e-4 of onnx's expected outputs (relative
//! above magnitude 1); `sim` (quantized, calibrated on the case's own inputs) within
//! [`SIM_WRONG`] of the outputs' peak, and in CI within what it reached at bless time;
//! `mpc` within the bound its compiled plan states (the fitted functions' errors) plus
//! the float tolerance.

use secc_compiler::pipeline::{import_float, run_stage, Options, Output, Stage};
use secc_compiler::CompileError;
use secc_ir::{Graph, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `float`: onnx's outputs are float32 computations; secc's float IR may order them
/// differently.
const FLOAT_TOL: f64 = 1e-4;
/// `sim` is wrong when an output is further than this fraction of the outputs' peak
/// from onnx's (8-bit activations: a few quantization steps are 1-2%).
const SIM_WRONG: f64 = 0.1;
/// Cases larger than this are not committed (their weights would bloat the repository).
const MAX_CASE_BYTES: u64 = 1 << 20;
const SUITES: [&str; 3] = ["node", "pytorch-converted", "pytorch-operator"];

fn committed() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/onnx-backend")
}

/// One test data set: the input and the expected outputs.
struct DataSet {
    input: Tensor,
    outputs: Vec<Tensor>,
}

fn read_pb(path: &Path) -> Result<Tensor, String> {
    use tract_onnx::data_resolver::FopenDataResolver;
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let proto = tract_onnx::tensor::proto_from_reader(file).map_err(|e| format!("{}: {e:#}", path.display()))?;
    let t = tract_onnx::tensor::load_tensor(&FopenDataResolver, &proto, None)
        .and_then(|t| t.cast_to::<f32>().map(|t| t.into_owned()))
        .map_err(|e| format!("{}: {e:#}", path.display()))?;
    let view = t.to_plain_array_view::<f32>().map_err(|e| e.to_string())?;
    Ok(Tensor::F32(view.to_owned().into_dyn()))
}

fn data_sets(case: &Path) -> Result<Vec<DataSet>, String> {
    let mut sets = Vec::new();
    for n in 0.. {
        let dir = case.join(format!("test_data_set_{n}"));
        if !dir.is_dir() {
            break;
        }
        let input = read_pb(&dir.join("input_0.pb"))?;
        let mut outputs = Vec::new();
        while dir.join(format!("output_{}.pb", outputs.len())).exists() {
            outputs.push(read_pb(&dir.join(format!("output_{}.pb", outputs.len())))?);
        }
        sets.push(DataSet { input, outputs });
    }
    if sets.is_empty() {
        return Err("no test data set".into());
    }
    Ok(sets)
}

/// What one backend did with a case.
#[derive(Clone, Debug)]
enum Outcome {
    /// Within tolerance; the error measured and the bound held to.
    Pass { error: f64, bound: f64 },
    /// secc said no, with this reason (grouped in the summary).
    Refused(String),
    /// An answer outside the tolerance.
    Wrong(String),
    /// A panic: always a bug.
    Panic(String),
}

impl Outcome {
    fn kind(&self) -> &'static str {
        match self {
            Outcome::Pass { .. } => "pass",
            Outcome::Refused(_) => "refused",
            Outcome::Wrong(_) => "wrong",
            Outcome::Panic(_) => "panic",
        }
    }
}

/// The refusal as the summary groups it: the error without node names and numbers.
fn reason(e: &CompileError) -> String {
    let text = match e {
        CompileError::UnsupportedOp { op_type, .. } => format!("unsupported ONNX op `{op_type}`"),
        CompileError::UnsupportedForm { op, message, .. } => format!("{op}: {message}"),
        CompileError::Malformed { message, .. } => format!("malformed: {message}"),
        CompileError::Pass { pass, message, .. } => format!("{pass}: {message}"),
        e => e.to_string(),
    };
    // Numbers that vary from case to case (shapes, value ids, channel counts) become
    // `N`; a dimensionality (`2-D`) stays.
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if !c.is_ascii_digit() {
            out.push(c);
            continue;
        }
        let mut number = c.to_string();
        while let Some(d) = chars.next_if(char::is_ascii_digit) {
            number.push(d);
        }
        out.push_str(if chars.peek() == Some(&'-') { &number } else { "N" });
    }
    out.chars().take(160).collect()
}

/// Largest error of `got` against `want`, and the largest the tolerance `tol(|want|)`
/// allows at that element's magnitude, or why they cannot be compared.
fn compare(got: &[Tensor], want: &[Tensor], tol: impl Fn(f64) -> f64) -> Result<(f64, f64), String> {
    if got.len() != want.len() {
        return Err(format!("{} outputs, expected {}", got.len(), want.len()));
    }
    let (mut worst, mut worst_excess, mut at_bound) = (0.0f64, f64::NEG_INFINITY, 0.0);
    for (g, w) in got.iter().zip(want) {
        let (g, w) = (g.to_f64_vec(), w.to_f64_vec());
        if g.len() != w.len() {
            return Err(format!("{} output elements, expected {}", g.len(), w.len()));
        }
        for (a, b) in g.iter().zip(&w) {
            let (err, bound) = if b.is_nan() || b.is_infinite() {
                (if a.is_nan() == b.is_nan() && (b.is_nan() || a == b) { 0.0 } else { f64::INFINITY }, 0.0)
            } else {
                ((a - b).abs(), tol(b.abs()))
            };
            let err = if err.is_nan() { f64::INFINITY } else { err };
            worst = worst.max(err);
            if err - bound > worst_excess {
                worst_excess = err - bound;
                at_bound = bound;
            }
        }
    }
    if worst_excess > 0.0 {
        return Err(format!("error {:.3e} over its bound {at_bound:.3e}", worst_excess + at_bound));
    }
    Ok((worst, at_bound))
}

fn float_tol(magnitude: f64) -> f64 {
    FLOAT_TOL * magnitude.max(1.0)
}

fn peak(ts: &[Tensor]) -> f64 {
    ts.iter().flat_map(|t| t.to_f64_vec()).filter(|v| v.is_finite()).fold(0.0, |m, v| m.max(v.abs()))
}

fn finite(t: &Tensor) -> bool {
    t.to_f64_vec().iter().all(|v| v.is_finite())
}

/// The error bound a plan states: the sum of its fitted functions' errors (each
/// measured on its fitted range, fixed-point rounding included).
fn stated_bound(plan: &secc_ir::lowered::mpc::Plan) -> f64 {
    use secc_ir::lowered::mpc::StepOp;
    plan.steps
        .iter()
        .map(|s| if let StepOp::Piecewise { function, .. } = &s.op { function.max_error } else { 0.0 })
        .sum()
}

/// A case's outcome on every backend.
struct Report {
    float: Outcome,
    sim: Outcome,
    mpc: Outcome,
}

fn caught<T>(f: impl FnOnce() -> T) -> Result<T, Outcome> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|p| {
        let msg = p.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| p.downcast_ref::<String>().cloned());
        Outcome::Panic(msg.unwrap_or_else(|| "?".into()))
    })
}

fn run_case(case: &Path) -> Report {
    let refused_all = |o: Outcome| Report { float: o.clone(), sim: o.clone(), mpc: o };
    let sets = match data_sets(case) {
        Ok(s) => s,
        Err(e) => return refused_all(Outcome::Refused(format!("unreadable test data: {e}"))),
    };
    let graph = match caught(|| import_float(&case.join("model.onnx"))) {
        Err(panic) => return refused_all(panic),
        Ok(Err(e)) => return refused_all(Outcome::Refused(reason(&e))),
        Ok(Ok(g)) => g,
    };
    let want_shape = &graph.ty(graph.inputs[0]).shape.0;
    if let Some(s) = sets.iter().find(|s| s.input.shape().0 != *want_shape) {
        let o = Outcome::Refused(format!("input of shape {:?}, the model's is {want_shape:?}", s.input.shape().0));
        return refused_all(o);
    }
    let float = caught(|| run_float(&graph, &sets)).unwrap_or_else(|p| p);
    if !matches!(float, Outcome::Pass { .. }) {
        let skip = Outcome::Refused("float does not pass".into());
        return Report { float, sim: skip.clone(), mpc: skip };
    }
    if !sets.iter().all(|s| finite(&s.input) && s.outputs.iter().all(finite)) {
        let skip = Outcome::Refused("non-finite inputs or outputs".into());
        return Report { float, sim: skip.clone(), mpc: skip };
    }
    let samples: Vec<Vec<Tensor>> = sets.iter().map(|s| vec![s.input.clone()]).collect();
    let sim = caught(|| run_sim(&graph, &samples, &sets)).unwrap_or_else(|p| p);
    let mpc = caught(|| run_mpc(&graph, &samples, &sets)).unwrap_or_else(|p| p);
    Report { float, sim, mpc }
}

fn run_float(graph: &Graph, sets: &[DataSet]) -> Outcome {
    let (mut error, mut bound) = (0.0f64, 0.0f64);
    for s in sets {
        let got = match secc_ir::interp::run_graph(graph, std::slice::from_ref(&s.input)) {
            Ok(g) => g,
            Err(e) => return Outcome::Refused(format!("float: {e}")),
        };
        match compare(&got, &s.outputs, float_tol) {
            Ok((e, b)) => (error, bound) = (error.max(e), bound.max(b)),
            Err(e) => return Outcome::Wrong(e),
        }
    }
    Outcome::Pass { error, bound }
}

fn run_sim(graph: &Graph, samples: &[Vec<Tensor>], sets: &[DataSet]) -> Outcome {
    // The pipeline's own stage, without the TFHE lowering after it (slow on large
    // pooling layers, and not what `sim` runs).
    let quantized = match run_stage(Stage::Quantize, graph, samples, &Options::default()) {
        Ok(Output::Graph(g)) => g,
        Ok(_) => unreachable!("quantize makes a graph"),
        Err(e) => return Outcome::Refused(reason(&e)),
    };
    let mut error = 0.0f64;
    for s in sets {
        let got = match secc_ir::interp::run_graph(&quantized, std::slice::from_ref(&s.input)) {
            Ok(g) => g,
            Err(e) => return Outcome::Refused(format!("sim: {e}")),
        };
        let bound = SIM_WRONG * peak(&s.outputs).max(f32::MIN_POSITIVE as f64);
        match compare(&got, &s.outputs, |_| bound) {
            Ok((e, _)) => error = error.max(e),
            Err(e) => return Outcome::Wrong(e),
        }
    }
    let bound = sets.iter().map(|s| SIM_WRONG * peak(&s.outputs)).fold(0.0, f64::max);
    Outcome::Pass { error, bound }
}

fn run_mpc(graph: &Graph, samples: &[Vec<Tensor>], sets: &[DataSet]) -> Outcome {
    let plan = match run_stage(Stage::LowerMpc, graph, samples, &Options::default()) {
        Ok(Output::Plan(p)) => p,
        Ok(_) => unreachable!("lower_mpc makes a plan"),
        Err(e) => return Outcome::Refused(reason(&e)),
    };
    let stated = stated_bound(&plan);
    let flat: Vec<Vec<f32>> =
        sets.iter().map(|s| s.input.as_f32().expect("float input").iter().copied().collect()).collect();
    let reports = match secc_runtime::mpc::session::run_local(&plan, &flat, Duration::from_secs(60), 1) {
        Ok(r) => r,
        Err(e) => return Outcome::Wrong(format!("the parties failed: {e}")),
    };
    let rows = reports[plan.roles.receiver].outputs.as_ref().expect("the receiver gets the outputs");
    let mut error = 0.0f64;
    for (s, row) in sets.iter().zip(rows) {
        let shape = s.outputs[0].shape().0;
        let got = ndarray::ArrayD::from_shape_vec(shape, row.clone());
        let Ok(got) = got else { return Outcome::Wrong(format!("{} output elements", row.len())) };
        match compare(&[Tensor::F32(got)], &s.outputs, |m| stated + float_tol(m)) {
            Ok((e, _)) => error = error.max(e),
            Err(e) => return Outcome::Wrong(format!("{e} (the plan states {stated:.3e})")),
        }
    }
    Outcome::Pass { error, bound: stated }
}

/// One line of the allowlist.
#[derive(Serialize, Deserialize)]
struct Allowed {
    /// The backends the case must pass: `float`, and `sim` and `mpc` where they did.
    backends: Vec<String>,
    /// `sim`'s largest error at bless time (it is deterministic: CI allows 25% more).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sim_error: Option<f64>,
    /// The error bound the SMPC plan stated at bless time: CI holds the run to the
    /// bound its plan states, and that bound to at most 1.5 times this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mpc_bound: Option<f64>,
}

#[derive(Serialize, Deserialize, Default)]
struct Allowlist {
    /// `suite/case` → what it must pass.
    case: BTreeMap<String, Allowed>,
}

#[test]
fn every_allowlisted_case_passes_on_its_backends() {
    let text = std::fs::read_to_string(committed().join("allowlist.toml")).expect("allowlist");
    let list: Allowlist = toml::from_str(&text).expect("allowlist parses");
    assert!(!list.case.is_empty(), "the allowlist is empty");
    // The cases are independent: spread them over the cores.
    let cases: Vec<_> = list.case.iter().collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = cases.len().div_ceil(threads);
    let failures: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = cases.chunks(chunk).map(|part| s.spawn(|| check_cases(part))).collect();
        handles.into_iter().flat_map(|h| h.join().expect("a case panicked outside catch_unwind")).collect()
    });
    assert!(failures.is_empty(), "{} regressions:\n{}", failures.len(), failures.join("\n"));
}

/// Runs allowlisted cases; returns what regressed.
fn check_cases(cases: &[(&String, &Allowed)]) -> Vec<String> {
    let mut failures = Vec::new();
    for &(name, allowed) in cases {
        let r = run_case(&committed().join(name));
        let mut check = |backend: &str, o: &Outcome, limit: Option<f64>| {
            if !allowed.backends.iter().any(|b| b == backend) {
                return;
            }
            match o {
                Outcome::Pass { error, .. } if limit.is_none_or(|l| *error <= l) => {}
                o => failures.push(format!("{name} on {backend}: {o:?} (blessed: {limit:?})")),
            }
        };
        check("float", &r.float, None);
        check("sim", &r.sim, allowed.sim_error.map(|e| e * 1.25 + 1e-6));
        check("mpc", &r.mpc, None);
        // A plan that now states a looser bound than at bless time is a regression too.
        if let (Outcome::Pass { bound, .. }, Some(blessed)) = (&r.mpc, allowed.mpc_bound) {
            if *bound > blessed * 1.5 + 1e-6 {
                failures.push(format!("{name} on mpc: the plan states {bound:.3e}, {blessed:.3e} at bless time"));
            }
        }
    }
    failures
}

/// An exporter may leave node names empty (the backend suite's own models all do):
/// errors then name the node by its index and first output, for an op the frontend
/// refuses by name and for a form of a supported op that tract's translation refuses.
#[test]
fn refusals_name_unnamed_nodes_by_index_and_first_output() {
    for (case, want) in [
        ("test_hardmax_example", "unsupported ONNX op `Hardmax` (node #0 (first output \"y\"))"),
        ("test_averagepool_3d_default", "node #0 (first output \"y\") (SumPool): "),
    ] {
        let e = import_float(&committed().join("refused").join(case).join("model.onnx")).unwrap_err().to_string();
        assert!(e.contains(want), "{case}: {e}");
    }
}

/// The scratch directory's cases of one class (`single_float` or `other`), by suite.
fn index(root: &Path) -> Vec<(String, String, String, String)> {
    let text = std::fs::read_to_string(root.join("index.tsv")).expect("index.tsv: run testdata/onnx_backend.py");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0].to_string(), f[1].to_string(), f[2].to_string(), f.get(3).unwrap_or(&"").to_string())
        })
        .collect()
}

fn dir_size(p: &Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.flatten()
                .map(|e| if e.path().is_dir() { dir_size(&e.path()) } else { e.metadata().map_or(0, |m| m.len()) })
                .sum()
        })
        .unwrap_or(0)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

#[test]
#[ignore = "needs the suite written by testdata/onnx_backend.py; SECC_ONNX_BACKEND=DIR SECC_BLESS=1"]
fn bless() {
    let root = PathBuf::from(std::env::var("SECC_ONNX_BACKEND").expect("SECC_ONNX_BACKEND=scratch dir"));
    let write = std::env::var_os("SECC_BLESS").is_some();
    // Panics are caught and counted; their messages go into the summary, not stderr.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let cases = index(&root);
    let only = std::env::var("SECC_ONNX_BACKEND_ONLY").ok();
    let mut reports: Vec<(String, String, Report)> = Vec::new();
    for (suite, case, class, _) in &cases {
        if class != "single_float" || only.as_ref().is_some_and(|o| !case.contains(o.as_str())) {
            continue;
        }
        let start = std::time::Instant::now();
        let r = run_case(&root.join(suite).join(case));
        let ms = start.elapsed().as_millis();
        eprintln!("{suite}/{case} ({ms} ms): float {:?}, sim {:?}, mpc {:?}", r.float, r.sim, r.mpc);
        reports.push((suite.clone(), case.clone(), r));
    }
    std::panic::set_hook(default_hook);
    let summary = summarize(&cases, &reports);
    println!("{summary}");
    if !write {
        return;
    }
    let out = committed();
    for suite in SUITES {
        if out.join(suite).exists() {
            std::fs::remove_dir_all(out.join(suite)).unwrap();
        }
    }
    let mut list = Allowlist::default();
    let mut skipped = Vec::new();
    for (suite, case, r) in &reports {
        if !matches!(r.float, Outcome::Pass { .. }) {
            continue;
        }
        let from = root.join(suite).join(case);
        if dir_size(&from) > MAX_CASE_BYTES {
            skipped.push(format!("{suite}/{case}"));
            continue;
        }
        copy_dir(&from, &out.join(suite).join(case));
        let mut backends = vec!["float".to_string()];
        let mut allowed = Allowed { backends: vec![], sim_error: None, mpc_bound: None };
        if let Outcome::Pass { error, .. } = r.sim {
            backends.push("sim".into());
            allowed.sim_error = Some(error);
        }
        if let Outcome::Pass { bound, .. } = r.mpc {
            backends.push("mpc".into());
            allowed.mpc_bound = Some(bound);
        }
        allowed.backends = backends;
        list.case.insert(format!("{suite}/{case}"), allowed);
    }
    let header = "# Generated by `SECC_BLESS=1 cargo test --test onnx_backend -- --ignored` (see tests/onnx_backend.rs):\n\
                  # the ONNX backend cases CI runs, the backends each must pass, and what it reached at bless time.\n\n";
    std::fs::write(out.join("allowlist.toml"), format!("{header}{}", toml::to_string(&list).unwrap())).unwrap();
    let skipped = if skipped.is_empty() {
        String::new()
    } else {
        format!("\nPassing but not committed (over {} KiB): {}\n", MAX_CASE_BYTES / 1024, skipped.join(", "))
    };
    std::fs::write(out.join("summary.md"), format!("{summary}{skipped}")).unwrap();
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let start = readme.find(README_BEGIN).expect("README.md has the onnx-backend marker") + README_BEGIN.len();
    let end = start + readme[start..].find(README_END).expect("README.md has the end marker");
    let counts = readme_counts(&summary);
    std::fs::write(&path, format!("{}{counts}{}", &readme[..start], &readme[end..])).unwrap();
}

const README_BEGIN: &str = "<!-- onnx-backend: generated by tests/onnx_backend.rs -->\n";
const README_END: &str = "<!-- end of onnx-backend -->";

/// The README's part of the summary: the counts, and the float refusals with their
/// number of cases (the cases themselves are in summary.md).
fn readme_counts(summary: &str) -> String {
    let mut out = String::new();
    let mut section = "";
    let mut singles = 0;
    for line in summary.lines() {
        if let Some(title) = line.strip_prefix("## ") {
            section = title;
            if section.starts_with("float") {
                out += "\n| cases | float refused: reason |\n|---|---|\n";
            }
            continue;
        }
        if section.is_empty() && line.starts_with('|') {
            let _ = writeln!(out, "{line}");
        } else if section.starts_with("float") && line.starts_with("| ") && !line.starts_with("| cases") {
            let cols: Vec<&str> = line.splitn(4, " | ").collect();
            if cols[0] == "| 1" {
                singles += 1;
            } else {
                let _ = writeln!(out, "{} | {} |", cols[0], cols[1].trim_start_matches("refused: "));
            }
        }
    }
    let _ = writeln!(out, "| {singles} | other reasons, one case each (summary.md) |");
    out
}

/// Counts per suite and backend, then every refusal reason with its cases, most
/// frequent first.
fn summarize(cases: &[(String, String, String, String)], reports: &[(String, String, Report)]) -> String {
    let mut s = String::from("# ONNX backend suite\n\n");
    s += "Single-input float cases (one float input once initializers are left out, float outputs); \
          `sim` and `mpc` are run on the cases `float` passes.\n\n";
    s += "| suite | cases | other cases | single-input float | float pass | refused | wrong | panic | sim pass | sim refused | sim wrong | mpc pass | mpc refused | mpc wrong | panics (sim, mpc) |\n";
    s += "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
    let count = |suite: &str, f: &dyn Fn(&Report) -> &Outcome, kind: &str| {
        reports.iter().filter(|(s, _, r)| (suite == "total" || s == suite) && f(r).kind() == kind).count()
    };
    let floats = |r: &Report| -> bool { matches!(r.float, Outcome::Pass { .. }) };
    for suite in SUITES.iter().chain(&["total"]) {
        let all = cases.iter().filter(|c| *suite == "total" || c.0 == *suite).count();
        let other = cases.iter().filter(|c| (*suite == "total" || c.0 == *suite) && c.2 != "single_float").count();
        let single = reports.iter().filter(|(s, _, _)| *suite == "total" || s == suite).count();
        let of = |f: &dyn Fn(&Report) -> &Outcome, kind: &str| {
            reports
                .iter()
                .filter(|(s, _, r)| (*suite == "total" || s == suite) && floats(r) && f(r).kind() == kind)
                .count()
        };
        let panics = of(&|r| &r.sim, "panic") + of(&|r| &r.mpc, "panic");
        let _ = writeln!(
            s,
            "| {suite} | {all} | {other} | {single} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {panics} |",
            count(suite, &|r| &r.float, "pass"),
            count(suite, &|r| &r.float, "refused"),
            count(suite, &|r| &r.float, "wrong"),
            count(suite, &|r| &r.float, "panic"),
            of(&|r| &r.sim, "pass"),
            of(&|r| &r.sim, "refused"),
            of(&|r| &r.sim, "wrong"),
            of(&|r| &r.mpc, "pass"),
            of(&|r| &r.mpc, "refused"),
            of(&|r| &r.mpc, "wrong"),
        );
    }
    for (backend, pick) in [
        ("float", (|r: &Report| &r.float) as fn(&Report) -> &Outcome),
        ("sim", |r: &Report| &r.sim),
        ("mpc", |r: &Report| &r.mpc),
    ] {
        let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (suite, case, r) in reports {
            if backend != "float" && !floats(r) {
                continue;
            }
            let key = match pick(r) {
                Outcome::Pass { .. } => continue,
                Outcome::Refused(why) => format!("refused: {why}"),
                Outcome::Wrong(why) => format!("WRONG: {why}"),
                Outcome::Panic(why) => format!("PANIC: {why}"),
            };
            let name = if suite == "node" { case.clone() } else { format!("{suite}/{case}") };
            groups.entry(key).or_default().push(name);
        }
        let mut groups: Vec<_> = groups.into_iter().collect();
        groups.sort_by_key(|(k, v)| (std::cmp::Reverse(v.len()), k.clone()));
        let _ = writeln!(s, "\n## {backend}: not passing, by reason\n\n| cases | reason | which |\n|---|---|---|");
        for (k, v) in groups {
            let _ = writeln!(s, "| {} | {} | {} |", v.len(), k.replace('|', "\\|"), v.join(", "));
        }
    }
    s
}
