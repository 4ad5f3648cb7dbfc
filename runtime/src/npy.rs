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
    check_sizes(bytes).map_err(|reason| NpyError::Format { path: path.into(), reason })?;
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

/// Checks that the header and the array it announces fit in the file, before
/// ndarray-npy allocates either (it trusts the header's length and shape: a 40-byte
/// file could make it allocate gigabytes).
fn check_sizes(bytes: &[u8]) -> Result<(), String> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err("no .npy magic".into());
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes")) as usize, 12),
        v => return Err(format!("format version {v}")),
    };
    let data = (bytes.len() - start).checked_sub(header_len).ok_or("the header runs past the end of the file")?;
    let header = String::from_utf8_lossy(&bytes[start..start + header_len]);
    let shape = header
        .split_once("'shape':")
        .and_then(|(_, rest)| rest.trim_start().strip_prefix('('))
        .and_then(|rest| rest.split_once(')'))
        .ok_or("no shape in the header")?
        .0;
    let mut elements: u64 = 1;
    for dim in shape.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let dim: u64 = dim.parse().map_err(|_| format!("shape dimension `{dim}`"))?;
        elements = elements.checked_mul(dim).ok_or("the shape overflows")?;
    }
    // Every element takes 4 bytes at least (float32).
    if elements.saturating_mul(4) > data as u64 {
        return Err(format!("the shape ({shape}) needs more data than the file's {data} bytes"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_announcing_more_than_the_file_holds_are_refused_before_allocating() {
        // Found by the fuzzer: a version-3 header of length 2^30 in a 43-byte file.
        let huge_header = b"\x93NUMPY\x03\x00\xf7\xff\xff\x3f\x00\x00\x01\x00";
        let e = parse_npy(huge_header, "x.npy", 8).unwrap_err().to_string();
        assert!(e.contains("runs past the end"), "{e}");
        let header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000, 8), }";
        let mut big = b"\x93NUMPY\x01\x00".to_vec();
        big.extend_from_slice(&(header.len() as u16).to_le_bytes());
        big.extend_from_slice(header);
        big.extend_from_slice(&[0; 32]);
        let e = parse_npy(&big, "x.npy", 8).unwrap_err().to_string();
        assert!(e.contains("needs more data than the file's 32 bytes"), "{e}");
    }
}
