//! The structural ops (1-D conv and pooling, convs without bias, global and ceil-mode
//! pooling, padded average pooling, flattening under a dynamic batch, concat, chunk,
//! transpose, slicing, padding, reductions) on torch nets exported by
//! `testdata/make_structural_models.py`: the float IR against onnxruntime, and every
//! backend the model's `meta.json` lists (`sim`, `mpc`; `fhe` is checked on IR
//! filetests and a tiny graph below, the nets being too large for a test under TFHE).

mod common;

use common::*;
use secc_compiler::passes::quantize::QuantConfig;
use secc_compiler::pipeline::import_float;
use std::time::Duration;

/// The structural helper's testdata models.
fn models() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(model_dir(""))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| ["torch_conv1d", "torch_pool", "torch_shape"].iter().any(|p| n.starts_with(p)))
        .collect();
    names.sort();
    assert!(names.len() >= 10, "structural models missing: {names:?}");
    names
}

fn backends(name: &str) -> Vec<String> {
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(model_dir(name).join("meta.json")).unwrap()).unwrap();
    meta["backends"].as_array().unwrap().iter().map(|b| b.as_str().unwrap().to_owned()).collect()
}

#[test]
fn float_ir_matches_onnxruntime() {
    for name in models() {
        let g = import_float(&model_dir(&name).join("model.onnx")).unwrap();
        let xs = samples(&g, &name, "test.csv");
        let expected = rows(&name, "expected.csv", g.ty(g.outputs[0]).shape.numel());
        let mut worst = 0f64;
        for (x, want) in xs.iter().zip(&expected) {
            let y = secc_ir::interp::run_graph(&g, x).unwrap()[0].to_f64_vec();
            for (a, &b) in y.iter().zip(want) {
                worst = worst.max((a - b as f64).abs() / a.abs().max(1.0));
            }
        }
        eprintln!("{name}: float IR vs onnxruntime {worst:.2e}");
        assert!(worst <= 1e-4, "{name}: float IR differs from onnxruntime by {worst}");
    }
}

#[test]
fn simulation_keeps_accuracy_and_stays_in_range() {
    let mut failed = Vec::new();
    for name in models().into_iter().filter(|n| backends(n).iter().any(|b| b == "sim")) {
        let (c, _) = compile(&name, &QuantConfig::default());
        let xs = samples(&c.float, &name, "test.csv");
        let labels = labels(&name);
        let (mut sim, mut float) = (Vec::new(), Vec::new());
        for x in &xs {
            let values = secc_ir::interp::eval_all(c.quantized.as_ref().unwrap(), x).unwrap();
            for (node, v) in c.quantized.as_ref().unwrap().nodes.iter().zip(&values) {
                if let (Some(t), Some(a)) = (node.ty.as_int(), v.as_i64()) {
                    let (lo, hi) = (*a.iter().min().unwrap(), *a.iter().max().unwrap());
                    assert!(t.lo <= lo && hi <= t.hi, "{name}: [{lo}, {hi}] outside {}", node.ty);
                }
            }
            sim.push(values[c.quantized.as_ref().unwrap().outputs[0].index()].to_f64_vec());
            float.push(secc_ir::interp::run_graph(&c.float, x).unwrap()[0].to_f64_vec());
        }
        let (q, f) = (metric("classification", &sim, &labels), metric("classification", &float, &labels));
        eprintln!("{name}: float {f:.4}, simulation {q:.4}");
        if q < f - 0.02 {
            failed.push(format!("{name}: simulated accuracy {q:.4} more than 2 points below float {f:.4}"));
        }
    }
    assert!(failed.is_empty(), "{failed:#?}");
}

#[test]
fn smpc_agrees_with_float_and_sends_what_the_plan_says() {
    const ROWS: usize = 2;
    for name in models().into_iter().filter(|n| backends(n).iter().any(|b| b == "mpc")) {
        let (g, plan) = mpc_plan(&name);
        let xs = samples(&g, &name, "test.csv");
        let flat: Vec<Vec<f32>> = xs[..ROWS].iter().map(|s| s[0].as_f32().unwrap().iter().copied().collect()).collect();
        let reports = secc_runtime::mpc::session::run_local(&plan, &flat, Duration::from_secs(30), 1).unwrap();
        let got = reports[plan.roles.receiver].outputs.as_ref().unwrap();
        for (x, y) in xs.iter().zip(got) {
            let want = secc_ir::interp::run_graph(&g, x).unwrap()[0].to_f64_vec();
            let y: Vec<f64> = y.iter().map(|&v| v as f64).collect();
            let worst = y.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
            eprintln!("{name}: SMPC logits within {worst:.2e} of float");
            assert_eq!(argmax(&y), argmax(&want), "{name}: argmax differs: {y:?} vs {want:?}");
            assert!(worst <= 0.05, "{name}: logits off by {worst}");
        }
        let cost = plan.total(ROWS);
        for r in &reports {
            assert_eq!(r.runs[0].0.rounds, cost.rounds, "{name}: rounds of party {}", r.id);
            assert_eq!(r.runs[0].0.bytes, cost.bytes[r.id], "{name}: bytes of party {}", r.id);
        }
    }
}

