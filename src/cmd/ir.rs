//! `secc ir`: the IR's text form from the command line: print any stage of a model,
//! check hand-written or edited IR files, run text filetests.

use crate::io::{read_samples, write_new};
use anyhow::{anyhow, bail, Context, Result};
use secc_compiler::filetest::run_filetest;
use secc_compiler::pipeline::{compile_float_observed, import_float_observed, Options, Program, Stage};
use secc_ir::artifact::{Artifact, MAGIC};
use secc_ir::lowered::verify_plan;
use secc_ir::text::{parse_circuit, parse_graph, parse_plan};
use secc_ir::{verify_graph, IrError, ValueId};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The IR's text form: print a stage, check IR files, run filetests.
///
/// The text form is lossless: every stage of the pipeline (graphs, the TFHE circuit,
/// the SMPC plan) prints to text that reads back to the same program, so dumps can be
/// edited and checked, and passes are tested on text files.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: IrCommand,
}

#[derive(clap::Subcommand)]
enum IrCommand {
    Print(PrintArgs),
    Check(CheckArgs),
    Test(TestArgs),
}

/// Print one stage of a compiled model, or of an ONNX model run through the pipeline.
///
/// Stages, in pipeline order: import, fold_constants, fold_affine, calibrate, quantize,
/// bit_width (graphs), lower_fhe (the TFHE circuit), lower_mpc (the SMPC plan, with the
/// model owner's weights). An artifact keeps the float IR after fold_affine, the
/// quantized IR and both programs; earlier stages print from the ONNX file. Stages after
/// fold_affine need --calib with an ONNX file.
#[derive(clap::Args)]
struct PrintArgs {
    /// A model compiled by `secc compile`, or an ONNX model
    model: PathBuf,
    /// The stage to print [default: bit_width, or fold_affine for an ONNX model without --calib]
    #[arg(long, value_name = "NAME", value_parser = parse_stage)]
    stage: Option<Stage>,
    /// Calibration samples, for the stages after fold_affine of an ONNX model
    #[arg(long, value_name = "CALIB.csv")]
    calib: Option<PathBuf>,
    /// Write the text here instead of standard output
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Overwrite the output file if it exists
    #[arg(long)]
    force: bool,
}

