//! int8 QDQ models from onnxruntime's `quantize_static` (testdata/make_qdq_models.py):
//! the float IR is the QDQ model's float meaning (every QuantizeLinear → DequantizeLinear
//! pair a `fake_quant`), checked against onnxruntime run with graph optimizations off
//! (`expected.csv`: it evaluates Q and DQ as written); the quantized IR takes the
//! model's own grids; SMPC runs the float meaning (clamps exact, rounding skipped);
//! TFHE equals the simulation.

mod common;

use common::*;
use secc_compiler::passes::quantize::QuantConfig;
use secc_compiler::pipeline::import_float;
use secc_ir::client_spec::ClientSpec;
use secc_ir::{Op, OpSpec};
use secc_runtime::fhe::exec::{decrypt_sample, decrypt_tensor, encrypt_sample, ServerProgram};
use secc_runtime::fhe::keys::generate_local_keys;
use std::time::Duration;

const QDQ: &[&str] = &["qdq_dense_s8", "qdq_dense_s8_pc", "qdq_dense_u8", "qdq_cnn_s8_pc"];

fn outputs(g: &secc_ir::Graph, xs: &[Vec<secc_ir::Tensor>]) -> Vec<Vec<f64>> {
    xs.iter().map(|x| secc_ir::interp::run_graph(g, x).unwrap()[0].to_f64_vec()).collect()
}

#[test]
fn float_ir_is_the_qdq_models_meaning() {
    for name in QDQ {
        let g = import_float(&model_dir(name).join("model.onnx")).unwrap();
        let fakes = g.nodes.iter().filter(|n| matches!(n.op, Op::FakeQuant(_))).count();
        // Input, each hidden layer's output (its ReLU folded into the clamp), the logits.
        assert!(fakes >= 4, "{name}: {fakes} fake_quant nodes");
        assert!(!g.nodes.iter().any(|n| n.op.mnemonic() == "relu"), "{name}: the quantizer removed the ReLUs");
        let xs = samples(&g, name, "test.csv");
        let expected = rows(name, "expected.csv", 10);
        let mut worst = 0f64;
        for (y, want) in outputs(&g, &xs).iter().zip(&expected) {
            for (a, b) in y.iter().zip(want) {
                worst = worst.max((a - *b as f64).abs() / a.abs().max(1.0));
            }
        }
        eprintln!("{name}: float IR vs onnxruntime (ORT_DISABLE_ALL): {worst:e}");
        assert!(worst <= 1e-4, "{name}: float IR differs from onnxruntime by {worst}");
        let acc = metric("classification", &outputs(&g, &xs), &labels(name));
        assert!((acc - meta(name).float_metric).abs() < 1e-9, "{name}: accuracy {acc}");
    }
}

/// Tables reading 7 bits of their accumulators (`--table-bits 7`, MESSAGE_2_CARRY_5
/// under TFHE) keep every model within a point of float (94/94/96/95% against
/// 94/94/94/95%); 6 bits lose up to three points on these 100 rows, 5 bits more.
const TABLE_BITS: u32 = 7;

#[test]
fn quantized_ir_takes_the_models_grids_and_keeps_accuracy() {
    for name in QDQ {
        let (c, _) = compile(name, &QuantConfig { table_bits: TABLE_BITS, ..QuantConfig::default() });
        let xs = samples(&c.float, name, "test.csv");
        let labels = labels(name);
        let (f, q) = (outputs(&c.float, &xs), outputs(c.quantized.as_ref().unwrap(), &xs));
        let (fa, qa) = (metric("classification", &f, &labels), metric("classification", &q, &labels));
        eprintln!("{name}: accuracy float {fa:.4}, simulation {qa:.4}");
        assert!(qa >= fa - 0.01, "{name}: simulated accuracy {qa} more than 1 point below float {fa}");
        // The client quantizes the input onto the model's input grid, and every table
        // of the model's fake-quantizations writes onto its grid (a max pooling's rank
        // and comparison tables write ranks, no real values; its value tables the grid).
        let grids: Vec<_> = c
            .float
            .nodes
            .iter()
            .filter_map(|n| match &n.op {
                Op::FakeQuant(fq) => Some(fq.quant.clone()),
                _ => None,
            })
            .collect();
        let input_q = c.quantized.as_ref().unwrap().nodes.iter().find(|n| matches!(n.op, Op::Quantize(_))).unwrap();
        assert_eq!(input_q.ty.as_int().unwrap().quant.as_ref(), Some(&grids[0]), "{name}: input grid");
        for n in c.quantized.as_ref().unwrap().nodes.iter().filter(|n| matches!(n.op, Op::Lut(_))) {
            let Some(quant) = n.ty.as_int().unwrap().quant.as_ref() else { continue };
            assert!(grids.contains(quant), "{name}: table {} writes onto {quant}, not a model grid", n.name);
        }
    }
}

