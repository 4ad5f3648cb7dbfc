//! `secc compile`: the whole pipeline, ONNX → float IR → calibrated, quantized integer
//! IR → TFHE circuit and SMPC plan → `model.secc`.

use crate::io::{read_samples, write_new};
use anyhow::{bail, Context, Result};
use secc_compiler::cost::fhe::bootstraps_per_partition;
use secc_compiler::cost::machine::MachineCosts;
use secc_compiler::cost::{choose_backend, Network};
use secc_compiler::passes::calibrate::grid_samples;
use secc_compiler::passes::precision::Budget;
use secc_compiler::passes::quantize::QuantConfig;
use secc_compiler::pipeline::{
    compile_float_observed, import_float_outputs, Coverage, FheOptions, MpcConfig, Options, ParamChoice, Program, Stage,
};
use secc_ir::artifact::{Artifact, Settings};
use secc_ir::client_spec::ClientSpec;
use secc_ir::lowered::MAX_PRODUCT_FRAC_BITS;
use std::path::PathBuf;

/// Compile an ONNX model into a secc artifact.
///
/// Imports the model (unsupported ops are named with their node), calibrates value
/// ranges on the samples in --calib, quantizes weights per output channel and values
/// per tensor, derives every integer's exact range, fuses each activation chain with
/// its requantization into one lookup table per element, and lowers the result to a
/// TFHE circuit and an SMPC plan, both stored in the artifact. Stages, in order:
/// import, fold_constants, fold_affine, calibrate, quantize, bit_width, lower_fhe,
/// lower_mpc (`secc ir print --stage NAME` shows any of them).
#[derive(clap::Args)]
pub struct Args {
    /// The ONNX model (float32 input; opset ≤ 17 ops: Conv, Gemm, MatMul, Relu, Sigmoid, ...)
    pub model: PathBuf,
    /// Calibration samples: CSV (one sample per row, input flattened in C order) or .npy.
    /// Optional for a QDQ model (onnxruntime's quantize_static): its own scales and zero
    /// points then quantize it, calibrated on points of its input grid, and TFHE covers
    /// proven ranges (--fhe-ranges exact); given, the samples calibrate what the model's
    /// grids leave open (table spans, TFHE coverage, SMPC fits)
    #[arg(long, value_name = "CALIB.csv")]
    pub calib: Option<PathBuf>,
    /// Bits of weights and activations, 2 to 16 [default: 8]
    #[arg(long, value_name = "N", value_parser = bits(16))]
    pub bits: Option<u32>,
    /// Bits of the model inputs, quantized by the client in the clear, 2 to 24 [default: bits + 2]
    #[arg(long, value_name = "N", value_parser = bits(24))]
    pub input_bits: Option<u32>,
    /// Bits of the weights, 2 to 16 [default: bits]
    #[arg(long, value_name = "N", value_parser = bits(16))]
    pub weight_bits: Option<u32>,
    /// Most input bits a lookup table reads; wider accumulators are rounded to their
    /// top bits (what a TFHE bootstrap costs is set by this), 2 to 16 [default: min(5, bits)]
    #[arg(long, value_name = "N", value_parser = bits(16))]
    pub table_bits: Option<u32>,
    /// Bits the tables computing one node read, in place of --table-bits: `NODE=N`, the
    /// node by its name in the float IR (`secc ir print MODEL.onnx`; `compile` names the
    /// layers the accuracy budget narrowed), 2 to 16; repeat for several nodes
    #[arg(long = "layer-table-bits", value_name = "NODE=N", value_parser = layer_bits)]
    pub layer_table_bits: Vec<(String, u32)>,
    /// Bits of each feature a tree ensemble reads, bucketized on that feature's thresholds
    /// (exact up to 2^N − 1 of them): every comparison is a table of this width, 2 to 16
    /// [default: min(4, bits)]
    #[arg(long, value_name = "N", value_parser = bits(16))]
    pub tree_bits: Option<u32>,
    /// Accuracy the quantized model may lose, in points (percent) of argmax agreement
    /// with the float model on the calibration samples and of relative squared error of
    /// its outputs (≈ R² × 100): table, tree-feature and weight-norm widths start at their cheapest
    /// defaults and grow until the simulation keeps within it. Ignored when
    /// --bits, --input-bits, --weight-bits, --table-bits, --layer-table-bits, --tree-bits or
    /// --max-weight-norm set the widths
    #[arg(long, value_name = "POINTS", default_value_t = 1.0, value_parser = budget_points)]
    pub accuracy_budget: f64,
    /// Evaluate a final activation (e.g. a sigmoid on the output) as a table under
    /// encryption instead of in float on the client after decryption
    #[arg(long)]
    pub output_tables: bool,
    /// Largest 2-norm of a quantized weight channel applied to table outputs (TFHE
    /// bootstrap noise grows with it; a smaller cap allows cheaper parameter sets): finite, positive
    #[arg(long, value_name = "X", value_parser = positive, allow_hyphen_values = true)]
    pub max_weight_norm: Option<f64>,
    /// Failure probability of each TFHE bootstrap: 2^-128 (tfhe-rs default), 2^-64 or
    /// 2^-40 (Concrete-ML's default). Giving it makes a model without a TFHE circuit an error
    #[arg(long, value_name = "P", value_parser = parse_p_fail)]
    pub p_fail: Option<i32>,
    /// What each TFHE bootstrap covers: `calibrated` (the accumulator ranges seen in
    /// calibration, with a spare box each side; cheaper, values far beyond wrap around)
    /// or `exact` (the proven worst-case ranges; never wraps, 1-2 bits wider)
    #[arg(long, value_enum, default_value = "calibrated")]
    pub fhe_ranges: FheRanges,
    /// Where the TFHE parameter sets come from: `partitions` (one set per key partition:
    /// values a levelled op sums share keys, and each such class whose tables a cheaper
    /// set serves gets it, with keyswitching keys between them), `search` (one set for
    /// every table: the cheaper of tfhe-rs's best catalog set and one searched for the
    /// circuit's tables against the 128-bit security curve, by Concrete's cost model) or
    /// `catalog` (tfhe-rs's published sets only)
    #[arg(long, value_enum, default_value = "partitions")]
    pub fhe_params: FheParams,
    /// Fractional bits of the SMPC plan's fixed-point encoding on Z_2^64 (SPU's default
    /// is 18; products sit at twice as many, which must stay below 2^62; a plan with a
    /// tree ensemble, which multiplies nothing, keeps 32)
    #[arg(long, value_name = "F", default_value_t = MpcConfig::default().frac_bits,
          value_parser = clap::value_parser!(u32).range(1..=MAX_PRODUCT_FRAC_BITS as i64))]
    pub frac_bits: u32,
    /// `auto`: predict which private backend runs the model faster on --network (with
    /// the costs of `secc calibrate-costs`, or --costs) and record it and why in the
    /// artifact (`secc inspect` shows it); both programs are compiled either way
    #[arg(long, value_enum, value_name = "auto")]
    pub backend: Option<BackendPolicy>,
    /// The network `--backend auto` predicts for: loopback, lan (0.2 ms RTT, 1 Gbit/s)
    /// or wan (40 ms RTT, 100 Mbit/s)
    #[arg(long, value_enum, default_value = "lan")]
    pub network: NetworkArg,
    /// Per-operation costs for `--backend auto` [default: those of `secc
    /// calibrate-costs`, else the built-in ones]
    #[arg(long, value_name = "FILE")]
    pub costs: Option<PathBuf>,
    /// Output file [default: the model's path with extension .secc]
    #[arg(short = 'o', long = "out", value_name = "OUT.secc")]
    pub out: Option<PathBuf>,
    /// The graph output(s) to compute, by name (repeat, or a comma list) [default: the
    /// float outputs, e.g. a classifier's probabilities; a note names what was left out]
    #[arg(long = "output", value_name = "NAME", value_delimiter = ',')]
    pub outputs: Vec<String>,
    /// Also write the model's client spec here: what a TFHE client needs to encrypt
    /// and decrypt (input quantization, shapes, parameter set, digest; no weights),
    /// which `secc keygen`, `encrypt` and `decrypt` take in place of the model
    #[arg(long, value_name = "FILE")]
    pub client_spec: Option<PathBuf>,
    /// Print the float IR and the quantized IR (`secc ir print` prints any stage)
    #[arg(long)]
    pub dump_ir: bool,
    /// Overwrite the output file if it exists
    #[arg(long)]
    pub force: bool,
}

