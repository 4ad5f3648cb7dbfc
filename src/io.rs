//! File helpers shared by the commands: samples in, outputs out, no silent overwrite.

use anyhow::{bail, Context, Result};
use secc_ir::{Graph, Tensor};
use std::path::Path;

/// Reads samples for `graph`'s single input from a CSV or `.npy` file.
pub fn read_samples(path: &Path, graph: &Graph) -> Result<Vec<Vec<Tensor>>> {
    if graph.inputs.len() != 1 {
        bail!("models with {} inputs are not supported by sample files yet", graph.inputs.len());
    }
    let shape = graph.ty(graph.inputs[0]).shape.clone();
    Ok(read_rows(path, shape.numel())?
        .into_iter()
        .map(|r| {
            vec![Tensor::F32(ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&shape.0), r).expect("row length checked"))]
        })
        .collect())
}

/// Reads samples of `len` values each from a CSV or `.npy` file.
pub fn read_rows(path: &Path, len: usize) -> Result<Vec<Vec<f32>>> {
    Ok(if path.extension().is_some_and(|e| e == "npy") {
        secc_runtime::npy::read_npy(path, len)?
    } else {
        secc_runtime::csv::read_csv(path, len)?
    })
}

/// Writes `bytes` to `path`, refusing to replace an existing file unless `force`.
pub fn write_new(path: &Path, bytes: &[u8], force: bool) -> Result<()> {
    if path.exists() && !force {
        bail!("{} exists; pass --force to overwrite it", path.display());
    }
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// Writes a secret file (a key) readable by its owner only, refusing to replace an
/// existing file unless `force`.
pub fn write_secret(path: &Path, bytes: &[u8], force: bool) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if path.exists() {
        if !force {
            bail!("{} exists; pass --force to overwrite it", path.display());
        }
        // Opening an existing file keeps its permissions: start from a new one.
        std::fs::remove_file(path).with_context(|| format!("cannot replace {}", path.display()))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// Reads a secret file, refusing one that others can read (as ssh does): a key that
/// leaked is no longer a key.
pub fn read_secret(path: &Path) -> Result<Vec<u8>> {
    check_private(path)?;
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Refuses a secret file that others can read.
pub fn check_private(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?.permissions().mode();
    if mode & 0o077 != 0 {
        bail!("{} is readable by others (mode {:o}); run chmod 600 on it", path.display(), mode & 0o777);
    }
    Ok(())
}

/// Writes output rows as CSV to `path`, or to standard output.
pub fn write_rows(rows: &[Vec<f32>], path: Option<&Path>, force: bool) -> Result<()> {
    let text = secc_runtime::csv::format_csv(rows);
    match path {
        Some(path) => write_new(path, text.as_bytes(), force),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

/// One output row: every output tensor of a sample, flattened in C order.
pub fn flatten_outputs(outputs: &[Tensor]) -> Vec<f32> {
    outputs.iter().flat_map(|t| t.to_f64_vec()).map(|v| v as f32).collect()
}
