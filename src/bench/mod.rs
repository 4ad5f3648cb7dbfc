//! `secc bench`: every workload of the chosen suites compiled by the normal pipeline,
//! run under TFHE (real keys, real bootstraps) and SMPC (three parties on loopback
//! sockets), timed, checked against the float IR, and set against the cost model's
//! predictions; [`report`] writes the results as JSON, Markdown and charts.

pub mod calibrate;
mod chart;
pub mod measure;
pub mod report;
pub mod suites;

use anyhow::Result;
use measure::{flat, median, run_fhe, run_mpc, KeyCache};
use report::{Accuracy, FheResult, MpcResult, Outcome, Row};
use secc_compiler::cost::fhe::{predict_fhe, short_set_name};
use secc_compiler::cost::machine::MachineCosts;
use secc_compiler::cost::mpc::predict_mpc;
use secc_compiler::cost::Network;
use secc_compiler::pipeline::{compile_float, Compiled, Options};
use secc_compiler::CompileError;
use secc_ir::lowered::fhe::ParamSet;
use secc_ir::Tensor;
use suites::{Scale, Workload};

/// How often each backend runs a row at a scale.
struct Repeats {
    /// Most timed TFHE inferences of a row.
    fhe_max: usize,
    /// Time to spend on a row's timed TFHE inferences, by the prediction, ms.
    fhe_budget_ms: f64,
    /// Untimed SMPC runs first.
    mpc_warmup: usize,
    /// Timed SMPC runs.
    mpc_reps: usize,
    /// Samples the SMPC accuracy check runs on (one batch).
    mpc_accuracy: usize,
}

impl Repeats {
    fn of(scale: Scale) -> Repeats {
        match scale {
            Scale::Smoke => Repeats { fhe_max: 1, fhe_budget_ms: 0.0, mpc_warmup: 0, mpc_reps: 1, mpc_accuracy: 1 },
            Scale::Quick => Repeats { fhe_max: 15, fhe_budget_ms: 5e3, mpc_warmup: 10, mpc_reps: 50, mpc_accuracy: 20 },
            Scale::Full => {
                Repeats { fhe_max: 30, fhe_budget_ms: 40e3, mpc_warmup: 20, mpc_reps: 100, mpc_accuracy: 100 }
            }
        }
    }

    /// Timed TFHE inferences for a row predicted at `ms`, and whether to warm up first
    /// (the first bootstraps of a fresh key page it in).
    fn fhe(&self, ms: f64) -> (usize, usize) {
        let reps = ((self.fhe_budget_ms / ms.max(1e-3)) as usize).clamp(1, self.fhe_max);
        let warmup = usize::from(self.fhe_max > 1 && ms * 4.0 < self.fhe_budget_ms);
        (reps, warmup)
    }
}

/// Runs one workload under both backends; `status` reports progress.
pub fn bench_row(w: &Workload, scale: Scale, costs: &MachineCosts, keys: &mut KeyCache, status: &dyn Fn(&str)) -> Row {
    let compiled = match compile_workload(w) {
        Ok(c) => c,
        Err(e) => return Row::unsupported(w.suite, &w.name, &w.x, &format!("does not compile: {e}")),
    };
    let reps = Repeats::of(scale);
    status("fhe");
    let fhe = bench_fhe(w, &compiled, costs, keys, &reps).into();
    status("mpc");
    let mpc = bench_mpc(w, &compiled, costs, &reps).into();
    Row::new(w.suite, &w.name, &w.x, fhe, mpc)
}

fn bench_fhe(
    w: &Workload,
    c: &Compiled,
    costs: &MachineCosts,
    keys: &mut KeyCache,
    reps: &Repeats,
) -> Result<FheResult, String> {
    let circuit = c.fhe.as_ref().map_err(|e| e.to_string())?;
    let q = c.quantized.as_ref().expect("a circuit is lowered from the quantized IR");
    let predicted = predict_fhe(q, circuit, costs, Network::LOOPBACK);
    let (n, warmup) = reps.fhe(predicted.total_ms);
    let samples = &w.samples[..n.min(w.samples.len())];
    let keys = keys.get(&circuit.key_layout(q)).map_err(|e| format!("{e:#}"))?;
    let run = run_fhe(q, circuit, keys, samples, warmup, &|| {}).map_err(|e| format!("{e:#}"))?;
    let totals = run.totals_ms();
    Ok(FheResult {
        params: circuit.params.iter().map(|s| short_set_name(&s.name)).collect::<Vec<_>>().join(" + "),
        bootstraps: circuit.stats.pbs,
        keygen_s: keys.keygen_s,
        repetitions: totals.len(),
        median_ms: median(&totals),
        min_ms: totals.iter().copied().fold(f64::INFINITY, f64::min),
        encrypt_ms: median(&run.encrypt_ms),
        eval_ms: median(&run.eval_ms),
        decrypt_ms: median(&run.decrypt_ms),
        predicted_ms: predicted.total_ms,
        prediction: predicted.to_string(),
        predicted_remote_ms: [Network::LAN, Network::WAN].map(|n| predict_fhe(q, circuit, costs, n).total_ms),
        accuracy: accuracy(c, samples, &run.outputs),
    })
}