/// Builds the quantizer settings from the flags.
pub fn quant_config(a: &Args) -> QuantConfig {
    let mut cfg = QuantConfig::with_bits(a.bits.unwrap_or(8));
    cfg.input_bits = a.input_bits.unwrap_or(cfg.input_bits);
    cfg.weight_bits = a.weight_bits.unwrap_or(cfg.weight_bits);
    cfg.table_bits = a.table_bits.unwrap_or(cfg.table_bits);
    cfg.table_bits_of = a.layer_table_bits.clone();
    cfg.tree_bits = a.tree_bits.unwrap_or(cfg.tree_bits);
    cfg.output_tables = a.output_tables;
    cfg.max_weight_norm = a.max_weight_norm.or(cfg.max_weight_norm);
    cfg
}

/// The budget, unless the widths are set by hand.
fn budget(a: &Args) -> Option<Budget> {
    let fixed = [a.bits, a.input_bits, a.weight_bits, a.table_bits, a.tree_bits].iter().any(Option::is_some)
        || a.max_weight_norm.is_some()
        || !a.layer_table_bits.is_empty();
    (!fixed).then_some(Budget { fraction: a.accuracy_budget / 100.0 })
}

fn budget_points(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if (0.0..=100.0).contains(&x) => Ok(x),
        _ => Err(format!("`{s}`: give points from 0 to 100")),
    }
}