#[test]
fn compiles_without_calibration_on_its_own_grids() {
    use secc_compiler::passes::calibrate::grid_samples;
    use secc_compiler::pipeline::{compile_float, Coverage, FheOptions, Options};
    for name in ["qdq_dense_s8", "qdq_cnn_s8_pc"] {
        let g = import_float(&model_dir(name).join("model.onnx")).unwrap();
        let points = grid_samples(&g, 200).expect("a QDQ model states its input grid");
        let fhe = FheOptions { coverage: Coverage::Exact, ..FheOptions::default() };
        let quant = QuantConfig { table_bits: TABLE_BITS, ..QuantConfig::default() };
        let c = compile_float(g, &points, &Options { quant, fhe, ..Options::default() }).unwrap();
        let xs = samples(&c.float, name, "test.csv");
        let labels = labels(name);
        let (fa, qa) = (
            metric("classification", &outputs(&c.float, &xs), &labels),
            metric("classification", &outputs(c.quantized.as_ref().unwrap(), &xs), &labels),
        );
        eprintln!("{name} without calibration: accuracy float {fa:.4}, simulation {qa:.4}");
        assert!(qa >= fa - 0.01, "{name}: simulated accuracy {qa} more than 1 point below float {fa}");
    }
    // A model without grids needs its calibration file.
    let g = import_float(&model_dir("dense_relu").join("model.onnx")).unwrap();
    assert!(grid_samples(&g, 200).is_none());
}

#[test]
fn smpc_runs_the_float_meaning() {
    for name in QDQ {
        let (g, plan) = mpc_plan(name);
        let xs = samples(&g, name, "test.csv");
        let xs = &xs[..4];
        let flat: Vec<Vec<f32>> = xs.iter().map(|s| s[0].as_f32().unwrap().iter().copied().collect()).collect();
        let reports = secc_runtime::mpc::session::run_local(&plan, &flat, Duration::from_secs(60), 1).unwrap();
        let got = reports[plan.roles.receiver].outputs.as_ref().unwrap();
        for (want, y) in outputs(&g, xs).iter().zip(got) {
            let y: Vec<f64> = y.iter().map(|&v| v as f64).collect();
            assert_eq!(argmax(&y), argmax(want), "{name}: argmax differs: {y:?} vs {want:?}");
        }
    }
}

#[test]
fn tfhe_equals_the_simulation() {
    let name = "qdq_dense_s8";
    let (c, _) = compile(name, &QuantConfig::default());
    let (q, circuit) = (c.quantized.as_ref().unwrap(), c.fhe.as_ref().unwrap());
    let (ck, sk) = generate_local_keys(&circuit.key_layout(q)).unwrap();
    let program = ServerProgram::new(q, circuit, &sk).unwrap();
    let spec = ClientSpec::new(q, circuit, [0; 32]).unwrap();
    let (mut lookups, mut neighbours) = (0, 0);
    for x in samples(&c.float, name, "test.csv").iter().take(2) {
        let values = program.evaluate_values(encrypt_sample(&spec, &ck, x).unwrap(), &|| {}).unwrap();
        // Replay the circuit in the clear on what the server computed: every table output
        // on the model's grid is the simulation's entry for its accumulator, or (approximate
        // rounding) the neighbouring entry's; levelled values are exact.
        let mut env: Vec<secc_ir::Tensor> = Vec::new();
        for (i, node) in q.nodes.iter().enumerate() {
            let value = match &node.op {
                Op::Input(_) => x[0].clone(),
                Op::Lut(lut) => {
                    let got = decrypt_tensor(
                        &ck.big_key(circuit.partition_of(i)),
                        &values[&(i as u32)],
                        circuit.log_delta[i].unwrap(),
                        &node.ty.shape,
                    );
                    let acc = env[node.inputs[0].index()].as_i64().unwrap();
                    for (e, (&g, &a)) in got.iter().zip(acc).enumerate() {
                        let t = lut.table_for(e);
                        let k = lut.index_of(a) as i64;
                        let at = |j: i64| t[j.clamp(0, t.len() as i64 - 1) as usize];
                        lookups += 1;
                        if g != at(k) {
                            assert!(g == at(k - 1) || g == at(k + 1), "{name}: %{i}[{e}] = {g}, not a table neighbour");
                            neighbours += 1;
                        }
                    }
                    secc_ir::Tensor::I64(got)
                }
                op => op.eval(&node.inputs.iter().map(|v| &env[v.index()]).collect::<Vec<_>>()),
            };
            env.push(value);
        }
        let returned: Vec<_> = circuit.outputs.iter().map(|&v| (v, values[&v].clone())).collect();
        let fhe = decrypt_sample(&spec, &ck, &returned).unwrap()[0].to_f64_vec();
        assert_eq!(fhe, env[q.outputs[0].index()].to_f64_vec(), "{name}: decrypted logits differ from the replay");
        let sim = secc_ir::interp::run_graph(q, x).unwrap()[0].to_f64_vec();
        assert_eq!(argmax(&fhe), argmax(&sim), "{name}: class differs from the simulation");
    }
    eprintln!("{name}: {neighbours} of {lookups} lookups read a rounding neighbour");
    assert!(neighbours * 10 <= lookups, "{name}: {neighbours} of {lookups} lookups off by one");
}

#[test]
fn cli_compiles_a_qdq_model_without_calib_and_asks_for_it_otherwise() {
    let dir = std::env::temp_dir().join(format!("secc-qdq-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let compile = |model: &str| {
        let m = model_dir(model).join("model.onnx");
        let out = dir.join(format!("{model}.secc"));
        std::process::Command::new(env!("CARGO_BIN_EXE_secc"))
            .args(["compile", m.to_str().unwrap(), "-o", out.to_str().unwrap(), "--force"])
            .output()
            .unwrap()
    };
    let o = compile("qdq_dense_s8");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("no --calib: the model's own scales and zero points quantize it"), "{err}");
    let o = compile("dense_relu");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("--calib is required (the model states no quantization grid for its inputs)"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
