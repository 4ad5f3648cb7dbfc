//! Timing private inferences for real: TFHE with fresh keys and real bootstraps, SMPC
//! with three parties on loopback sockets (`run_local`). Shared by `secc bench` and
//! `secc calibrate-costs`.

use anyhow::{Context, Result};
use secc_ir::client_spec::ClientSpec;
use secc_ir::lowered::fhe::{Circuit, KeyLayout};
use secc_ir::lowered::mpc::Plan;
use secc_ir::{Graph, Tensor};
use secc_runtime::fhe::exec::{decrypt_sample, encrypt_sample, ServerProgram};
use secc_runtime::fhe::keys::{generate_local_keys, ClientKey, ServerKey};
use secc_runtime::mpc::session::run_local;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The keys of one key layout and what generating them took.
pub struct Keys {
    /// The client's secret key.
    pub client: ClientKey,
    /// The server's evaluation keys.
    pub server: ServerKey,
    /// Seconds key generation took.
    pub keygen_s: f64,
}

/// Keys by key layout, generated on first use: rows with the same layout share them.
#[derive(Default)]
pub struct KeyCache(HashMap<String, Keys>);

impl KeyCache {
    /// The keys of `layout`, generated now if this is its first use.
    pub fn get(&mut self, layout: &KeyLayout) -> Result<&Keys> {
        let name = layout.name();
        if !self.0.contains_key(&name) {
            let t = Instant::now();
            let (client, server) = generate_local_keys(layout).with_context(|| format!("key generation for {name}"))?;
            self.0.insert(name.clone(), Keys { client, server, keygen_s: t.elapsed().as_secs_f64() });
        }
        Ok(&self.0[&name])
    }
}

/// Per-sample times of TFHE inferences (client encryption, server evaluation, client
/// decryption), in ms, and the decrypted outputs.
pub struct FheRun {
    /// Encryption of each timed sample.
    pub encrypt_ms: Vec<f64>,
    /// Evaluation of each timed sample.
    pub eval_ms: Vec<f64>,
    /// Decryption of each timed sample.
    pub decrypt_ms: Vec<f64>,
    /// The outputs of each timed sample, flattened.
    pub outputs: Vec<Vec<f64>>,
}

impl FheRun {
    /// Whole inferences: encrypt + evaluate + decrypt, per sample.
    pub fn totals_ms(&self) -> Vec<f64> {
        (0..self.eval_ms.len()).map(|i| self.encrypt_ms[i] + self.eval_ms[i] + self.decrypt_ms[i]).collect()
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Runs `samples` one by one through `circuit` (over the quantized `graph`) under
/// `keys`, after `warmup` untimed runs of the first; `on_pbs` ticks per bootstrap.
pub fn run_fhe(
    graph: &Graph,
    circuit: &Circuit,
    keys: &Keys,
    samples: &[Vec<Tensor>],
    warmup: usize,
    on_pbs: &(dyn Fn() + Sync),
) -> Result<FheRun> {
    let program = ServerProgram::new(graph, circuit, &keys.server)?;
    let spec = ClientSpec::new(graph, circuit, [0; 32])?;
    let mut run = FheRun { encrypt_ms: vec![], eval_ms: vec![], decrypt_ms: vec![], outputs: vec![] };
    let order = std::iter::repeat_n(&samples[0], warmup).chain(samples);
    for (i, x) in order.enumerate() {
        let t = Instant::now();
        let cts = encrypt_sample(&spec, &keys.client, x)?;
        let encrypt = t.elapsed();
        let t = Instant::now();
        let out = program.evaluate(cts, on_pbs)?;
        let eval = t.elapsed();
        let t = Instant::now();
        let clear = decrypt_sample(&spec, &keys.client, &out)?;
        let decrypt = t.elapsed();
        if i >= warmup {
            run.encrypt_ms.push(ms(encrypt));
            run.eval_ms.push(ms(eval));
            run.decrypt_ms.push(ms(decrypt));
            run.outputs.push(clear.iter().flat_map(Tensor::to_f64_vec).collect());
        }
    }
    Ok(run)
}

/// What an SMPC session measured.
pub struct MpcRun {
    /// Per timed run, the slowest party's time, ms.
    pub times_ms: Vec<f64>,
    /// Rounds of one run (every party runs the same rounds).
    pub rounds: u64,
    /// Bytes each party sent in one run.
    pub bytes: [u64; 3],
    /// The receiver's outputs of the last run, one row per sample.
    pub outputs: Vec<Vec<f32>>,
}

/// Runs `plan` on the batch `samples` in one loopback session of three parties (a
/// thread each, with its own sockets): `warmup` untimed runs, then `reps` timed ones.
pub fn run_mpc(plan: &Plan, samples: &[Vec<f32>], warmup: usize, reps: usize) -> Result<MpcRun> {
    let reports = run_local(plan, samples, Duration::from_secs(120), warmup + reps)?;
    let times_ms =
        (warmup..warmup + reps).map(|i| reports.iter().map(|r| ms(r.runs[i].1)).fold(0.0, f64::max)).collect();
    let first = |id: usize| reports[id].runs[warmup].0;
    Ok(MpcRun {
        times_ms,
        rounds: first(0).rounds,
        bytes: [first(0).bytes, first(1).bytes, first(2).bytes],
        outputs: reports[plan.roles.receiver].outputs.clone().expect("the receiver gets the outputs"),
    })
}

/// The median (the mean of the middle two for an even count).
pub fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    assert!(n > 0, "the median of nothing");
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// A sample as the flat row the SMPC runtime takes.
pub fn flat(sample: &[Tensor]) -> Vec<f32> {
    sample[0].as_f32().expect("float input").iter().copied().collect()
}
