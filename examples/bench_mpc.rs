//! Benchmark of the SMPC backend (release build, not a test):
//!
//!     cargo run --release --example bench_mpc [-- --repeats N] [--only NAME]
//!
//! Each workload is compiled here by the pipeline (ONNX → float IR → ... → SMPC plan, as
//! `secc compile` + `secc run --backend mpc` do), then the three parties run in one
//! session on loopback TLS links, a thread each (`run_local`): a few warm-up runs of
//! the plan, then `--repeats` timed ones. Every run re-shares the input and the weights,
//! so a run is one whole private inference. With `--processes` the parties are three
//! `secc party` processes instead (the release binary; `cargo build --release` first). Reported per run: the median over the timed
//! runs of the slowest party's time, the rounds and bytes each party really sent (checked
//! against the plan's cost model), and the largest absolute difference between the
//! revealed outputs and the float IR's on the same samples.

use ndarray::{ArrayD, IxDyn};
use secc_compiler::pipeline::{compile_float, import_float, Options};
use secc_ir::lowered::mpc::{Plan, StepOp};
use secc_ir::ops::{Input, Unary, UnaryKind};
use secc_ir::{Graph, Op, Shape, Tensor, TensorType};
use secc_runtime::mpc::session::run_local;
use std::path::PathBuf;
use std::time::Duration;

const WARMUP: usize = 5;

/// One benchmark workload: a float graph, its calibration ranges and the samples of one run.
struct Workload {
    name: String,
    graph: Graph,
    plan: Plan,
    samples: Vec<Vec<f32>>,
    target: &'static str,
    spu: &'static str,
}

struct Row {
    name: String,
    batch: usize,
    median_ms: f64,
    min_ms: f64,
    rounds: u64,
    bytes: [u64; 3],
    max_err: f64,
    target: &'static str,
    spu: &'static str,
    note: String,
}

fn model_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/models").join(name)
}

fn tensor(graph: &Graph, row: &[f32]) -> Tensor {
    let shape = &graph.ty(graph.inputs[0]).shape;
    Tensor::F32(ArrayD::from_shape_vec(IxDyn(&shape.0), row.to_vec()).expect("sample length"))
}

/// The SMPC plan `secc compile` makes of `graph` calibrated on `calib`.
fn compiled_plan(graph: &Graph, calib: &[Vec<Tensor>]) -> Plan {
    compile_float(graph.clone(), calib, &Options::default()).expect("compiles").mpc.expect("has an SMPC plan")
}

/// A testdata model: its float IR, calibrated on its `calib.csv`, and the first `n` test rows.
fn testdata(name: &str, n: usize, target: &'static str, spu: &'static str) -> Workload {
    let dir = model_dir(name);
    let graph = import_float(&dir.join("model.onnx")).expect("testdata models import");
    let numel = graph.ty(graph.inputs[0]).shape.numel();
    let calib = secc_runtime::csv::read_csv(&dir.join("calib.csv"), numel).expect("calib.csv");
    let calib: Vec<Vec<Tensor>> = calib.iter().map(|r| vec![tensor(&graph, r)]).collect();
    let plan = compiled_plan(&graph, &calib);
    let mut samples = secc_runtime::csv::read_csv(&dir.join("test.csv"), numel).expect("test.csv");
    samples.truncate(n);
    assert_eq!(samples.len(), n, "{name}: not enough test rows");
    Workload { name: name.to_string(), graph, plan, samples, target, spu }
}

/// Uniform numbers in [lo, hi) from a fixed xorshift stream.
fn uniform(state: &mut u64, n: usize, lo: f64, hi: f64) -> Vec<f32> {
    (0..n)
        .map(|_| {
            *state ^= *state << 13;
            *state ^= *state >> 7;
            *state ^= *state << 17;
            (lo + (hi - lo) * (*state >> 11) as f64 / (1u64 << 53) as f64) as f32
        })
        .collect()
}

