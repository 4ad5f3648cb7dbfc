//! The one ordered list of stages ([`Stage::ALL`]), each followed by its verifier:
//!
//! | stage | from → to |
//! |---|---|
//! | `import` | ONNX file → float IR |
//! | `fold_constants` | float IR → float IR |
//! | `fold_affine` | float IR → float IR (the float oracle the artifact keeps) |
//! | `calibrate` | float IR → value ranges on the calibration set (the graph is unchanged) |
//! | `quantize` | float IR + ranges → integer IR (runs each op's quantization rule and `fuse_lut`; with a budget, at the cheapest widths within it: `precision`) |
//! | `bit_width` | integer IR → its bit-width report (the graph is unchanged) |
//! | `lower_fhe` | integer IR → TFHE circuit |
//! | `lower_mpc` | float IR + ranges → SMPC plan |
//!
//! A lowering that cannot handle the model does not stop the pipeline: its error is
//! kept in [`Compiled`] (and in the artifact), so a model that only one backend runs
//! still compiles. Nothing outside this module calls a lowering: the CLI, the
//! benchmark and the tests read the programs compiled here.

use crate::frontend::OutputChoice;
use crate::lower::fhe::lower_fhe;
use crate::lower::mpc::lower_mpc;
use crate::passes::bit_width::{analyze_bit_widths, BitWidthReport};
use crate::passes::calibrate::{calibrate, Calibration};
use crate::passes::fold_affine::fold_affine;
use crate::passes::fold_constants::fold_constants;
use crate::passes::precision::{quantize_within, Budget, Fidelity};
use crate::passes::quantize::{quantize, QuantConfig};
use crate::{frontend, CompileError};
use secc_ir::lowered::fhe::Circuit;
use secc_ir::lowered::mpc::Plan;
use secc_ir::lowered::{verify_circuit, verify_plan};
use secc_ir::{verify_graph, Graph, Tensor};
use std::fmt;
use std::path::Path;

pub use crate::lower::fhe::{Coverage, ParamChoice};
pub use crate::lower::mpc::{MpcConfig, FOREST_FRAC_BITS};

/// A stage of the pipeline, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// ONNX → float IR.
    Import,
    /// Evaluates nodes whose operands are all constants.
    FoldConstants,
    /// Absorbs per-channel affine ops into the linear op before them.
    FoldAffine,
    /// Records each float value's range over the calibration samples.
    Calibrate,
    /// Float IR → integer IR.
    Quantize,
    /// Per-value bit widths and table statistics.
    BitWidth,
    /// Integer IR → TFHE circuit.
    LowerFhe,
    /// Float IR → SMPC plan.
    LowerMpc,
}

impl Stage {
    /// Every stage, in the order the pipeline runs them.
    pub const ALL: [Stage; 8] = [
        Stage::Import,
        Stage::FoldConstants,
        Stage::FoldAffine,
        Stage::Calibrate,
        Stage::Quantize,
        Stage::BitWidth,
        Stage::LowerFhe,
        Stage::LowerMpc,
    ];

