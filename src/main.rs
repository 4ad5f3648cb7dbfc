//! `secc`: compile ONNX models for privacy-preserving inference, inspect what was
//! compiled, and run it. This binary owns the command line only; the work is done
//! by the `secc-compiler` and `secc-runtime` crates.

mod bench;
mod cmd;
mod io;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

const ABOUT: &str = "secc compiles trained ONNX models into a quantized integer IR for privacy-preserving \
inference: a TFHE circuit (fully homomorphic encryption) or an SMPC protocol plan (secret sharing). \
Neural nets (dense, conv, pooling, activations), linear models and tree ensembles (random forests, \
gradient boosting) run under TFHE with real keys (`run --backend fhe`, or keygen/encrypt/eval/decrypt), \
as three parties on secret shares (`run --backend mpc`, or `party` per process), and in the clear \
(float reference, exact quantized simulation). `bench` measures both private backends side by side; \
`inspect` and `compile --backend auto` predict which is faster for a model.";

const AFTER: &str = "\
Typical session:
  secc compile model.onnx --calib calib.csv -o model.secc --backend auto
  secc inspect model.secc
  secc run model.secc --input x.csv --backend sim
  secc ir print model.secc --stage lower_mpc     (any stage, as text: see `secc ir --help`)

FHE or SMPC on this machine (a few minutes):
  secc bench --suite quick --out bench-out

Sample files (--calib, --input): CSV with one sample per row, the model input flattened
in C order (a 1x1x8x8 image is 64 numbers), no header needed; or a .npy array of shape
[N, ...] whose rows are samples.";

#[derive(Parser)]
#[command(name = "secc", version, about = ABOUT, after_help = AFTER)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Compile(cmd::compile::Args),
    Inspect(cmd::inspect::Args),
    Run(cmd::run::Args),
    MpcPlan(cmd::party::PlanArgs),
    Party(cmd::party::PartyCommand),
    Serve(cmd::serve_fhe::ServeArgs),
    Infer(cmd::serve::InferArgs),
    PartyKeygen(cmd::party::KeygenArgs),
    Keygen(cmd::fhe::KeygenArgs),
    Encrypt(cmd::fhe::EncryptArgs),
    Eval(cmd::fhe::EvalArgs),
    Decrypt(cmd::fhe::DecryptArgs),
    Bench(cmd::bench::Args),
    CalibrateCosts(cmd::calibrate::Args),
    Ir(cmd::ir::Args),
}

fn main() -> ExitCode {
    // The ONNX import turns tract's assertions into errors; say nothing when one fires.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !secc_compiler::frontend::onnx::is_tract_panic(info) {
            default_hook(info)
        }
    }));
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Compile(a) => cmd::compile::run(a),
        Command::Inspect(a) => cmd::inspect::run(a),
        Command::Run(a) => cmd::run::run(a),
        Command::MpcPlan(a) => cmd::party::write_plan(a),
        Command::Party(a) => cmd::party::party(a),
        Command::Serve(a) => cmd::serve_fhe::serve(a),
        Command::Infer(a) => cmd::serve::infer(a),
        Command::PartyKeygen(a) => cmd::party::keygen(a),
        Command::Keygen(a) => cmd::fhe::keygen(a),
        Command::Encrypt(a) => cmd::fhe::encrypt(a),
        Command::Eval(a) => cmd::fhe::eval(a),
        Command::Decrypt(a) => cmd::fhe::decrypt(a),
        Command::Bench(a) => cmd::bench::run(a),
        Command::CalibrateCosts(a) => cmd::calibrate::run(a),
        Command::Ir(a) => cmd::ir::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
