//! Every testdata model's IR dumps (float and quantized) are snapshots: a change to
//! import, passes or the printer shows up here as a reviewable diff.

mod common;

use common::*;
use secc_compiler::passes::quantize::QuantConfig;
use secc_compiler::pipeline::{compile_float, import_float};

#[test]
fn ir_dumps() {
    for name in MODELS {
        let g = import_float(&model_dir(name).join("model.onnx")).unwrap();
        let calib = samples(&g, name, "calib.csv");
        let c = compile_float(g, &calib, &QuantConfig::default()).unwrap();
        insta::assert_snapshot!(format!("ir_{name}"), format!("{}\n\n{}", c.float, c.quantized));
    }
}
