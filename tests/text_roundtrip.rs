//! The text form is lossless at every stage of every testdata model: the float IR,
//! the quantized IR, the TFHE circuit and the SMPC plan (with and without its
//! weights) print, parse back to the same value, and print the same text again.

mod common;

use common::*;
use secc_compiler::lower::fhe::{lower_fhe, Coverage};
use secc_compiler::passes::calibrate::calibrate;
use secc_compiler::passes::quantize::QuantConfig;
use secc_ir::{parse_circuit, parse_graph, parse_plan, ParseError};
use std::fmt::{Debug, Display};

fn check<T: Display + PartialEq + Debug>(what: &str, x: &T, parse: impl Fn(&str) -> Result<T, ParseError>) {
    let text = x.to_string();
    let back = parse(&text).unwrap_or_else(|e| panic!("{what}: {e}\n{text}"));
    assert!(&back == x, "{what}: the parsed value differs from the printed one");
    assert_eq!(back.to_string(), text, "{what}: printing the parsed value changes the text");
}

/// Every directory of testdata/models with a model.onnx.
fn models() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(model_dir(""))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|d| d.join("model.onnx").is_file())
        .map(|d| d.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn every_stage_of_every_model_round_trips() {
    let names = models();
    assert!(names.len() >= MODELS.len(), "{names:?}");
    let mut circuits = 0;
    for name in &names {
        let (c, calib) = compile(name, &QuantConfig::default());
        check(&format!("{name}: float IR"), &c.float, parse_graph);
        check(&format!("{name}: quantized IR"), &c.quantized, parse_graph);
        let observed = calibrate(&c.quantized, &calib).unwrap();
        // Some models have no TFHE lowering yet (max pooling); their other stages still count.
        match lower_fhe(&c.quantized, -128, Coverage::Calibrated, &observed) {
            Ok(circuit) => {
                check(&format!("{name}: TFHE circuit"), &circuit, parse_circuit);
                circuits += 1;
            }
            Err(e) => println!("{name}: no TFHE circuit: {e}"),
        }
        let (_, plan) = mpc_plan(name);
        assert!(plan.weight_values.is_some());
        check(&format!("{name}: SMPC plan"), &plan, parse_plan);
        check(&format!("{name}: weightless SMPC plan"), &plan.weightless(), parse_plan);
    }
    assert!(circuits * 2 > names.len(), "only {circuits} of {} models have a TFHE circuit", names.len());
}
