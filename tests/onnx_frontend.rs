//! What exporters write that the ONNX frontend must read (models made by
//! testdata/make_frontend_models.py, outputs computed by onnxruntime).

use ndarray::{ArrayD, IxDyn};
use secc_ir::Tensor;
use std::path::PathBuf;

/// torch's dynamo exporter with a dynamic batch axis: the weights lie in
/// `model.onnx.data` beside the model, and the flatten reads the batch dimension
/// (`x.view(x.size(0), -1)`). The batch axis is one sample; float matches onnxruntime.
#[test]
fn a_dynamo_export_with_external_weights_and_a_dynamic_batch_matches_onnxruntime() {
    matches_onnxruntime("dynamo_dynamic_batch");
}

/// The legacy exporter computes the same flatten's shape from the symbolic batch
/// dimension (Shape, Gather, Unsqueeze, Concat): fixed to one sample, it folds.
#[test]
fn a_legacy_export_with_a_dynamic_batch_matches_onnxruntime() {
    matches_onnxruntime("legacy_dynamic_batch");
}

fn matches_onnxruntime(name: &str) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/onnx-frontend").join(name);
    let g = secc_compiler::pipeline::import_float(&dir.join("model.onnx")).unwrap();
    let shape = g.ty(g.inputs[0]).shape.0.clone();
    assert_eq!(shape, [1, 1, 8, 8]);
    let xs = secc_runtime::csv::read_csv(&dir.join("x.csv"), 64).unwrap();
    let want = secc_runtime::csv::read_csv(&dir.join("expected.csv"), 3).unwrap();
    assert_eq!(xs.len(), 4);
    for (x, w) in xs.into_iter().zip(&want) {
        let x = Tensor::F32(ArrayD::from_shape_vec(IxDyn(&shape), x).unwrap());
        let y = secc_ir::interp::run_graph(&g, &[x]).unwrap()[0].to_f64_vec();
        for (a, &b) in y.iter().zip(w) {
            assert!((a - b as f64).abs() <= 1e-4 * (b as f64).abs().max(1.0), "{y:?} vs {w:?}");
        }
    }
}
