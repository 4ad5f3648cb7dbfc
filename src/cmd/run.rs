//! `secc run`: run a compiled model on samples.

use crate::io::{read_samples, write_rows};
use anyhow::{Context, Result};
use secc_ir::artifact::Artifact;
use secc_ir::ops::Quantize;
use secc_ir::{Graph, Op, Tensor};
use std::path::PathBuf;

/// Which executor runs the model.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Backend {
    /// The float IR: the reference the other backends are held to
    Float,
    /// The quantized integer IR in the clear: exactly what the encrypted backends compute
    Sim,
    /// TFHE: generate keys, encrypt, evaluate on ciphertexts, decrypt, all locally
    Fhe,
    /// SMPC: three parties on loopback sockets run the float IR on secret shares
    Mpc,
}

/// Run a compiled model on samples and print (or write) its outputs.
///
/// Output: CSV, one row per sample, the model's outputs flattened in C order.
#[derive(clap::Args)]
pub struct Args {
    /// A model compiled by `secc compile`
    pub artifact: PathBuf,
    /// Samples: CSV (one sample per row, input flattened in C order) or .npy [N, ...]
    #[arg(long, value_name = "X.csv")]
    pub input: PathBuf,
    /// Executor
    #[arg(long, value_enum, default_value = "sim")]
    pub backend: Backend,
    /// Write the outputs here instead of standard output
    #[arg(short, long, value_name = "Y.csv")]
    pub output: Option<PathBuf>,
    /// Overwrite the output file if it exists
    #[arg(long)]
    pub force: bool,
}

pub fn run(a: Args) -> Result<()> {
    let art = Artifact::read(&a.artifact)?;
    let graph = match a.backend {
        Backend::Float | Backend::Mpc => &art.float,
        Backend::Sim | Backend::Fhe => crate::cmd::quantized(&art)?,
    };
    let samples = read_samples(&a.input, graph).with_context(|| format!("cannot read {}", a.input.display()))?;
    if let Backend::Fhe = a.backend {
        let rows = crate::cmd::fhe::run_local(&art, &samples)?;
        return write_rows(&rows, a.output.as_deref(), a.force);
    }
    if let Backend::Mpc = a.backend {
        let flat: Vec<Vec<f32>> =
            samples.iter().map(|s| s[0].as_f32().expect("float input").iter().copied().collect()).collect();
        let start = std::time::Instant::now();
        let rows = crate::cmd::party::run_three(&art, &flat)?;
        eprintln!(
            "mpc: {} samples in {:.3} ms (with connection set-up)",
            rows.len(),
            start.elapsed().as_secs_f64() * 1e3
        );
        return write_rows(&rows, a.output.as_deref(), a.force);
    }
    if matches!(a.backend, Backend::Sim) {
        let clipped = count_clipped(graph, &samples);
        if clipped > 0 {
            eprintln!("warning: {clipped} input values lie outside the calibrated range and were clipped");
        }
    }
    let mut rows = Vec::with_capacity(samples.len());
    for (i, s) in samples.iter().enumerate() {
        let out = secc_ir::interp::run_graph(graph, s).with_context(|| format!("sample {}", i + 1))?;
        rows.push(crate::io::flatten_outputs(&out));
    }
    write_rows(&rows, a.output.as_deref(), a.force)
}

/// Input values the boundary `quantize` clamps. Per-feature grids (tree ensembles)
/// are left out: they span the thresholds, and clipping beyond them changes no comparison.
pub fn count_clipped(graph: &Graph, samples: &[Vec<Tensor>]) -> usize {
    let mut n = 0;
    for node in &graph.nodes {
        let Op::Quantize(Quantize { quant, lo, hi }) = &node.op else { continue };
        if quant.axis.is_some() {
            continue;
        }
        let Op::Input(input) = &graph.node(node.inputs[0]).op else { continue };
        let (s, z) = (quant.scale[0], quant.zero_point[0]);
        for sample in samples {
            let x = sample[input.index].as_f32().expect("float input");
            n += x
                .iter()
                .filter(|&&v| {
                    let q = (v as f64 / s).round() + z as f64;
                    q < *lo as f64 || q > *hi as f64
                })
                .count();
        }
    }
    n
}
