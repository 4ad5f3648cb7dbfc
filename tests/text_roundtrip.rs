//! The text form is lossless at every stage of every testdata model: the float IR,
//! the quantized IR, the TFHE circuit and the SMPC plan (with and without its
//! weights) print, parse back to the same value, and print the same text again.

mod common;

use common::*;
use secc_compiler::pipeline::{compile_float_observed, import_float_observed, Options, Program, Stage};
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
        .filter(|d| d.join("model.onnx").is_file() && claims_float(d))
        .map(|d| d.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Whether a model directory's meta.json claims the float backend, or claims none
/// (older models have no `backends` list): a model committed ahead of its ops says
/// `"backends": []`.
fn claims_float(dir: &std::path::Path) -> bool {
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("meta.json")).unwrap_or_else(|_| "{}".into()))
            .unwrap_or_default();
    meta.get("backends").and_then(|b| b.as_array()).is_none_or(|b| b.iter().any(|v| v == "float"))
}

#[test]
fn every_stage_of_every_model_round_trips() {
    let names = models();
    assert!(names.len() >= MODELS.len(), "{names:?}");
    let mut circuits = 0;
    for name in &names {
        let mut seen = Vec::new();
        let mut round_trip = |stage: Stage, program: Program<'_>| {
            let what = format!("{name}: {stage}");
            match program {
                Program::Graph(g) => check(&what, g, parse_graph),
                Program::Circuit(c) => {
                    check(&what, c, parse_circuit);
                    circuits += 1;
                }
                Program::Plan(p) => {
                    assert!(p.weight_values.is_some());
                    check(&what, p, parse_plan);
                    check(&format!("{what} (weightless)"), &p.weightless(), parse_plan);
                }
            }
            seen.push(stage);
        };
        let g = import_float_observed(&model_dir(name).join("model.onnx"), &mut round_trip).unwrap();
        let calib = samples(&g, name, "calib.csv");
        compile_float_observed(g, &calib, &Options::default(), &mut round_trip).unwrap();
        // Some models have no TFHE lowering yet (max pooling); every other stage counts.
        let expected: Vec<Stage> =
            Stage::ALL.into_iter().filter(|&s| s != Stage::LowerFhe || seen.contains(&s)).collect();
        assert_eq!(seen, expected, "{name}");
    }
    assert!(circuits * 2 > names.len(), "only {circuits} of {} models have a TFHE circuit", names.len());
}