/// `--backend`.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum BackendPolicy {
    /// Predict the faster backend and record it
    Auto,
}

/// `--network`.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum NetworkArg {
    /// All parties on this machine
    Loopback,
    /// 0.2 ms round trip, 1 Gbit/s
    Lan,
    /// 40 ms round trip, 100 Mbit/s
    Wan,
}

impl From<NetworkArg> for Network {
    fn from(n: NetworkArg) -> Network {
        match n {
            NetworkArg::Loopback => Network::LOOPBACK,
            NetworkArg::Lan => Network::LAN,
            NetworkArg::Wan => Network::WAN,
        }
    }
}

/// `--fhe-ranges`.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum FheRanges {
    /// Accumulator ranges seen in calibration
    Calibrated,
    /// Proven worst-case ranges
    Exact,
}

/// `--fhe-params`.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum FheParams {
    /// tfhe-rs's catalog only
    Catalog,
    /// The cheaper of the catalog's and a searched set, for every table
    Search,
    /// That set, and a cheaper one per key partition where its tables allow
    Partitions,
}

/// A bit width from 2 to `max`, the ranges `QuantConfig::check` accepts.
fn bits(max: i64) -> clap::builder::RangedI64ValueParser<u32> {
    clap::value_parser!(u32).range(2..=max)
}

fn layer_bits(s: &str) -> Result<(String, u32), String> {
    let (node, n) = s.rsplit_once('=').ok_or_else(|| format!("`{s}`: expected NODE=N"))?;
    match n.trim().parse::<u32>() {
        Ok(b) if (2..=16).contains(&b) && !node.is_empty() => Ok((node.to_owned(), b)),
        _ => Err(format!("`{s}`: expected NODE=N with N from 2 to 16")),
    }
}

fn positive(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err(format!("`{s}`: expected a finite number above 0")),
    }
}

