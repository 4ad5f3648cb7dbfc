//! `secc calibrate-costs`: measure the cost model's per-operation costs on this machine.

use crate::bench::calibrate::{find_set, measure_costs};
use crate::bench::measure::KeyCache;
use crate::bench::sets_used;
use crate::bench::suites::{workloads, Scale, SUITES};
use anyhow::{bail, Context, Result};
use secc_compiler::cost::machine::MachineCosts;
use std::path::PathBuf;

/// Measure what one round, one byte and one multiply-accumulate cost the SMPC runtime
/// on loopback, and what a bootstrap, a levelled multiply-accumulate, an encryption
/// and a decryption cost TFHE with each parameter set, on this machine.
///
/// `secc inspect`, `secc compile --backend auto` and `secc bench` predict with them.
/// Takes a minute or two (keys are generated for every set).
#[derive(clap::Args)]
pub struct Args {
    /// Parameter sets to measure (e.g. MESSAGE_1_CARRY_4) [default: those the full bench uses]
    #[arg(long, value_delimiter = ',', value_name = "SET")]
    pub sets: Vec<String>,
    /// Where to write the costs [default: $XDG_CACHE_HOME/secc/costs.json, which the other
    /// commands read]
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Overwrite --output if it exists
    #[arg(long)]
    pub force: bool,
}

pub fn run(a: Args) -> Result<()> {
    let path = match &a.output {
        Some(p) if p.exists() && !a.force => bail!("{} exists; pass --force to overwrite it", p.display()),
        Some(p) => p.clone(),
        None => MachineCosts::default_path().context("no cache folder: set XDG_CACHE_HOME or HOME, or pass -o")?,
    };
    let sets = if a.sets.is_empty() {
        let entries = workloads(Scale::Full, SUITES);
        sets_used(&entries.iter().filter_map(|e| e.as_ref().ok()).collect::<Vec<_>>())
    } else {
        a.sets.iter().map(|s| find_set(s)).collect::<Result<_>>()?
    };
    let bar = indicatif::ProgressBar::new_spinner();
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    let costs = measure_costs(&sets, &mut KeyCache::default(), &|m| bar.set_message(m.to_string()))?;
    bar.finish_and_clear();
    costs.save(&path)?;
    println!("{}", serde_json::to_string_pretty(&costs).expect("costs serialize"));
    eprintln!("wrote {}", path.display());
    Ok(())
}
