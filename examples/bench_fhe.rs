//! TFHE benchmark: per-sample encrypted inference time (median), bootstraps and
//! accuracy on the testdata models, on this machine, release build:
//!
//!     cargo run --release --example bench_fhe -- [N_IMAGES] [FILTER]
//!
//! Prints a Markdown table (the README's). Keys are generated once per model; the
//! time per sample is the server's evaluation (the client's encrypt and decrypt are
//! reported beside it).

use ndarray::{ArrayD, IxDyn};
use secc_compiler::lower::fhe::{lower_fhe, Coverage};
use secc_compiler::passes::calibrate::calibrate;
use secc_compiler::passes::quantize::QuantConfig;
use secc_compiler::pipeline::{compile_float, import_float};
use secc_ir::ops::{Input, Unary, UnaryKind};
use secc_ir::{Graph, Op, Shape, Tensor, TensorType};
use secc_runtime::fhe::exec::{decrypt_sample, encrypt_sample, ServerProgram};
use secc_runtime::fhe::keys::generate_keys;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/models").join(name)
}

fn rows(path: PathBuf, graph: &Graph) -> Vec<Vec<Tensor>> {
    let shape = graph.ty(graph.inputs[0]).shape.clone();
    secc_runtime::csv::read_csv(&path, shape.numel())
        .unwrap()
        .into_iter()
        .map(|r| vec![Tensor::F32(ArrayD::from_shape_vec(IxDyn(&shape.0), r).unwrap())])
        .collect()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

/// 100 ReLUs on encrypted inputs: the table must run on the server.
fn relu100() -> (Graph, Vec<Vec<Tensor>>, Vec<Vec<Tensor>>) {
    let mut g = Graph::new("relu100");
    let ty = TensorType::f32(Shape(vec![1, 100]));
    let x = g.push(Op::Input(Input { index: 0, ty }), vec![], "x").unwrap();
    let y = g.push(Op::Unary(Unary { kind: UnaryKind::Relu }), vec![x], "relu").unwrap();
    g.outputs.push(y);
    let sample = |k: usize| {
        let v: Vec<f32> = (0..100).map(|i| (((i * 37 + k * 11) % 200) as f32 - 100.0) / 25.0).collect();
        vec![Tensor::F32(ArrayD::from_shape_vec(IxDyn(&[1, 100]), v).unwrap())]
    };
    ((g), (0..20).map(sample).collect(), (100..150).map(sample).collect())
}

/// A benchmark row: name, float graph, calibration and test samples, labels, settings.
type Workload = (String, Graph, Vec<Vec<Tensor>>, Vec<Vec<Tensor>>, Option<Vec<f64>>, QuantConfig);

fn main() {
    let n: usize = std::env::args().nth(1).map_or(50, |s| s.parse().expect("N_IMAGES"));
    let filter = std::env::args().nth(2).unwrap_or_default();
    println!("| workload | parameter set (p_fail 2^-128) | bootstraps | keygen s | encrypt ms | eval ms (median) | decrypt ms | accuracy: float → encrypted |");
    println!("|---|---|---|---|---|---|---|---|");
    let mut work: Vec<Workload> = Vec::new();
    for name in ["linreg_2", "linreg_8", "linreg_32", "dense_relu", "cnn_tiny"] {
        let g = import_float(&dir(name).join("model.onnx")).unwrap();
        let calib = rows(dir(name).join("calib.csv"), &g);
        let test: Vec<_> = rows(dir(name).join("test.csv"), &g).into_iter().take(n).collect();
        let labels: Vec<f64> = std::fs::read_to_string(dir(name).join("labels.csv"))
            .unwrap()
            .lines()
            .map(|l| l.trim().parse().unwrap())
            .collect();
        work.push((name.into(), g, calib, test, Some(labels), QuantConfig::default()));
    }
    for table_bits in [5, 4] {
        let (g, calib, test) = relu100();
        let cfg = QuantConfig { output_tables: true, table_bits, ..QuantConfig::default() };
        work.push((format!("100 ReLU, {table_bits}-bit tables"), g, calib, test, None, cfg));
    }
    work.retain(|w| w.0.contains(&filter));

    for (name, g, calib, test, labels, cfg) in work {
        let c = compile_float(g, &calib, &cfg).unwrap();
        let q = &c.quantized;
        let observed = calibrate(q, &calib).unwrap();
        let circuit = lower_fhe(q, -128, Coverage::Calibrated, &observed).unwrap();
        let t = Instant::now();
        let (ck, sk) = generate_keys(&circuit.params.name).unwrap();
        let keygen = t.elapsed();
        let program = ServerProgram::new(q, &circuit, &sk).unwrap();
        let (mut enc, mut ev, mut dec) = (vec![], vec![], vec![]);
        let (mut fhe_out, mut float_out) = (vec![], vec![]);
        for x in &test {
            let t = Instant::now();
            let cts = encrypt_sample(q, &circuit, &ck, x).unwrap();
            enc.push(t.elapsed());
            let t = Instant::now();
            let out = program.evaluate(cts, &|| {}).unwrap();
            ev.push(t.elapsed());
            let t = Instant::now();
            fhe_out.push(decrypt_sample(q, &circuit, &ck, &out).unwrap()[0].to_f64_vec());
            dec.push(t.elapsed());
            float_out.push(secc_runtime::clear::run_graph(&c.float, x).unwrap()[0].to_f64_vec());
        }
        let accuracy = match labels {
            Some(l) if name.starts_with("linreg") => {
                let rmse = |o: &[Vec<f64>]| {
                    (o.iter().zip(&l).map(|(o, l)| (o[0] - l).powi(2)).sum::<f64>() / o.len() as f64).sqrt()
                };
                format!("RMSE {:.2} → {:.2}", rmse(&float_out), rmse(&fhe_out))
            }
            Some(l) => {
                let acc = |o: &[Vec<f64>]| {
                    let am = |v: &Vec<f64>| v.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
                    100.0 * o.iter().zip(&l).filter(|(o, &l)| am(o) == l as usize).count() as f64 / o.len() as f64
                };
                format!("{:.1}% → {:.1}%", acc(&float_out), acc(&fhe_out))
            }
            None => {
                let err = fhe_out
                    .iter()
                    .flatten()
                    .zip(float_out.iter().flatten())
                    .map(|(a, b)| (a - b).abs())
                    .fold(0f64, f64::max);
                format!("max abs error {err:.3}")
            }
        };
        println!(
            "| {name} ({} samples) | {} | {} | {:.1} | {} | {} | {} | {accuracy} |",
            test.len(),
            circuit.params.name.trim_start_matches("V1_6_PARAM_").trim_end_matches("_KS_PBS_GAUSSIAN_2M128"),
            circuit.stats.pbs,
            keygen.as_secs_f64(),
            ms(median(enc)),
            ms(median(ev)),
            ms(median(dec)),
        );
    }
}
