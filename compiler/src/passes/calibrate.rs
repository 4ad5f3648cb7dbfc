//! `calibrate`: runs a graph on calibration samples and records the range of every
//! value. On the float IR the quantizer reads it to choose scales and zero points; on
//! the quantized IR the TFHE lowering reads what the accumulators really reach.

use crate::CompileError;
use secc_ir::{Graph, Tensor};

/// Per-value `[min, max]` over the calibration set (integers widened to f64).
#[derive(Clone, Debug)]
pub struct Calibration {
    /// Indexed by value number.
    pub ranges: Vec<Option<(f64, f64)>>,
    /// Number of samples seen.
    pub samples: usize,
}

/// Runs `graph` on every sample (one tensor per graph input) and records ranges.
pub fn calibrate(graph: &Graph, samples: &[Vec<Tensor>]) -> Result<Calibration, CompileError> {
    if samples.is_empty() {
        return Err(CompileError::Calibration("the calibration set is empty".into()));
    }
    let mut ranges: Vec<Option<(f64, f64)>> = vec![None; graph.nodes.len()];
    for (row, sample) in samples.iter().enumerate() {
        let values = secc_ir::interp::eval_all(graph, sample)
            .map_err(|e| CompileError::Calibration(format!("sample {}: {e}", row + 1)))?;
        for (range, value) in ranges.iter_mut().zip(&values) {
            for x in value.to_f64_vec() {
                if !x.is_finite() {
                    return Err(CompileError::Calibration(format!("sample {} produces a non-finite value", row + 1)));
                }
                let (lo, hi) = range.get_or_insert((x, x));
                *lo = lo.min(x);
                *hi = hi.max(x);
            }
        }
    }
    Ok(Calibration { ranges, samples: samples.len() })
}

/// Calibration samples from the model's own input grids, for a model that states them
/// (a QDQ model: every graph input is read only by per-tensor `fake_quant`s of one
/// grid): the grid's two ends, then `n − 2` pseudo-random grid points per element.
/// `None` when some input has no grid. What the grids fix (the quantization of every
/// fake-quantized value) then needs no calibration file; what they leave open (the
/// span of tables where no clamp bounds it, SMPC fits of other activations) comes from
/// these points.
pub fn grid_samples(graph: &Graph, n: usize) -> Option<Vec<Vec<Tensor>>> {
    use secc_ir::ops::FakeQuant;
    use secc_ir::Op;
    let mut grids = Vec::new();
    for &input in &graph.inputs {
        let mut readers = graph.nodes.iter().filter(|node| node.inputs.contains(&input)).map(|node| &node.op);
        let Some(Op::FakeQuant(first)) = readers.next() else { return None };
        if first.quant.axis.is_some() || readers.any(|op| !matches!(op, Op::FakeQuant(f) if f == first)) {
            return None;
        }
        grids.push((first.clone(), graph.ty(input).shape.clone()));
    }
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut samples = Vec::new();
    for i in 0..n.max(2) {
        let mut sample = Vec::new();
        for (FakeQuant { quant, lo, hi }, shape) in &grids {
            let (s, z) = (quant.scale[0] as f32, quant.zero_point[0]);
            let mut values = Vec::with_capacity(shape.numel());
            for _ in 0..shape.numel() {
                let q = match i {
                    0 => *lo,
                    1 => *hi,
                    _ => {
                        // xorshift64: the same points on every run
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        lo + (state % (hi - lo + 1) as u64) as i64
                    }
                };
                values.push((q - z) as f32 * s);
            }
            sample.push(Tensor::F32(ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&shape.0), values).expect("shape")));
        }
        samples.push(sample);
    }
    Some(samples)
}
