//! Measuring the cost model's per-operation costs on this machine with probe
//! workloads, each chosen so one term dominates its time:
//!
//! - TFHE, per parameter set: `x[1,128] · W[128,128]` (encryption and decryption per value,
//!   levelled multiply-accumulates), `x[1,1] · W[1,1]` (the client's fixed cost per
//!   inference) and 8 ReLUs per core (bootstrap waves). Each probe is
//!   compiled normally, then its circuit is re-targeted at the set being measured: the
//!   outputs are not checked, only the time.
//! - SMPC, in turn: one ReLU (rounds), 16,384 ReLUs (bytes), then `x · W` on a batch of
//!   64 rows of 256 (multiply-accumulates); each figure is what the earlier ones leave
//!   unexplained.

use super::compile_workload;
use super::measure::{flat, median, run_fhe, run_mpc, KeyCache};
use super::suites::{activation, matmul, Workload};
use anyhow::{anyhow, Context, Result};
use secc_compiler::cost::fhe::{bootstrap_layers, short_set_name};
use secc_compiler::cost::machine::{FheSetCosts, MachineCosts, MpcCosts};
use secc_compiler::cost::mpc::plan_macs;
use secc_ir::lowered::fhe::{catalog, Circuit, KeyLayout, ParamSet};
use secc_ir::ops::UnaryKind;
use secc_ir::Graph;

/// The catalog entry named `name`.
pub fn find_set(name: &str) -> Result<ParamSet> {
    [-128, -64, -40]
        .into_iter()
        .flat_map(catalog)
        .find(|p| p.name == name || short_set_name(&p.name) == name && p.log2_p_fail == -128)
        .ok_or_else(|| anyhow!("unknown parameter set {name} (give a tfhe-rs name such as MESSAGE_1_CARRY_4)"))
}

/// A probe's quantized graph and its circuit, re-targeted at `set`.
fn probe_circuit(w: &Workload, set: &ParamSet) -> Result<(Graph, Circuit)> {
    let c = compile_workload(w)?;
    let mut circuit = c.fhe?;
    circuit.params = vec![set.clone()];
    circuit.partition = Vec::new();
    Ok((c.quantized?, circuit))
}

/// Measures one parameter set's costs.
pub fn measure_fhe_set(set: &ParamSet, cores: usize, keys: &mut KeyCache) -> Result<FheSetCosts> {
    let keys = keys.get(&KeyLayout::single(set.clone()))?;
    // 128 ciphertexts of the largest sets fill the cache, as the bench's bigger rows do.
    let linear = matmul(128);
    let (g, c) = probe_circuit(&linear, set)?;
    let run = run_fhe(&g, &c, keys, &linear.samples[..5], 1, &|| {})?;
    let tables = activation(UnaryKind::Relu, 8 * cores, (-4.0, 4.0));
    let (tg, tc) = probe_circuit(&tables, set)?;
    let waves: usize = bootstrap_layers(&tg, &tc).iter().map(|(n, _)| n.div_ceil(cores)).sum();
    let trun = run_fhe(&tg, &tc, keys, &tables.samples[..5], 1, &|| {})?;
    let lwe_size = keys.server.ksk[0].input_key_lwe_dimension().0 + 1;
    // The client's time is fixed + per value: a one-value probe gives the fixed part.
    let one = matmul(1);
    let (og, oc) = probe_circuit(&one, set)?;
    let orun = run_fhe(&og, &oc, keys, &one.samples[..15], 1, &|| {})?;
    let client = |r: &super::measure::FheRun| (median(&r.encrypt_ms) + median(&r.decrypt_ms)) * 1e3;
    let per_value = (client(&run) - client(&orun)).max(0.0) / 127.0;
    let decrypt_us = median(&run.decrypt_ms) * 1e3 / 128.0;
    Ok(FheSetCosts {
        name: set.name.clone(),
        catalog_cost: set.cost,
        pbs_wave_ms: median(&trun.eval_ms) / waves as f64,
        mac_ns: median(&run.eval_ms) * 1e6 * cores as f64 / c.stats.levelled_macs as f64,
        inference_us: (client(&orun) - per_value).max(0.0),
        encrypt_us: per_value - decrypt_us,
        decrypt_us,
        ciphertext_bytes: 8 * lwe_size as u64,
    })
}

/// One SMPC probe: median time of a run on `batch` rows, and its rounds, bytes (all
/// parties) and multiply-accumulates.
fn mpc_probe(w: &Workload, batch: usize) -> Result<(f64, f64, f64, f64)> {
    let plan = compile_workload(w)?.mpc?;
    let rows: Vec<Vec<f32>> = w.samples.iter().cycle().take(batch).map(|s| flat(s)).collect();
    let run = run_mpc(&plan, &rows, 20, 100)?;
    let bytes: u64 = run.bytes.iter().sum();
    Ok((median(&run.times_ms), run.rounds as f64, bytes as f64, (plan_macs(&plan) * batch as u64) as f64))
}

/// Measures the SMPC stack's costs on loopback.
pub fn measure_mpc() -> Result<MpcCosts> {
    let (t, rounds, _, _) = mpc_probe(&activation(UnaryKind::Relu, 1, (-4.0, 4.0)), 1).context("rounds probe")?;
    let round_us = t * 1e3 / rounds;
    let (t, rounds, bytes, _) =
        mpc_probe(&activation(UnaryKind::Relu, 16384, (-4.0, 4.0)), 1).context("bytes probe")?;
    let byte_ns = ((t - rounds * round_us / 1e3) * 1e6 / bytes).max(0.0);
    let (t, rounds, bytes, macs) = mpc_probe(&matmul(256), 64).context("multiply-accumulate probe")?;
    let mac_ns = ((t - rounds * round_us / 1e3 - bytes * byte_ns / 1e6) * 1e6 / macs).max(0.0);
    Ok(MpcCosts { round_us, byte_ns, mac_ns })
}

/// Measures everything: the SMPC stack and each of `sets`; `status` reports progress.
pub fn measure_costs(sets: &[ParamSet], keys: &mut KeyCache, status: &dyn Fn(&str)) -> Result<MachineCosts> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    status("SMPC probes");
    let mpc = measure_mpc()?;
    let mut fhe = Vec::new();
    for set in sets {
        status(&format!("TFHE probes, {}", short_set_name(&set.name)));
        fhe.push(measure_fhe_set(set, cores, keys).with_context(|| format!("measuring {}", set.name))?);
    }
    Ok(MachineCosts { machine: describe_machine(cores), measured: describe_run(), cores, fhe, mpc })
}

/// The CPU model and core count.
pub fn describe_machine(cores: usize) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    format!("{cpu}, {cores} cores")
}

/// The 1-minute load average (0 where the OS does not say).
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg").ok().and_then(|t| t.split_whitespace().next()?.parse().ok()).unwrap_or(0.0)
}

fn describe_run() -> String {
    let profile = if cfg!(debug_assertions) { "debug build" } else { "release build" };
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    format!("{profile}, load average {:.2}, unix time {secs}", load_average())
}