/// Parse and verify IR files, and print each back to standard output.
///
/// Each file holds a graph, a TFHE circuit or an SMPC plan in the text form
/// `secc ir print` writes (`-` reads standard input). Graphs and plans are verified; a
/// circuit is parsed only (it is checked against its graph when an artifact is read).
/// A file that does not parse or verify is reported with its line and column (parse errors) or its value (`%N`,
/// verifier errors) and the command exits with status 1. Printing a printed file
/// gives the same text.
#[derive(clap::Args)]
struct CheckArgs {
    /// IR files (`-`: standard input)
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

/// Run text filetests: each file's input IR through its stages, against its expectations.
///
/// A filetest starts with `; test: STAGE[, STAGE...]`, optionally `; set: name=value, ...`
/// (bits, input_bits, weight_bits, table_bits, tree_bits, output_tables,
/// max_weight_norm, p_fail, coverage, frac_bits) and `; sample: x, y, ...` lines
/// (calibration samples), then the input graph, then `; check: TEXT` / `; not: TEXT`
/// lines, an `; error: TEXT` line, or an `; output:` section with the whole expected
/// text. SECC_BLESS=1 rewrites `; output:` sections from what the stages produce.
#[derive(clap::Args)]
struct TestArgs {
    /// Filetests (`.ir`)
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

fn parse_stage(s: &str) -> Result<Stage, String> {
    Stage::from_name(s).ok_or_else(|| format!("unknown stage `{s}`; stages: {}", Stage::names()))
}

pub fn run(a: Args) -> Result<()> {
    match a.command {
        IrCommand::Print(a) => print(a),
        IrCommand::Check(a) => check(a),
        IrCommand::Test(a) => test(a),
    }
}

fn print(a: PrintArgs) -> Result<()> {
    let mut head = [0u8; 8];
    let is_artifact = std::fs::File::open(&a.model)
        .and_then(|mut f| f.read_exact(&mut head))
        .map(|()| &head == MAGIC)
        .unwrap_or(false);
    let text = if is_artifact { print_artifact(&a)? } else { print_onnx(&a)? };
    match &a.output {
        Some(path) => write_new(path, text.as_bytes(), a.force),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

fn print_artifact(a: &PrintArgs) -> Result<String> {
    if a.calib.is_some() {
        bail!("--calib is for ONNX models; {} is compiled already", a.model.display());
    }
    let art = Artifact::read(&a.model)?;
    Ok(match a.stage.unwrap_or(Stage::BitWidth) {
        s @ (Stage::Import | Stage::FoldConstants) => bail!(
            "{} keeps the float IR after fold_affine; print stage {s} from the ONNX model (`secc ir print MODEL.onnx --stage {s}`)",
            a.model.display()
        ),
        Stage::FoldAffine | Stage::Calibrate => art.float.to_string(),
        Stage::Quantize | Stage::BitWidth => crate::cmd::quantized(&art)?.to_string(),
        Stage::LowerFhe => art.fhe.as_ref().map_err(|e| anyhow!("this model has no TFHE circuit: {e}"))?.to_string(),
        Stage::LowerMpc => art.mpc.as_ref().map_err(|e| anyhow!("this model has no SMPC plan: {e}"))?.to_string(),
    } + "\n")
}

fn print_onnx(a: &PrintArgs) -> Result<String> {
    let stage = a.stage.unwrap_or(if a.calib.is_some() { Stage::BitWidth } else { Stage::FoldAffine });
    let mut text = None;
    let mut keep = |s: Stage, p: Program<'_>| {
        if s == stage {
            text = Some(match p {
                Program::Graph(g) => g.to_string(),
                Program::Circuit(c) => c.to_string(),
                Program::Plan(p) => p.to_string(),
            });
        }
    };
    let cannot = || format!("cannot compile {}", a.model.display());
    let float = import_float_observed(&a.model, &mut keep).with_context(cannot)?;
    if stage > Stage::FoldAffine {
        let Some(calib) = &a.calib else { bail!("stage {stage} needs calibration samples: pass --calib CALIB.csv") };
        let samples = read_samples(calib, &float).context("cannot read the calibration samples")?;
        let compiled = compile_float_observed(float, &samples, &Options::default(), &mut keep).with_context(cannot)?;
        match stage {
            Stage::LowerFhe => drop(compiled.fhe.context("no TFHE circuit")?),
            Stage::LowerMpc => drop(compiled.mpc.context("no SMPC plan")?),
            _ => {}
        }
    }
    Ok(text.expect("every stage up to the asked one ran") + "\n")
}

/// What an IR file holds, by its first word.
fn check_text(text: &str) -> Result<String, String> {
    let first = text
        .lines()
        .map(|l| l.split(';').next().unwrap_or("").trim())
        .find(|l| !l.is_empty())
        .and_then(|l| l.split(|c: char| !c.is_ascii_alphanumeric() && c != '_').next())
        .unwrap_or("");
    Ok(match first {
        // A circuit is verified against its graph where both are: in an artifact.
        "circuit" => parse_circuit(text).map_err(|e| e.to_string())?.to_string(),
        "plan" => {
            let p = parse_plan(text).map_err(|e| e.to_string())?;
            verify_plan(&p).map_err(|e| e.to_string())?;
            p.to_string()
        }
        _ => {
            let g = parse_graph(text).map_err(|e| e.to_string())?;
            verify_graph(&g).map_err(|e| with_lines(text, e))?;
            g.to_string()
        }
    })
}

/// A verifier error with the line that defines each value it names.
fn with_lines(text: &str, e: IrError) -> String {
    let IrError::Verify { graph, errors } = e else { return e.to_string() };
    let line_of = |v: ValueId| {
        let def = format!("{v} =");
        text.lines()
            .position(|l| l.trim_start().starts_with(&def))
            .map_or(String::new(), |i| format!("line {}: ", i + 1))
    };
    let lines: Vec<String> = errors.iter().map(|e| format!("  {}{e}", line_of(e.value))).collect();
    format!("graph `{graph}` failed verification:\n{}", lines.join("\n"))
}

fn check(a: CheckArgs) -> Result<()> {
    let mut failed = 0;
    for path in &a.files {
        let (name, text) = read_text(path)?;
        match check_text(&text) {
            Ok(printed) => println!("{printed}"),
            Err(e) => {
                eprintln!("error: {name}: {e}");
                failed += 1;
            }
        }
    }
    match failed {
        0 => Ok(()),
        n => bail!("{n} of {} files failed", a.files.len()),
    }
}

fn read_text(path: &Path) -> Result<(String, String)> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).context("cannot read standard input")?;
        return Ok(("<stdin>".into(), text));
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok((path.display().to_string(), text))
}

fn test(a: TestArgs) -> Result<()> {
    let bless = std::env::var_os("SECC_BLESS").is_some_and(|v| v == "1");
    let mut failed = 0;
    for path in &a.files {
        match run_filetest(path, bless) {
            Ok(()) => eprintln!("ok {}", path.display()),
            Err(e) => {
                eprintln!("FAIL {e}");
                failed += 1;
            }
        }
    }
    match failed {
        0 => {
            eprintln!("{} filetests passed", a.files.len());
            Ok(())
        }
        n => bail!("{n} of {} filetests failed", a.files.len()),
    }
}