    /// The stage's name (`secc ir print --stage NAME`, filetest headers, errors).
    pub fn name(self) -> &'static str {
        match self {
            Stage::Import => "import",
            Stage::FoldConstants => "fold_constants",
            Stage::FoldAffine => "fold_affine",
            Stage::Calibrate => "calibrate",
            Stage::Quantize => "quantize",
            Stage::BitWidth => "bit_width",
            Stage::LowerFhe => "lower_fhe",
            Stage::LowerMpc => "lower_mpc",
        }
    }

    /// The stage called `name`.
    pub fn from_name(name: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The names of every stage, comma-separated (for messages).
    pub fn names() -> String {
        Stage::ALL.map(Stage::name).join(", ")
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a stage produced, as the observer of [`import_float`] and [`compile_float`]
/// sees it.
#[derive(Clone, Copy, Debug)]
pub enum Program<'a> {
    /// A graph (every stage up to `bit_width`; `calibrate` and `bit_width` leave it as it was).
    Graph(&'a Graph),
    /// The TFHE circuit.
    Circuit(&'a Circuit),
    /// The SMPC plan.
    Plan(&'a Plan),
}

/// Settings of the TFHE lowering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FheOptions {
    /// log2 of each bootstrap's failure probability (−128, −64 or −40).
    pub log2_p_fail: i32,
    /// What each bootstrap covers.
    pub coverage: Coverage,
    /// Where the parameter set comes from.
    pub params: ParamChoice,
}

impl Default for FheOptions {
    fn default() -> Self {
        FheOptions { log2_p_fail: -128, coverage: Coverage::Calibrated, params: ParamChoice::default() }
    }
}

/// Every setting of the pipeline.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The quantizer's.
    pub quant: QuantConfig,
    /// When set, `quant`'s table, tree-feature and weight-norm widths are the cheapest
    /// to try: the quantizer widens them until the simulation keeps within the budget.
    pub budget: Option<Budget>,
    /// The TFHE lowering's.
    pub fhe: FheOptions,
    /// The SMPC lowering's.
    pub mpc: MpcConfig,
}

/// The result of compiling a model: every stage's product.
#[derive(Debug)]
pub struct Compiled {
    /// The float IR after the float passes (the float oracle; the SMPC plan's source).
    pub float: Graph,
    /// The range of every float value on the calibration set.
    pub calibration: Calibration,
    /// The integer IR (the simulation oracle; the TFHE circuit's source), or why the
    /// model has none (attention's softmax inside the model): the float IR and the
    /// SMPC plan do not need it.
    pub quantized: Result<Graph, CompileError>,
    /// The quantizer's settings that made it (the asked ones, or those the budget chose).
    pub quant: QuantConfig,
    /// With a budget: how closely the simulation follows float on the calibration
    /// samples, and whether that is within the budget.
    pub fidelity: Option<(Fidelity, bool)>,
    /// What the range analysis of the integer IR found.
    pub bit_widths: Option<BitWidthReport>,
    /// The TFHE circuit, or why the model has none.
    pub fhe: Result<Circuit, CompileError>,
    /// The SMPC plan, or why the model has none.
    pub mpc: Result<Plan, CompileError>,
}

impl Compiled {
    /// The artifact of this compilation from `source`, calibrated on `samples` samples,
    /// as it is with nothing decided on top (each program that failed keeps why):
    /// what tests and benchmarks serve and run.
    pub fn into_artifact(self, source: &str, samples: usize) -> secc_ir::artifact::Artifact {
        let settings = secc_ir::artifact::Settings {
            secc_version: env!("CARGO_PKG_VERSION").into(),
            source: source.into(),
            quant: self.quant,
            calibration_samples: samples,
            backend: None,
        };
        secc_ir::artifact::Artifact {
            float: self.float,
            quantized: self.quantized.map_err(|e| e.to_string()),
            float_ranges: self.calibration.ranges,
            fhe: self.fhe.map_err(|e| e.to_string()),
            mpc: self.mpc.map_err(|e| e.to_string()),
            settings,
        }
    }
}

/// Runs the stages in [`Stage::ALL`] order, verifying each product and showing it to
/// an observer (`--dump-ir`, `secc ir print --stage`).
struct Driver<'o> {
    next: usize,
    observe: &'o mut dyn FnMut(Stage, Program<'_>),
}

impl Driver<'_> {
    fn enter(&mut self, stage: Stage) {
        let at = Stage::ALL.iter().position(|&s| s == stage).expect("every stage is listed");
        assert_eq!(at, self.next, "stage {stage} run out of order");
        self.next += 1;
    }

    /// Runs a stage that produces a graph, then the graph verifier.
    fn graph(
        &mut self,
        stage: Stage,
        run: impl FnOnce() -> Result<Graph, CompileError>,
    ) -> Result<Graph, CompileError> {
        self.enter(stage);
        let g = run()?;
        verify_graph(&g)?;
        (self.observe)(stage, Program::Graph(&g));
        Ok(g)
    }

    /// Runs a stage that analyses `g` without changing it.
    fn analysis<T>(
        &mut self,
        stage: Stage,
        g: &Graph,
        run: impl FnOnce() -> Result<T, CompileError>,
    ) -> Result<T, CompileError> {
        self.enter(stage);
        let t = run()?;
        (self.observe)(stage, Program::Graph(g));
        Ok(t)
    }
}

/// Imports an ONNX file and runs the float passes (stages `import` to `fold_affine`).
pub fn import_float(path: &Path) -> Result<Graph, CompileError> {
    import_float_observed(path, &mut |_, _| {})
}