fn parse_p_fail(s: &str) -> Result<i32, String> {
    match s.trim() {
        "2^-128" | "-128" => Ok(-128),
        "2^-64" | "-64" => Ok(-64),
        "2^-40" | "-40" => Ok(-40),
        other => Err(format!("`{other}`: choose 2^-128, 2^-64 or 2^-40 (tfhe-rs publishes sets at these)")),
    }
}

/// Each `--layer-table-bits` node must be computed by tables: a misspelt name would
/// otherwise leave the layer at --table-bits without a word.
fn check_layer_names(layers: &[(String, u32)], quantized: &secc_ir::Graph) -> Result<()> {
    let mut tables: Vec<&str> =
        quantized.nodes.iter().filter(|n| matches!(n.op, secc_ir::Op::Lut(_))).map(|n| n.name.as_str()).collect();
    tables.sort_unstable();
    tables.dedup();
    for (name, _) in layers {
        if !tables.contains(&name.as_str()) {
            bail!(
                "--layer-table-bits {name}: no table computes a node of that name; the tables compute {}",
                if tables.is_empty() { "nothing (this model has none)".to_owned() } else { tables.join(", ") }
            );
        }
    }
    Ok(())
}

/// Points of the input grid a QDQ model is calibrated on without --calib.
const GRID_SAMPLES: usize = 200;

