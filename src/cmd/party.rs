//! The SMPC backend's commands: `secc mpc-plan` (write a party's plan), `secc party`
//! (run one party over TCP), and the three local parties of `secc run --backend mpc`.

use crate::io::write_new;
use anyhow::{bail, Context, Result};
use secc_compiler::lower::mpc::{lower_mpc, MpcConfig};
use secc_ir::artifact::Artifact;
use secc_ir::lowered::mpc::Plan;
use secc_runtime::mpc::session::{run_local, run_party, PartyReport};
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Write the SMPC protocol plan of a compiled model for one party.
///
/// The model owner's plan holds the (fixed-point) weights; give the other parties the
/// plan written with `--weightless`.
#[derive(clap::Args)]
pub struct PlanArgs {
    /// A model compiled by `secc compile`
    pub artifact: PathBuf,
    /// Where to write the plan
    #[arg(short, long, value_name = "PLAN")]
    pub output: PathBuf,
    /// Leave the weights out (the plan for the data owner and the result receiver)
    #[arg(long)]
    pub weightless: bool,
    /// Fractional bits of the fixed-point encoding on Z_2^64
    #[arg(long, default_value_t = 18)]
    pub frac_bits: u32,
    /// Overwrite the output file if it exists
    #[arg(long)]
    pub force: bool,
}

/// Run one party of an SMPC session.
///
/// PARTIES.toml lists the three parties' addresses, in party order:
/// `parties = ["127.0.0.1:7000", "127.0.0.1:7001", "127.0.0.1:7002"]`.
/// Party 0 shares the input (--input) and receives the output (-o, or standard output);
/// party 1 shares the weights (its plan must hold them). Bytes and rounds sent go to
/// standard error.
#[derive(clap::Args)]
pub struct PartyArgs {
    /// The plan (from `secc mpc-plan`)
    pub plan: PathBuf,
    /// This party's id: 0, 1 or 2
    #[arg(long)]
    pub id: usize,
    /// The three parties' addresses
    #[arg(long, value_name = "PARTIES.toml")]
    pub parties: PathBuf,
    /// Samples (the data owner only)
    #[arg(long, value_name = "X.csv")]
    pub input: Option<PathBuf>,
    /// Write the outputs here (the receiver only)
    #[arg(short, long, value_name = "Y.csv")]
    pub output: Option<PathBuf>,
    /// Give up on a silent peer after this many seconds
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
    /// Run the plan this many times in the session (for timing)
    #[arg(long, default_value_t = 1)]
    pub repeat: usize,
    /// Overwrite the output file if it exists
    #[arg(long)]
    pub force: bool,
}

#[derive(serde::Deserialize)]
struct Parties {
    parties: Vec<String>,
}

/// The plan of `art` with the default settings.
pub fn plan_of(art: &Artifact, frac_bits: u32) -> Result<Plan> {
    Ok(lower_mpc(&art.float, &art.float_ranges, MpcConfig { frac_bits, ..MpcConfig::default() })?)
}

pub fn write_plan(a: PlanArgs) -> Result<()> {
    let art = Artifact::read(&a.artifact)?;
    let plan = plan_of(&art, a.frac_bits)?;
    let plan = if a.weightless { plan.weightless() } else { plan };
    write_new(&a.output, &plan.to_bytes(), a.force)
}

fn read_addrs(path: &Path) -> Result<[SocketAddr; 3]> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let p: Parties = toml::from_str(&text)
        .with_context(|| format!("{}: expected parties = [\"host:port\", ...]", path.display()))?;
    if p.parties.len() != 3 {
        bail!("{}: lists {} parties, expected 3", path.display(), p.parties.len());
    }
    let mut out = Vec::new();
    for a in &p.parties {
        out.push(
            a.to_socket_addrs()
                .ok()
                .and_then(|mut i| i.next())
                .with_context(|| format!("{}: bad address {a}", path.display()))?,
        );
    }
    Ok(out.try_into().expect("three"))
}

pub fn party(a: PartyArgs) -> Result<()> {
    if a.id > 2 {
        bail!("--id must be 0, 1 or 2");
    }
    let bytes = std::fs::read(&a.plan).with_context(|| format!("cannot read {}", a.plan.display()))?;
    let plan = Plan::from_bytes(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", a.plan.display()))?;
    let addrs = read_addrs(&a.parties)?;
    let samples = match &a.input {
        Some(p) => Some(secc_runtime::csv::read_csv(p, plan.input_shape.iter().product())?),
        None => None,
    };
    let listener =
        TcpListener::bind(addrs[a.id]).with_context(|| format!("party {}: cannot listen on {}", a.id, addrs[a.id]))?;
    let report =
        run_party(a.id, &plan, listener, &addrs, Duration::from_secs_f64(a.timeout), samples.as_deref(), a.repeat)
            .with_context(|| format!("party {}", a.id))?;
    print_report(&report);
    if let Some(rows) = &report.outputs {
        let text = secc_runtime::csv::format_csv(rows);
        match &a.output {
            Some(path) => write_new(path, text.as_bytes(), a.force)?,
            None => print!("{text}"),
        }
    }
    Ok(())
}

/// Runs the three parties on loopback and returns the outputs.
pub fn run_three(art: &Artifact, samples: &[Vec<f32>]) -> Result<Vec<Vec<f32>>> {
    let plan = plan_of(art, MpcConfig::default().frac_bits)?;
    let reports = run_local(&plan, samples, Duration::from_secs(30), 1)?;
    reports.iter().for_each(print_report);
    Ok(reports[plan.roles.receiver].outputs.clone().expect("the receiver gets the outputs"))
}

fn print_report(r: &PartyReport) {
    for (t, d) in &r.runs {
        eprintln!(
            "party {}: {:.3} ms, {} rounds, {} bytes sent in {} messages (set-up: {} round, {} bytes)",
            r.id,
            d.as_secs_f64() * 1e3,
            t.rounds,
            t.bytes,
            t.frames,
            r.setup.rounds,
            r.setup.bytes
        );
    }
}