/// [`import_float`], showing each stage's product to `observe`.
pub fn import_float_observed(path: &Path, observe: &mut dyn FnMut(Stage, Program<'_>)) -> Result<Graph, CompileError> {
    import_float_outputs(path, &[], observe).map(|(g, _)| g)
}

/// [`import_float_observed`] computing the graph outputs `outputs` (the default ones
/// when empty), and which those are.
pub fn import_float_outputs(
    path: &Path,
    outputs: &[String],
    observe: &mut dyn FnMut(Stage, Program<'_>),
) -> Result<(Graph, OutputChoice), CompileError> {
    let mut d = Driver { next: 0, observe };
    let mut choice = None;
    let g = d.graph(Stage::Import, || {
        let (g, c) = frontend::import_onnx_outputs(path, outputs)?;
        choice = Some(c);
        Ok(g)
    })?;
    let g = d.graph(Stage::FoldConstants, || fold_constants(&g))?;
    let g = d.graph(Stage::FoldAffine, || fold_affine(&g))?;
    Ok((g, choice.expect("the import ran")))
}

/// Runs the rest of the pipeline on a float graph (stages `calibrate` to `lower_mpc`).
pub fn compile_float(float: Graph, samples: &[Vec<Tensor>], opts: &Options) -> Result<Compiled, CompileError> {
    compile_float_observed(float, samples, opts, &mut |_, _| {})
}

/// [`compile_float`], showing each stage's product to `observe`.
pub fn compile_float_observed(
    float: Graph,
    samples: &[Vec<Tensor>],
    opts: &Options,
    observe: &mut dyn FnMut(Stage, Program<'_>),
) -> Result<Compiled, CompileError> {
    let mut d = Driver { next: Stage::ALL.iter().position(|&s| s == Stage::Calibrate).expect("listed"), observe };
    let calibration = d.analysis(Stage::Calibrate, &float, || calibrate(&float, samples))?;
    let (mut quant, mut fidelity) = (opts.quant.clone(), None);
    let quantized = d.graph(Stage::Quantize, || match opts.budget {
        None => quantize(&float, &calibration, samples, &opts.quant),
        Some(budget) => {
            let chosen = quantize_within(&float, &calibration, samples, &opts.quant, budget)?;
            (quant, fidelity) = (chosen.config, Some((chosen.fidelity, chosen.within)));
            Ok(chosen.quantized)
        }
    });
    let bit_widths = match &quantized {
        Ok(q) => Some(d.analysis(Stage::BitWidth, q, || Ok(analyze_bit_widths(q)))?),
        Err(_) => {
            d.enter(Stage::BitWidth);
            None
        }
    };
    d.enter(Stage::LowerFhe);
    let fhe = match &quantized {
        Ok(q) => lower_circuit(q, samples, opts.fhe),
        Err(e) => Err(CompileError::Stage { stage: Stage::LowerFhe.name(), message: format!("no integer IR: {e}") }),
    };
    if let Ok(c) = &fhe {
        (d.observe)(Stage::LowerFhe, Program::Circuit(c));
    }
    d.enter(Stage::LowerMpc);
    let mpc = lower_plan(&float, &calibration.ranges, opts.mpc);
    if let Ok(p) = &mpc {
        (d.observe)(Stage::LowerMpc, Program::Plan(p));
    }
    Ok(Compiled { float, calibration, quantized, quant, fidelity, bit_widths, fhe, mpc })
}

/// What [`run_stage`] produced.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// A graph.
    Graph(Graph),
    /// A TFHE circuit.
    Circuit(Circuit),
    /// An SMPC plan.
    Plan(Plan),
}

impl Output {
    /// The product as the observers see it.
    pub fn as_program(&self) -> Program<'_> {
        match self {
            Output::Graph(g) => Program::Graph(g),
            Output::Circuit(c) => Program::Circuit(c),
            Output::Plan(p) => Program::Plan(p),
        }
    }
}

/// Runs one stage on a graph of the form it takes (a float graph for the stages up to
/// `quantize` and for `lower_mpc`, an integer graph for `bit_width` and `lower_fhe`),
/// then its verifier: the text filetests (`secc ir test`) drive the pipeline through
/// this. Stages that need value ranges calibrate `graph` on `samples` first.
pub fn run_stage(stage: Stage, graph: &Graph, samples: &[Vec<Tensor>], opts: &Options) -> Result<Output, CompileError> {
    let g = match stage {
        Stage::Import => {
            let message = "it reads an ONNX file, not IR".into();
            return Err(CompileError::Stage { stage: stage.name(), message });
        }
        Stage::FoldConstants => fold_constants(graph)?,
        Stage::FoldAffine => fold_affine(graph)?,
        Stage::Calibrate => {
            calibrate(graph, samples)?;
            graph.clone()
        }
        Stage::Quantize => quantize(graph, &calibrate(graph, samples)?, samples, &opts.quant)?,
        Stage::BitWidth => {
            analyze_bit_widths(graph);
            graph.clone()
        }
        Stage::LowerFhe => return Ok(Output::Circuit(lower_circuit(graph, samples, opts.fhe)?)),
        Stage::LowerMpc => {
            let ranges = calibrate(graph, samples)?.ranges;
            return Ok(Output::Plan(lower_plan(graph, &ranges, opts.mpc)?));
        }
    };
    verify_graph(&g)?;
    Ok(Output::Graph(g))
}

/// The `lower_fhe` stage and its verifier: the circuit of `quantized`, its bootstraps
/// covering what its accumulators reach on `samples` ([`Coverage::Calibrated`]) or
/// their exact ranges.
pub fn lower_circuit(quantized: &Graph, samples: &[Vec<Tensor>], opts: FheOptions) -> Result<Circuit, CompileError> {
    let observed = calibrate(quantized, samples)?;
    let circuit = lower_fhe(quantized, opts.log2_p_fail, opts.coverage, &observed, opts.params)?;
    verify_circuit(&circuit, quantized)?;
    Ok(circuit)
}

/// The `lower_mpc` stage and its verifier: the plan of `float`, whose values took `ranges` on the
/// calibration set. `secc mpc-plan --frac-bits` re-runs it on an artifact's float IR.
pub fn lower_plan(float: &Graph, ranges: &[Option<(f64, f64)>], cfg: MpcConfig) -> Result<Plan, CompileError> {
    let plan = lower_mpc(float, ranges, cfg)?;
    verify_plan(&plan)?;
    Ok(plan)
}
