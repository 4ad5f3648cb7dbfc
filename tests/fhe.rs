//! TFHE end to end with real keys and real bootstraps: every table output decrypts to
//! the quantized simulation's value, except where approximate rounding read the
//! neighbouring table index (rate measured and bounded), and the final outputs agree
//! with the simulation within the levelled noise.

mod common;

use common::*;
use secc_compiler::lower::fhe::{lower_fhe, observed_ranges, Coverage};
use secc_compiler::passes::quantize::QuantConfig;
use secc_compiler::pipeline::{compile_float, import_float};
use secc_ir::ops::{round_shift, Lut};
use secc_ir::Op;
use secc_runtime::fhe::exec::{decrypt_sample, decrypt_tensor, encrypt_sample, ServerProgram};
use secc_runtime::fhe::keys::generate_keys;

struct Outcome {
    lookups: usize,
    off_by_one: usize,
    argmax_agree: usize,
    rows: usize,
    /// Largest |fhe − simulation| of an output, relative to the largest output.
    worst: f64,
}

fn check_model(name: &str, rows: usize) -> Outcome {
    let g = import_float(&model_dir(name).join("model.onnx")).unwrap();
    let calib = samples(&g, name, "calib.csv");
    let c = compile_float(g, &calib, &QuantConfig::default()).unwrap();
    let q = &c.quantized;
    let observed = observed_ranges(q, &calib).unwrap();
    let circuit = lower_fhe(q, -128, Coverage::Calibrated, &observed).unwrap();
    let (ck, sk) = generate_keys(&circuit.params.name).unwrap();
    let big = ck.big_key();
    let program = ServerProgram::new(q, &circuit, &sk).unwrap();
    let xs = samples(&c.float, name, "test.csv");
    let mut o = Outcome { lookups: 0, off_by_one: 0, argmax_agree: 0, rows: 0, worst: 0.0 };
    for x in xs.iter().take(rows) {
        let sim = secc_runtime::clear::eval_all(q, x).unwrap();
        let cts = encrypt_sample(q, &circuit, &ck, x).unwrap();
        let values = program.evaluate_values(cts, &|| {}).unwrap();
        for (i, node) in q.nodes.iter().enumerate() {
            let Op::Lut(lut) = &node.op else { continue };
            let fhe = decrypt_tensor(&big, &values[&(i as u32)], circuit.log_delta[i].unwrap(), &node.ty.shape);
            let want = sim[i].as_i64().unwrap();
            let acc = sim[node.inputs[0].index()].as_i64().unwrap();
            for (e, ((&got, &want), &a)) in fhe.iter().zip(want.iter()).zip(acc.iter()).enumerate() {
                o.lookups += 1;
                if got != want {
                    assert!(
                        neighbour(lut, e, a, got),
                        "{name}: %{i}[{e}] = {got}, simulation {want}: not a rounding neighbour"
                    );
                    o.off_by_one += 1;
                }
            }
        }
        // Final outputs: levelled accumulators, decrypted with their noise.
        let outs: Vec<_> =
            q.nodes.iter().filter(|n| matches!(n.op, Op::Dequantize(_))).map(|n| n.inputs[0].0).collect();
        let returned: Vec<_> = outs.iter().map(|&v| (v, values[&v].clone())).collect();
        let fhe = decrypt_sample(q, &circuit, &ck, &returned).unwrap()[0].to_f64_vec();
        let want = sim[q.outputs[0].index()].to_f64_vec();
        o.argmax_agree += (argmax(&fhe) == argmax(&want)) as usize;
        let scale = want.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-9);
        for (a, b) in fhe.iter().zip(&want) {
            o.worst = o.worst.max((a - b).abs() / scale);
        }
        o.rows += 1;
    }
    eprintln!(
        "{name}: {} bootstraps on {}: {}/{} lookups off by one, argmax agrees on {}/{} rows, outputs within {:.4} of the largest",
        circuit.stats.pbs, circuit.params.name, o.off_by_one, o.lookups, o.argmax_agree, o.rows, o.worst
    );
    // Levelled outputs carry their inputs' bootstrap noise times the weights.
    assert!(o.worst <= 0.05, "{name}: outputs differ from the simulation by {:.3} of their scale", o.worst);
    o
}

/// Whether `got` is the table entry of the index next to the one `acc` rounds to.
fn neighbour(lut: &Lut, e: usize, acc: i64, got: i64) -> bool {
    let t = lut.table_for(e);
    let i = round_shift(acc, lut.shift) - lut.base;
    [i - 1, i + 1].iter().any(|&j| t[j.clamp(0, t.len() as i64 - 1) as usize] == got)
}

#[test]
fn linear_regression_under_encryption() {
    // No tables: the whole circuit is levelled; the output is the accumulator.
    let o = check_model("linreg_8", 3);
    assert_eq!(o.lookups, 0);
}

#[test]
fn dense_net_under_encryption() {
    let o = check_model("dense_relu", 3);
    assert!(o.off_by_one * 20 <= o.lookups, "more than 5% of lookups off by one: {}/{}", o.off_by_one, o.lookups);
    assert_eq!(o.argmax_agree, o.rows);
}

#[test]
fn digits_cnn_under_encryption() {
    let o = check_model("cnn_tiny", 2);
    assert!(o.off_by_one * 20 <= o.lookups, "more than 5% of lookups off by one: {}/{}", o.off_by_one, o.lookups);
    assert_eq!(o.argmax_agree, o.rows);
}