#[derive(serde::Deserialize)]
struct Array {
    shape: Vec<usize>,
    data: Vec<f32>,
}

#[derive(serde::Deserialize)]
struct Io {
    inputs: Vec<Array>,
    outputs: Vec<Array>,
}

/// Single-op cases of the ONNX backend node suite (`make_structural_node_cases.py`):
/// the float IR computes the suite's outputs, and every output a Split makes.
#[test]
fn onnx_node_cases_match_the_suite() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/onnx_node_structural");
    let mut names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    names.sort();
    assert!(names.len() >= 50, "node cases missing");
    let mut failed = Vec::new();
    for case in names {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let io: Io = serde_json::from_str(&std::fs::read_to_string(case.join("io.json")).unwrap()).unwrap();
        let g = match import_float(&case.join("model.onnx")) {
            Ok(g) => g,
            Err(e) => {
                failed.push(format!("{name}: {e}"));
                continue;
            }
        };
        let xs: Vec<secc_ir::Tensor> = io
            .inputs
            .iter()
            .map(|a| secc_ir::Tensor::F32(ndarray::ArrayD::from_shape_vec(a.shape.clone(), a.data.clone()).unwrap()))
            .collect();
        let ys = secc_ir::interp::run_graph(&g, &xs).unwrap();
        assert_eq!(ys.len(), io.outputs.len(), "{name}: outputs");
        for (y, want) in ys.iter().zip(&io.outputs) {
            let worst = y.to_f64_vec().iter().zip(&want.data).map(|(a, &b)| (a - b as f64).abs()).fold(0.0, f64::max);
            // 1e-4: some of the suite's expected outputs are rounded to 4 decimals.
            if y.shape().0 != want.shape || worst > 1e-4 {
                failed.push(format!("{name}: shape {} vs {:?}, error {worst}", y.shape(), want.shape));
            }
        }
    }
    assert!(failed.is_empty(), "{failed:#?}");
}

/// Under TFHE with real keys: a ceil-mode average pooling that does not count its
/// padding (an integer sum scaled per window), a table, a transpose with zero padding
/// (a selection of ciphertexts and a constant) and a sum over an axis. The decrypted
/// outputs equal the quantized simulation's up to levelled noise.
#[test]
fn structural_ops_under_encryption() {
    use secc_runtime::fhe::exec::{decrypt_sample, encrypt_sample, ServerProgram};
    let text = r#"graph "t" {
  %0 = input {index=0} : f32[1,1,3,3]  ; "x"
  %1 = avg_pool %0 {kernel=[2,2], strides=[2,2], pads=[1,1,0,0], ceil_mode=true, count_include_pad=false} : f32[1,1,2,2]  ; "pool"
  %2 = relu %1 : f32[1,1,2,2]  ; "act"
  %3 = gather %2 {shape=[1,2,3], index=[0, 2, -1, 1, 3, -1], values=[0.0]} : f32[1,2,3]  ; "pad_t"
  %4 = reduce_sum %3 {axes=[2]} : f32[1,2,1]  ; "sum"
  return %4
}"#;
    let g = secc_ir::parse_graph(text).unwrap();
    let sample = |k: usize| {
        let x: Vec<f32> = (0..9).map(|i| ((i * 7 + k * 5) % 11) as f32 / 5.0 - 0.8).collect();
        vec![secc_ir::Tensor::F32(ndarray::ArrayD::from_shape_vec(vec![1, 1, 3, 3], x).unwrap())]
    };
    let calib: Vec<_> = (0..16).map(sample).collect();
    let c = secc_compiler::pipeline::compile_float(g, &calib, &Default::default()).unwrap();
    let (q, circuit) = (c.quantized.as_ref().unwrap(), c.fhe.as_ref().unwrap());
    assert_eq!(circuit.stats.pbs, 4, "one bootstrap per pooled element");
    let (ck, sk) = secc_runtime::fhe::keys::generate_local_keys(&circuit.key_layout(q)).unwrap();
    let program = ServerProgram::new(q, circuit, &sk).unwrap();
    let spec = secc_ir::client_spec::ClientSpec::new(q, circuit, [0; 32]).unwrap();
    for k in [3, 20] {
        let x = sample(k);
        let sim = secc_ir::interp::run_graph(q, &x).unwrap()[0].to_f64_vec();
        let cts = encrypt_sample(&spec, &ck, &x).unwrap();
        let out = program.evaluate(cts, &|| {}).unwrap();
        let fhe = decrypt_sample(&spec, &ck, &out).unwrap()[0].to_f64_vec();
        let scale = sim.iter().fold(1e-3, |m: f64, v| m.max(v.abs()));
        for (a, b) in fhe.iter().zip(&sim) {
            assert!((a - b).abs() <= 0.05 * scale, "TFHE {fhe:?} vs simulation {sim:?}");
        }
    }
}