/// `f32[1, n]` → one activation, calibrated on 64 rows uniform in [lo, hi]; the
/// measured row is drawn uniform in `eval` (the calibrated range, or wider to show
/// the linear tails beyond it).
fn activation(
    kind: UnaryKind,
    n: usize,
    (lo, hi): (f64, f64),
    eval: (f64, f64),
    target: &'static str,
    spu: &'static str,
) -> Workload {
    let mut g = Graph::new(format!("{}_{n}", kind.mnemonic()));
    let ty = TensorType::f32(Shape(vec![1, n]));
    let x = g.push(Op::Input(Input { index: 0, ty }), vec![], "x").expect("input");
    let y = g.push(Op::Unary(Unary { kind }), vec![x], kind.mnemonic()).expect("activation");
    g.outputs.push(y);
    let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ n as u64;
    let mut calib: Vec<Vec<Tensor>> = (0..64).map(|_| vec![tensor(&g, &uniform(&mut rng, n, lo, hi))]).collect();
    // Make sure the calibrated range is exactly [lo, hi].
    let mut edges = vec![lo as f32; n];
    edges[n - 1] = hi as f32;
    calib.push(vec![tensor(&g, &edges)]);
    let plan = compiled_plan(&g, &calib);
    let samples = vec![uniform(&mut rng, n, eval.0, eval.1)];
    let name = if eval == (lo, hi) {
        format!("{n} × {}, x in [{lo}, {hi}]", kind.mnemonic())
    } else {
        format!("{n} × {} calibrated on [{lo}, {hi}], x in [{}, {}]", kind.mnemonic(), eval.0, eval.1)
    };
    Workload { name, graph: g, plan, samples, target, spu }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// What a session measured: per party, per run, (rounds, bytes sent, milliseconds); and
/// the receiver's outputs of the last run.
struct Measured {
    runs: [Vec<(u64, u64, f64)>; 3],
    outputs: Vec<Vec<f32>>,
}

/// The three parties as threads of this process (`run_local`).
fn in_threads(plan: &Plan, w: &Workload, runs: usize) -> Measured {
    let reports =
        run_local(plan, &w.samples, Duration::from_secs(60), runs).unwrap_or_else(|e| panic!("{}: {e}", w.name));
    let per = |id: usize| -> Vec<(u64, u64, f64)> {
        reports[id].runs.iter().map(|(t, d)| (t.rounds, t.bytes, d.as_secs_f64() * 1e3)).collect()
    };
    let outputs = reports[plan.roles.receiver].outputs.clone().expect("the receiver gets the outputs");
    Measured { runs: [per(0), per(1), per(2)], outputs }
}

/// The three parties as `secc party` processes (the release binary next to this
/// example), reading their plans, PARTIES.toml and the samples from a scratch folder;
/// their own per-run reports on standard error are parsed.
fn in_processes(plan: &Plan, w: &Workload, runs: usize) -> Measured {
    let exe = std::env::current_exe().expect("own path");
    let secc = exe.parent().and_then(|d| d.parent()).expect("target/release/examples").join("secc");
    assert!(secc.exists(), "{} not found: run `cargo build --release` first", secc.display());
    let dir = std::env::temp_dir().join(format!("secc-bench-mpc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch folder");
    std::fs::write(dir.join("owner.plan"), plan.to_bytes()).expect("write plan");
    std::fs::write(dir.join("other.plan"), plan.weightless().to_bytes()).expect("write plan");
    std::fs::write(dir.join("x.csv"), secc_runtime::csv::format_csv(&w.samples)).expect("write samples");
    let ports: Vec<u16> = (0..3)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("port").port())
        .collect();
    let addrs: Vec<String> = ports.iter().map(|p| format!("\"127.0.0.1:{p}\"")).collect();
    // Each party's TLS key, and its certificate's pin for PARTIES.toml.
    let pins: Vec<String> = (0..3)
        .map(|id| {
            let key = format!("p{id}.key");
            let out = std::process::Command::new(&secc)
                .current_dir(&dir)
                .args(["party-keygen", "-o", &key, "--force"])
                .output()
                .expect("secc party-keygen");
            format!("\"{}\"", String::from_utf8_lossy(&out.stdout).trim())
        })
        .collect();
    let toml = format!("parties = [{}]\npins = [{}]\n", addrs.join(", "), pins.join(", "));
    std::fs::write(dir.join("parties.toml"), toml).expect("write parties");
    let children: Vec<_> = (0..3)
        .map(|id| {
            let file = if id == plan.roles.model_owner { "owner.plan" } else { "other.plan" };
            let mut c = std::process::Command::new(&secc);
            c.current_dir(&dir)
                .args(["party", file, "--id", &id.to_string(), "--parties", "parties.toml", "--timeout", "60"])
                .args(["--repeat", &runs.to_string(), "--key", &format!("p{id}.key")])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped());
            if id == plan.roles.data_owner {
                c.args(["--input", "x.csv"]);
            }
            if id == plan.roles.receiver {
                c.args(["-o", "y.csv", "--force"]);
            }
            c.spawn().expect("spawn secc party")
        })
        .collect();
    let runs: Vec<Vec<(u64, u64, f64)>> = children
        .into_iter()
        .enumerate()
        .map(|(id, c)| {
            let out = c.wait_with_output().expect("party output");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{}: party {id} failed: {err}", w.name);
            // "party I: T ms, R rounds, B bytes sent in M messages (set-up: ...)"
            err.lines()
                .filter_map(|l| l.strip_prefix(&format!("party {id}: ")))
                .map(|l| {
                    let words: Vec<&str> = l.split_whitespace().collect();
                    let num = |i: usize| words[i].trim_end_matches(',');
                    (num(2).parse().expect("rounds"), num(4).parse().expect("bytes"), num(0).parse().expect("ms"))
                })
                .collect()
        })
        .collect();
    let out_len: usize = plan.output_shape.iter().product();
    let outputs = secc_runtime::csv::read_csv(&dir.join("y.csv"), out_len).expect("the receiver's outputs");
    std::fs::remove_dir_all(&dir).ok();
    Measured { runs: runs.try_into().expect("three parties"), outputs }
}