fn bench_mpc(w: &Workload, c: &Compiled, costs: &MachineCosts, reps: &Repeats) -> Result<MpcResult, String> {
    let plan = c.mpc.as_ref().map_err(|e| e.to_string())?;
    let predicted = predict_mpc(plan, 1, costs, Network::LOOPBACK);
    let timed = run_mpc(plan, &[flat(&w.samples[0])], reps.mpc_warmup, reps.mpc_reps).map_err(|e| format!("{e:#}"))?;
    let batch = &w.samples[..reps.mpc_accuracy.min(w.samples.len())];
    let rows: Vec<Vec<f32>> = batch.iter().map(|s| flat(s)).collect();
    let checked = run_mpc(plan, &rows, 0, 1).map_err(|e| format!("{e:#}"))?;
    let outputs: Vec<Vec<f64>> = checked.outputs.iter().map(|r| r.iter().map(|&v| v as f64).collect()).collect();
    let cost = plan.total(1);
    Ok(MpcResult {
        rounds: timed.rounds,
        bytes: timed.bytes,
        plan_matches: timed.rounds == cost.rounds && timed.bytes == cost.bytes,
        repetitions: timed.times_ms.len(),
        median_ms: median(&timed.times_ms),
        min_ms: timed.times_ms.iter().copied().fold(f64::INFINITY, f64::min),
        predicted_ms: predicted.total_ms,
        prediction: predicted.to_string(),
        predicted_remote_ms: [Network::LAN, Network::WAN].map(|n| predict_mpc(plan, 1, costs, n).total_ms),
        accuracy: accuracy(c, batch, &outputs),
    })
}

/// A workload compiled as `secc compile` compiles it with the workload's quantizer
/// settings and the default lowering settings.
pub fn compile_workload(w: &Workload) -> Result<Compiled, CompileError> {
    compile_float(w.graph.clone(), &w.calib, &Options { quant: w.quant.clone(), ..Options::default() })
}

/// The parameter sets the workloads' circuits use, in first-use order.
pub fn sets_used(workloads: &[&Workload]) -> Vec<ParamSet> {
    let mut sets: Vec<ParamSet> = Vec::new();
    for w in workloads {
        if let Ok(c) = compile_workload(w).and_then(|c| c.fhe) {
            for set in c.params {
                if !sets.iter().any(|s| s.name == set.name) {
                    sets.push(set);
                }
            }
        }
    }
    sets
}

/// How far `outputs` (one row per sample) are from the float IR's on `samples`.
fn accuracy(c: &Compiled, samples: &[Vec<Tensor>], outputs: &[Vec<f64>]) -> Accuracy {
    let argmax = |v: &[f64]| v.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i);
    let (mut max_abs_error, mut agree, mut multi) = (0f64, 0, false);
    for (s, out) in samples.iter().zip(outputs) {
        let want: Vec<f64> = secc_ir::interp::run_graph(&c.float, s)
            .expect("the float IR runs its own samples")
            .iter()
            .flat_map(Tensor::to_f64_vec)
            .collect();
        max_abs_error = want.iter().zip(out).map(|(a, b)| (a - b).abs()).fold(max_abs_error, f64::max);
        multi = want.len() > 1;
        agree += usize::from(argmax(&want) == argmax(out));
    }
    let n = outputs.len();
    Accuracy { samples: n, max_abs_error, argmax_agreement: multi.then(|| agree as f64 / n as f64) }
}

impl<T> From<Result<T, String>> for Outcome<T> {
    fn from(r: Result<T, String>) -> Self {
        match r {
            Ok(t) => Outcome::Measured(t),
            Err(reason) => Outcome::NotSupported { reason },
        }
    }
}
