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

/// The backends a testdata model's meta.json says it runs on; `None` when it does not say.
fn backends(name: &str) -> Option<Vec<String>> {
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(model_dir(name).join("meta.json")).ok()?).unwrap();
    Some(meta.get("backends")?.as_array()?.iter().map(|b| b.as_str().unwrap().to_owned()).collect())
}

/// Every testdata model that compiles (those whose meta.json lists no backend are
/// refusals other tests check).
fn models() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(model_dir(""))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|d| d.join("model.onnx").is_file())
        .filter(|d| backends(&d.file_name().unwrap().to_string_lossy()).is_none_or(|b| !b.is_empty()))
        .map(|d| d.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn every_stage_of_every_model_round_trips() {
    let names = models();
    assert!(names.len() >= MODELS.len(), "{names:?}");
    let (mut circuits, mut plans) = (0, 0);
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
        let claims = backends(name);
        let compiled = compile_float_observed(g, &calib, &Options::default(), &mut round_trip).unwrap();
        // A model the quantizer refuses (a Normalizer ahead of the model) has no
        // quantized stages, and must not claim a backend that needs them.
        let quantized = compiled.quantized.is_ok();
        if !quantized {
            let claimed = claims.as_ref().is_some_and(|b| b.iter().any(|c| c == "sim" || c == "fhe"));
            assert!(!claimed, "{name} claims a quantized backend but has no quantized IR");
        }
        // Some models have no TFHE lowering (a maximum of sums), and some no SMPC one; a
        // backend meta.json's `backends` lists must be there. Every other stage counts.
        let lowered = |s: Stage, backend: &str| {
            seen.contains(&s) || claims.as_ref().is_some_and(|b| b.iter().any(|c| c == backend))
        };
        let expected: Vec<Stage> = Stage::ALL
            .into_iter()
            .filter(|&s| match s {
                Stage::Quantize | Stage::BitWidth => quantized,
                Stage::LowerFhe => lowered(s, "fhe"),
                Stage::LowerMpc => lowered(s, "mpc"),
                _ => true,
            })
            .collect();
        assert_eq!(seen, expected, "{name}");
        plans += usize::from(seen.contains(&Stage::LowerMpc));
    }
    assert!(circuits * 2 > names.len(), "only {circuits} of {} models have a TFHE circuit", names.len());
    assert!(plans * 3 > names.len() * 2, "only {plans} of {} models have an SMPC plan", names.len());
}
