//! `.npy` sample files: an array of shape `[N, ...]` whose rows, flattened in C order,
//! are samples (or a single sample of exactly the model's input shape).

use ndarray::{ArrayD, Axis};
use ndarray_npy::ReadNpyExt;
use std::path::Path;

/// Errors reading `.npy` samples.
#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    /// The file cannot be opened.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Not a float32/float64 .npy array.
    #[error("{path}: not a float32 or float64 .npy array ({reason})")]
    Format {
        /// The file.
        path: String,
        /// What the reader said.
        reason: String,
    },
    /// Rows do not hold one model input each.
    #[error("{path}: array of shape {shape:?} does not split into samples of {expected} values")]
    Shape {
        /// The file.
        path: String,
        /// The array's shape.
        shape: Vec<usize>,
        /// Values per sample.
        expected: usize,
    },
}

/// Reads samples of `expected` values each from a `.npy` file.
pub fn read_npy(path: &Path, expected: usize) -> Result<Vec<Vec<f32>>, NpyError> {
    let p = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| NpyError::Io { path: p.clone(), source })?;
    parse_npy(&bytes, &p, expected)
}

/// Parses the bytes of a `.npy` file into samples of `expected` values each; `path`
/// names the source in errors.
pub fn parse_npy(bytes: &[u8], path: &str, expected: usize) -> Result<Vec<Vec<f32>>, NpyError> {
    let array: ArrayD<f32> = match ArrayD::<f32>::read_npy(bytes) {
        Ok(a) => a,
        Err(first) => ArrayD::<f64>::read_npy(bytes)
            .map_err(|_| NpyError::Format { path: path.into(), reason: first.to_string() })?
            .mapv(|v| v as f32),
    };
    let shape = array.shape().to_vec();
    let rows: Vec<Vec<f32>> = if array.len() == expected {
        vec![array.iter().copied().collect()]
    } else if array.ndim() >= 1 && expected > 0 && array.len() / shape[0].max(1) == expected && shape[0] > 0 {
        array.axis_iter(Axis(0)).map(|r| r.iter().copied().collect()).collect()
    } else {
        return Err(NpyError::Shape { path: path.into(), shape, expected });
    };
    Ok(rows)
}