pub fn run(a: Args) -> Result<()> {
    let cfg = quant_config(&a);
    cfg.check().map_err(anyhow::Error::msg)?;
    let out = a.out.clone().unwrap_or_else(|| a.model.with_extension("secc"));
    if out.exists() && !a.force {
        anyhow::bail!("{} exists; pass --force to overwrite it", out.display());
    }
    let mut dump = |stage: Stage, program: Program<'_>| match (stage, program) {
        (Stage::FoldAffine | Stage::Quantize, Program::Graph(g)) if a.dump_ir => println!("{g}\n"),
        _ => {}
    };
    let (float, choice) = import_float_outputs(&a.model, &a.outputs, &mut dump)
        .with_context(|| format!("cannot compile {}", a.model.display()))?;
    if let Some(note) = choice.note() {
        eprintln!("{note}");
    }
    let (samples, coverage) = match &a.calib {
        Some(calib) => {
            let samples = read_samples(calib, &float).context("cannot read the calibration samples")?;
            let coverage = match a.fhe_ranges {
                FheRanges::Calibrated => Coverage::Calibrated,
                FheRanges::Exact => Coverage::Exact,
            };
            (samples, coverage)
        }
        None => {
            let samples = grid_samples(&float, GRID_SAMPLES).ok_or_else(|| {
                anyhow::anyhow!(
                    "cannot compile {}: --calib is required (the model states no quantization grid for its inputs)",
                    a.model.display()
                )
            })?;
            eprintln!(
                "note: no --calib: the model's own scales and zero points quantize it; calibrating on {} points of \
                 its input grid, TFHE covering proven ranges",
                samples.len()
            );
            (samples, Coverage::Exact)
        }
    };
    let opts = Options {
        quant: cfg,
        budget: budget(&a),
        fhe: FheOptions {
            log2_p_fail: a.p_fail.unwrap_or(-128),
            coverage,
            params: match a.fhe_params {
                FheParams::Catalog => ParamChoice::Catalog,
                FheParams::Search => ParamChoice::Search,
                FheParams::Partitions => ParamChoice::Partitions,
            },
        },
        mpc: MpcConfig { frac_bits: a.frac_bits, ..MpcConfig::default() },
    };
    let compiled = compile_float_observed(float, &samples, &opts, &mut dump)
        .with_context(|| format!("cannot compile {}", a.model.display()))?;
    if let Ok(q) = &compiled.quantized {
        check_layer_names(&a.layer_table_bits, q)?;
    }
    let settings = Settings {
        secc_version: env!("CARGO_PKG_VERSION").into(),
        source: a.model.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default(),
        quant: compiled.quant.clone(),
        calibration_samples: samples.len(),
        backend: None,
    };
    if let Some((fidelity, within)) = compiled.fidelity {
        let q = &compiled.quant;
        let widths = format!("{}-bit tables{}, {}-bit tree features", q.table_bits, q.layer_widths(), q.tree_bits);
        if within {
            eprintln!("quantization: {widths} ({fidelity} against float on the calibration samples)");
        } else {
            eprintln!(
                "warning: quantization: no setting tried keeps within {} point(s) of float; kept the closest, {widths} ({fidelity}); try --bits 10",
                a.accuracy_budget
            );
        }
    }
    let fhe = match (compiled.fhe, a.p_fail) {
        (Ok(c), _) => Ok(c),
        (Err(e), Some(_)) => return Err(anyhow::Error::new(e).context("no TFHE circuit")),
        (Err(e), None) => {
            // Without a quantized IR the note below says why.
            if compiled.quantized.is_ok() {
                eprintln!("note: no TFHE circuit for this model: {e}");
            }
            Err(e.to_string())
        }
    };
    let (quantized, mpc) = match (compiled.quantized, compiled.mpc) {
        (Err(q), Err(m)) => {
            bail!(
                "cannot compile {}: no private backend can run it\n  simulation and TFHE: {q}\n  SMPC: {m}",
                a.model.display()
            )
        }
        (quantized, mpc) => (quantized, mpc),
    };
    let quantized = quantized.map_err(|e| {
        eprintln!("note: no quantized IR for this model (float and SMPC only): {e}");
        e.to_string()
    });
    let mpc = mpc.map_err(|e| {
        eprintln!("note: no SMPC plan for this model: {e}");
        e.to_string()
    });
    let mut artifact =
        Artifact { float: compiled.float, quantized, float_ranges: compiled.calibration.ranges, fhe, mpc, settings };
    if a.backend.is_some() {
        let (costs, source) = MachineCosts::resolve(a.costs.as_deref())?;
        let network = Network::from(a.network);
        let (fhe, mpc) = crate::cmd::inspect::predict_both(&artifact, &costs, network);
        let choice = choose_backend(
            fhe.as_ref().map_err(String::as_str),
            mpc.as_ref().map_err(String::as_str),
            network,
            &source,
        )
        .context("neither backend can run this model")?;
        eprintln!("backend: {}", choice.reason);
        artifact.settings.backend = Some(choice);
    }
    // Before anything is written: a model whose TFHE boundary a client cannot compute
    // gets no file at all.
    let spec = match &a.client_spec {
        Some(path) => Some((path, ClientSpec::from_artifact(&artifact).context("no client spec")?)),
        None => None,
    };
    let bytes = artifact.to_bytes();
    write_new(&out, &bytes, a.force)?;
    if let Some((path, spec)) = spec {
        write_new(path, &spec.to_bytes(), a.force)?;
        eprintln!("wrote the client spec {}", path.display());
    }
    if let (Ok(c), Ok(g)) = (&artifact.fhe, &artifact.quantized) {
        let names: Vec<&str> = c.params.iter().map(|s| s.name.as_str()).collect();
        let split = match c.params.len() {
            1 => String::new(),
            _ => {
                let per: Vec<String> = bootstraps_per_partition(g, c).iter().map(usize::to_string).collect();
                format!("{} bootstraps per key partition; ", per.join(" + "))
            }
        };
        eprintln!(
            "TFHE: {} bootstraps per inference with {} ({split}p_fail 2^{}, {}-bit security)",
            c.stats.pbs,
            names.join("+"),
            c.params[0].log2_p_fail,
            c.params[0].security_bits
        );
    }
    let tables = compiled.bit_widths.map_or("no quantized IR".into(), |bw| {
        let widest = bw.widest_table_input.map_or("none".into(), |(v, bits, _)| format!("{bits} bits at {v}"));
        format!(
            "{} table lookups ({} distinct tables), widest table input {widest}",
            bw.table_lookups, bw.distinct_tables
        )
    });
    eprintln!(
        "compiled {} ({} calibration samples): {tables}; wrote {} ({} bytes)",
        artifact.float.name,
        samples.len(),
        out.display(),
        bytes.len()
    );
    Ok(())
}