fn bench(w: &Workload, repeats: usize, processes: bool) -> Row {
    let plan = &w.plan;
    let warmup = WARMUP.min(repeats);
    let m = if processes { in_processes(plan, w, warmup + repeats) } else { in_threads(plan, w, warmup + repeats) };
    // Per run: the slowest party's time (all three run the same rounds).
    let mut times: Vec<f64> =
        (warmup..warmup + repeats).map(|i| m.runs.iter().map(|r| r[i].2).fold(0.0, f64::max)).collect();
    let min_ms = times.iter().copied().fold(f64::INFINITY, f64::min);
    let median_ms = median(&mut times);
    let batch = w.samples.len();
    let cost = plan.total(batch);
    let traffic: Vec<(u64, u64)> = m.runs.iter().map(|r| (r[warmup].0, r[warmup].1)).collect();
    let mut note = String::new();
    for (id, &(rounds, bytes)) in traffic.iter().enumerate() {
        if rounds != cost.rounds || bytes != cost.bytes[id] {
            note = format!("party {id} sent {rounds} rounds / {bytes} bytes, the plan says {cost}");
        }
    }
    let outputs = &m.outputs;
    let mut max_err: f64 = 0.0;
    for (x, y) in w.samples.iter().zip(outputs) {
        let want = secc_ir::interp::run_graph(&w.graph, &[tensor(&w.graph, x)]).expect("float IR")[0].to_f64_vec();
        for (a, b) in y.iter().zip(&want) {
            max_err = max_err.max((*a as f64 - b).abs());
        }
    }
    let fits: Vec<f64> = plan
        .steps
        .iter()
        .filter_map(|s| match &s.op {
            StepOp::Piecewise { function, .. } => Some(function.max_error),
            _ => None,
        })
        .collect();
    eprintln!(
        "{}: plan {} steps, {}; {} runs after {} warm-up: median {:.3} ms, min {:.3} ms{}",
        w.name,
        plan.steps.len(),
        cost,
        repeats,
        warmup,
        median_ms,
        min_ms,
        if fits.is_empty() { String::new() } else { format!("; piecewise fit bounds {fits:?}") }
    );
    Row {
        name: w.name.clone(),
        batch,
        median_ms,
        min_ms,
        rounds: traffic[0].0,
        bytes: [traffic[0].1, traffic[1].1, traffic[2].1],
        max_err,
        target: w.target,
        spu: w.spu,
        note,
    }
}

