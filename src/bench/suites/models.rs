//! The testdata models: random forests, the digits dense nets and the digits CNNs
//! (`testdata/models/NAME/{model.onnx, calib.csv, test.csv}`).

use super::{Scale, Unbuilt, Workload};
use secc_compiler::passes::quantize::QuantConfig;
use std::path::PathBuf;

/// Depth-4 random forests of 20 and 10 trees on sklearn's diabetes data.
pub fn forest(scale: Scale) -> Vec<Result<Workload, Unbuilt>> {
    match scale {
        Scale::Smoke => vec![],
        Scale::Quick => vec![model("forest", "rf_20x4", "20 trees")],
        Scale::Full => vec![model("forest", "rf_10x4", "10 trees"), model("forest", "rf_20x4", "20 trees")],
    }
}

/// The 64-32-16-10 dense nets on 8x8 digits.
pub fn dense(scale: Scale) -> Vec<Result<Workload, Unbuilt>> {
    match scale {
        Scale::Smoke => vec![],
        Scale::Quick => vec![model("dense", "dense_relu", "ReLU")],
        Scale::Full => vec![model("dense", "dense_relu", "ReLU"), model("dense", "dense_gelu", "GELU")],
    }
}

/// The CNNs on 8x8 digits: TinyCNN (3 conv + gemm) and conv-relu-maxpool-gemm.
pub fn cnn(scale: Scale) -> Vec<Result<Workload, Unbuilt>> {
    match scale {
        Scale::Smoke => vec![],
        Scale::Quick => vec![model("cnn", "cnn_tiny", "TinyCNN")],
        Scale::Full => vec![model("cnn", "cnn_tiny", "TinyCNN"), model("cnn", "cnn", "conv-maxpool")],
    }
}

fn model(suite: &'static str, name: &str, x: &str) -> Result<Workload, Unbuilt> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/models").join(name);
    let unbuilt = |reason: String| Unbuilt { suite, name: name.to_string(), reason };
    let onnx = dir.join("model.onnx");
    if !onnx.exists() {
        return Err(unbuilt(format!("{} not found", onnx.display())));
    }
    let graph = secc_compiler::pipeline::import_float(&onnx).map_err(|e| unbuilt(e.to_string()))?;
    let read =
        |file: &str| crate::io::read_samples(&dir.join(file), &graph).map_err(|e| unbuilt(format!("{file}: {e:#}")));
    let calib = read("calib.csv")?;
    let samples = read("test.csv")?;
    Ok(Workload {
        suite,
        name: name.to_string(),
        x: x.to_string(),
        graph,
        calib,
        samples,
        quant: QuantConfig::default(),
    })
}
