//! The one ordered list of stages, with the verifier run after each.
//!
//! `import` (ONNX → float IR) → `fold_constants` → `fold_affine` → `calibrate` →
//! `quantize` (which runs `fuse_lut` on every elementwise chain) → `bit_width`.

use crate::passes::bit_width::{analyze_bit_widths, BitWidthReport};
use crate::passes::calibrate::{calibrate, Calibration};
use crate::passes::fold_affine::fold_affine;
use crate::passes::fold_constants::fold_constants;
use crate::passes::quantize::{quantize, QuantConfig};
use crate::{frontend, CompileError};
use secc_ir::{verify_graph, Graph, Tensor};
use std::path::Path;

/// Names of the stages, in order.
pub const STAGES: &[&str] = &["import", "fold_constants", "fold_affine", "calibrate", "quantize", "bit_width"];

/// The result of compiling a model.
#[derive(Clone, Debug)]
pub struct Compiled {
    /// The float IR after the float passes (the float oracle).
    pub float: Graph,
    /// The integer IR (the backends' input and the simulation oracle).
    pub quantized: Graph,
    /// The calibration the quantizer used.
    pub calibration: Calibration,
    /// What the range analysis found.
    pub bit_widths: BitWidthReport,
}

/// Imports an ONNX file and runs the float passes.
pub fn import_float(path: &Path) -> Result<Graph, CompileError> {
    let g = frontend::import_onnx(path)?;
    let g = fold_constants(&g)?;
    verify_graph(&g)?;
    let g = fold_affine(&g)?;
    verify_graph(&g)?;
    Ok(g)
}

/// Calibrates and quantizes a float graph.
pub fn compile_float(float: Graph, samples: &[Vec<Tensor>], cfg: &QuantConfig) -> Result<Compiled, CompileError> {
    let calibration = calibrate(&float, samples)?;
    let quantized = quantize(&float, &calibration, samples, cfg)?;
    verify_graph(&quantized)?;
    let bit_widths = analyze_bit_widths(&quantized);
    Ok(Compiled { float, quantized, calibration, bit_widths })
}

/// The whole pipeline from an ONNX file.
pub fn compile_onnx(path: &Path, samples: &[Vec<Tensor>], cfg: &QuantConfig) -> Result<Compiled, CompileError> {
    compile_float(import_float(path)?, samples, cfg)
}