fn kib(b: u64) -> String {
    if b < 10 * 1024 {
        format!("{b} B")
    } else {
        format!("{:.1} KiB", b as f64 / 1024.0)
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let repeats: usize = flag("--repeats").map_or(20, |r| r.parse().expect("--repeats N"));
    let only = flag("--only");
    let processes = args.iter().any(|a| a == "--processes");

    use UnaryKind::{Gelu, Sigmoid};
    const SIG: (f64, f64) = (-8.0, 8.0);
    const GELU: (f64, f64) = (-5.0, 5.0);
    type Make = fn() -> Workload;
    let workloads: [(&str, Make); 11] = [
        ("linreg_2", || testdata("linreg_2", 1, "≤ 1 ms", "27-30 ms")),
        ("linreg_8", || testdata("linreg_8", 1, "≤ 1 ms", "27-30 ms")),
        ("linreg_32", || testdata("linreg_32", 1, "≤ 1 ms", "27-30 ms")),
        ("dense_relu", || testdata("dense_relu", 1, "≤ 5 ms", "61 ms")),
        ("dense_gelu", || testdata("dense_gelu", 1, "≤ 5 ms", "440 ms")),
        ("cnn", || testdata("cnn", 1, "≤ 10 ms", "76 ms")),
        ("cnn_tiny", || testdata("cnn_tiny", 1, "≤ 10 ms", "76 ms")),
        ("cnn_tiny_100", || testdata("cnn_tiny", 100, "≤ 1 s", "—")),
        ("sigmoid", || activation(Sigmoid, 100, SIG, SIG, "≤ 5 ms, err ≤ 1e-3", "35 ms, 9e-4")),
        ("sigmoid_wide", || activation(Sigmoid, 100, SIG, (-24.0, 24.0), "err ≤ 1e-3", "—")),
        ("gelu", || activation(Gelu, 100, GELU, GELU, "≤ 10 ms", "185 ms")),
    ];

    let mut rows = Vec::new();
    for (key, make) in &workloads {
        if only.as_deref().is_some_and(|o| o != *key) {
            continue;
        }
        let w = make();
        // A batch of 100 takes as long as a hundred single runs: fewer repeats.
        let n = if w.samples.len() > 1 { repeats.div_ceil(4).max(3) } else { repeats };
        rows.push(bench(&w, n, processes));
    }

    let how = if processes { "three `secc party` processes" } else { "three threads" };
    println!("SMPC backend, {how} on loopback TLS, {repeats} timed runs after {WARMUP} warm-up\n");
    println!("| workload | batch | median per run | per sample | rounds | bytes sent P0 / P1 / P2 | max abs error vs float IR | target | SPU 0.9.5 |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {:.3} ms (min {:.3}) | {:.3} ms | {} | {} / {} / {} | {:.1e} | {} | {} |",
            r.name,
            r.batch,
            r.median_ms,
            r.min_ms,
            r.median_ms / r.batch as f64,
            r.rounds,
            kib(r.bytes[0]),
            kib(r.bytes[1]),
            kib(r.bytes[2]),
            r.max_err,
            r.target,
            r.spu
        );
    }
    for r in rows.iter().filter(|r| !r.note.is_empty()) {
        println!("\nwarning: {}: {}", r.name, r.note);
    }
}
