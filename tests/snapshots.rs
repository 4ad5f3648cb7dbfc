//! Every testdata model's IR dumps (float and quantized) are snapshots: a change to
//! import, passes or the printer shows up here as a reviewable diff.

mod common;

use common::*;
use secc_compiler::passes::quantize::QuantConfig;

#[test]
fn ir_dumps() {
    for name in MODELS {
        let (c, _) = compile(name, &QuantConfig::default());
        insta::assert_snapshot!(format!("ir_{name}"), format!("{}\n\n{}", c.float, c.quantized.as_ref().unwrap()));
    }
}
