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
