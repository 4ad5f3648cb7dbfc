//! `secc bench`: the FHE-vs-SMPC comparison on this machine, measured and predicted.

use crate::bench::calibrate::{describe_machine, load_average, measure_costs};
use crate::bench::measure::KeyCache;
use crate::bench::report::{markdown_table, summary, write_report, Report, Row};
use crate::bench::suites::{workloads, Scale, SUITES};
use crate::bench::{bench_row, sets_used};
use anyhow::{bail, Result};
use secc_compiler::cost::machine::MachineCosts;
use std::path::PathBuf;

/// Benchmark TFHE against SMPC on matrix products, activations, linear regressions,
/// random forests, the digits dense net and the digits CNN.
///
/// Each row is compiled by the normal pipeline and run for real: TFHE with keys made
/// once per parameter set (encrypt + evaluate + decrypt per inference), SMPC as three
/// parties on loopback sockets. Prints the table (median time, bootstraps, rounds and
/// bytes, error against the float IR, the cost model's prediction and the winners) and
/// writes DIR/bench.json, DIR/bench.md and charts (DIR/SUITE.svg; the model suites
/// share DIR/models.svg).
#[derive(clap::Args)]
pub struct Args {
    /// How much to run: smoke (seconds), quick (a few minutes), full (longer)
    #[arg(long, value_enum, default_value = "quick")]
    pub suite: Scale,
    /// Only these suites: matmul, activations, linreg, forest, dense, cnn
    #[arg(long, value_delimiter = ',', value_name = "SUITE")]
    pub only: Vec<String>,
    /// Where to write the results (bench.json, bench.md and the charts in it are replaced)
    #[arg(long, value_name = "DIR", default_value = "bench-out")]
    pub out: PathBuf,
    /// Per-operation costs for the predictions [default: those of `secc calibrate-costs`,
    /// else the built-in ones]
    #[arg(long, value_name = "FILE")]
    pub costs: Option<PathBuf>,
    /// Measure the per-operation costs first (the parameter sets these rows use) and
    /// predict with them; they are written to DIR/costs.json
    #[arg(long, conflicts_with = "costs")]
    pub calibrate: bool,
}

fn progress(len: usize) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
            .expect("valid template"),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}

pub fn run(a: Args) -> Result<()> {
    if let Some(bad) = a.only.iter().find(|s| !SUITES.contains(&s.as_str())) {
        bail!("unknown suite `{bad}`; the suites are {}", SUITES.join(", "));
    }
    let chosen: Vec<&str> =
        if a.only.is_empty() { SUITES.to_vec() } else { a.only.iter().map(String::as_str).collect() };
    let load_before = load_average();
    let entries = workloads(a.suite, &chosen);
    let mut keys = KeyCache::default();
    let (costs, source) = if a.calibrate {
        let ready: Vec<_> = entries.iter().filter_map(|e| e.as_ref().ok()).collect();
        let sets = sets_used(&ready);
        let bar = progress(0);
        let costs = measure_costs(&sets, &mut keys, &|m| bar.set_message(format!("calibrating: {m}")))?;
        bar.finish_and_clear();
        let path = a.out.join("costs.json");
        costs.save(&path)?;
        (costs, format!("measured at the start of this run ({})", path.display()))
    } else {
        MachineCosts::resolve(a.costs.as_deref())?
    };
    let bar = progress(entries.len());
    let mut rows = Vec::new();
    for e in &entries {
        rows.push(match e {
            Ok(w) => bench_row(w, a.suite, &costs, &mut keys, &|stage| bar.set_message(format!("{}: {stage}", w.name))),
            Err(u) => Row::unsupported(u.suite, &u.name, &u.name, &u.reason),
        });
        bar.inc(1);
    }
    bar.finish_and_clear();
    let report = Report {
        scale: a.suite,
        machine: describe_machine(costs.cores),
        load: (load_before, load_average()),
        costs: source,
        rows,
    };
    write_report(&report, &a.out)?;
    println!("{}\n{}", markdown_table(&report), summary(&report));
    eprintln!("wrote {}/bench.json, bench.md and the charts", a.out.display());
    Ok(())
}
