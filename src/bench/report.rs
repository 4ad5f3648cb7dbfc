//! What `secc bench` writes: `bench.json` (every figure), `bench.md` (the table, with
//! the charts embedded) and the charts: one per synthetic suite (`SUITE.svg`, time
//! against size) and one for the model suites together (`models.svg`).

use super::chart::{line_chart, Series};
use anyhow::{Context, Result};
use secc_compiler::cost::format_ms;
use secc_ir::artifact::PrivateBackend;
use serde::Serialize;
use std::fmt::Write;
use std::path::Path;

/// A backend's result on a row: measured, or why it cannot run the row.
#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome<T> {
    /// It ran.
    Measured(T),
    /// It cannot run this model (yet), and why.
    NotSupported {
        /// The compiler's or runtime's message.
        reason: String,
    },
}

impl<T> Outcome<T> {
    fn measured(&self) -> Option<&T> {
        match self {
            Outcome::Measured(t) => Some(t),
            Outcome::NotSupported { .. } => None,
        }
    }
}

/// How far a backend's outputs are from the float IR's.
#[derive(Serialize)]
pub struct Accuracy {
    /// Samples compared.
    pub samples: usize,
    /// Largest absolute difference of an output.
    pub max_abs_error: f64,
    /// Fraction of samples whose largest output is the float IR's (multi-output models).
    pub argmax_agreement: Option<f64>,
}

/// One row under TFHE.
#[derive(Serialize)]
pub struct FheResult {
    /// The parameter set (`MESSAGE_1_CARRY_4`, p_fail 2^-128).
    pub params: String,
    /// Bootstraps per inference.
    pub bootstraps: usize,
    /// Key generation for the set (once per bench run), s.
    pub keygen_s: f64,
    /// Timed inferences.
    pub repetitions: usize,
    /// Median of encrypt + evaluate + decrypt, ms.
    pub median_ms: f64,
    /// Fastest inference, ms.
    pub min_ms: f64,
    /// Median client encryption, ms.
    pub encrypt_ms: f64,
    /// Median server evaluation, ms.
    pub eval_ms: f64,
    /// Median client decryption, ms.
    pub decrypt_ms: f64,
    /// The cost model's prediction, ms.
    pub predicted_ms: f64,
    /// The prediction's terms.
    pub prediction: String,
    /// Predicted on a LAN and on a WAN ([`secc_compiler::cost::Network`]), ms.
    pub predicted_remote_ms: [f64; 2],
    /// Against the float IR.
    pub accuracy: Accuracy,
}

/// One row under SMPC.
#[derive(Serialize)]
pub struct MpcResult {
    /// Rounds of one run.
    pub rounds: u64,
    /// Bytes each party sent in one run.
    pub bytes: [u64; 3],
    /// Whether rounds and bytes sent equal the plan's.
    pub plan_matches: bool,
    /// Timed runs.
    pub repetitions: usize,
    /// Median over runs of the slowest party's time, ms.
    pub median_ms: f64,
    /// Fastest run, ms.
    pub min_ms: f64,
    /// The cost model's prediction (loopback), ms.
    pub predicted_ms: f64,
    /// The prediction's terms.
    pub prediction: String,
    /// Predicted on a LAN and on a WAN ([`secc_compiler::cost::Network`]), ms.
    pub predicted_remote_ms: [f64; 2],
    /// Against the float IR.
    pub accuracy: Accuracy,
}

/// Measured medians closer than this factor are a tie: on a shared 2-core machine
/// repeated runs of the same row differ by that much.
pub const TIE: f64 = 1.2;

/// The faster backend, measured and predicted.
#[derive(Serialize)]
pub struct Winner {
    /// By the medians; `None` for a tie (within [`TIE`]), where either prediction is right.
    pub measured: Option<PrivateBackend>,
    /// By the cost model, on loopback (where it was measured).
    pub predicted: PrivateBackend,
    /// By the cost model, on a LAN and on a WAN.
    pub predicted_remote: [PrivateBackend; 2],
}

/// One workload under both backends.
#[derive(Serialize)]
pub struct Row {
    /// Its suite.
    pub suite: String,
    /// Its name.
    pub name: String,
    /// Its place on the suite's chart.
    pub x: String,
    /// Under TFHE.
    pub fhe: Outcome<FheResult>,
    /// Under SMPC.
    pub mpc: Outcome<MpcResult>,
    /// When both ran.
    pub winner: Option<Winner>,
}

impl Row {
    /// A row from both outcomes; the winners follow from them.
    pub fn new(suite: &str, name: &str, x: &str, fhe: Outcome<FheResult>, mpc: Outcome<MpcResult>) -> Row {
        let winner = match (fhe.measured(), mpc.measured()) {
            (Some(f), Some(m)) => {
                let pick = |f: f64, m: f64| if f <= m { PrivateBackend::Fhe } else { PrivateBackend::Mpc };
                let tie = f.median_ms.max(m.median_ms) < TIE * f.median_ms.min(m.median_ms);
                let measured = (!tie).then(|| pick(f.median_ms, m.median_ms));
                let predicted_remote = [0, 1].map(|i| pick(f.predicted_remote_ms[i], m.predicted_remote_ms[i]));
                Some(Winner { measured, predicted: pick(f.predicted_ms, m.predicted_ms), predicted_remote })
            }
            _ => None,
        };
        Row { suite: suite.into(), name: name.into(), x: x.into(), fhe, mpc, winner }
    }

    /// A row neither backend can run.
    pub fn unsupported(suite: &str, name: &str, x: &str, reason: &str) -> Row {
        let no = || reason.to_string();
        Row::new(suite, name, x, Outcome::NotSupported { reason: no() }, Outcome::NotSupported { reason: no() })
    }
}

/// A whole bench run.
#[derive(Serialize)]
pub struct Report {
    /// The scale it ran at.
    pub scale: super::suites::Scale,
    /// The machine (CPU, cores).
    pub machine: String,
    /// 1-minute load average before and after.
    pub load: (f64, f64),
    /// Where the per-operation costs came from.
    pub costs: String,
    /// The rows, in suite order.
    pub rows: Vec<Row>,
}

/// Measured over predicted.
fn ratio(measured: f64, predicted: f64) -> f64 {
    measured / predicted.max(1e-9)
}

/// Whether the prediction is within 2x of the measurement either way.
fn within_2x(measured: f64, predicted: f64) -> bool {
    (0.5..=2.0).contains(&ratio(measured, predicted))
}

fn bytes(b: &[u64; 3]) -> String {
    let one = |b: u64| if b < 10 * 1024 { format!("{b} B") } else { format!("{:.1} KiB", b as f64 / 1024.0) };
    format!("{} / {} / {}", one(b[0]), one(b[1]), one(b[2]))
}

/// The results table in Markdown.
pub fn markdown_table(r: &Report) -> String {
    let mut s = String::from(
        "| suite | workload | TFHE set, PBS | TFHE measured (n) | TFHE predicted | rounds, bytes P0 / P1 / P2 | SMPC measured (n) | SMPC predicted | winner measured / predicted | predicted winner LAN / WAN | max abs error TFHE / SMPC |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for row in &r.rows {
        let (fset, fmeas, fpred, ferr) = match &row.fhe {
            Outcome::Measured(f) => (
                format!("{}, {}", f.params, f.bootstraps),
                format!("{} ({})", format_ms(f.median_ms), f.repetitions),
                format!("{} ({:.2}x)", format_ms(f.predicted_ms), ratio(f.median_ms, f.predicted_ms)),
                format!("{:.2e}", f.accuracy.max_abs_error),
            ),
            Outcome::NotSupported { reason } => {
                (format!("not supported: {}", short(reason)), "—".into(), "—".into(), "—".into())
            }
        };
        let (mtraffic, mmeas, mpred, merr) = match &row.mpc {
            Outcome::Measured(m) => (
                format!("{}, {}", m.rounds, bytes(&m.bytes)),
                format!("{} ({})", format_ms(m.median_ms), m.repetitions),
                format!("{} ({:.2}x)", format_ms(m.predicted_ms), ratio(m.median_ms, m.predicted_ms)),
                format!("{:.2e}", m.accuracy.max_abs_error),
            ),
            Outcome::NotSupported { reason } => {
                (format!("not supported: {}", short(reason)), "—".into(), "—".into(), "—".into())
            }
        };
        let winner = row.winner.as_ref().map_or("—".into(), |w| match w.measured {
            Some(m) if m != w.predicted => format!("{m} / {} ✗", w.predicted),
            Some(m) => format!("{m} / {}", w.predicted),
            None => format!("tie / {}", w.predicted),
        });
        let remote = row
            .winner
            .as_ref()
            .map_or("—".into(), |w| format!("{} / {}", w.predicted_remote[0], w.predicted_remote[1]));
        let _ = writeln!(
            s,
            "| {} | {} | {fset} | {fmeas} | {fpred} | {mtraffic} | {mmeas} | {mpred} | {winner} | {remote} | {ferr} / {merr} |",
            row.suite, row.name
        );
    }
    s
}

/// The first line of a reason, cut at 90 characters (the JSON keeps it whole).
fn short(reason: &str) -> String {
    let line = reason.lines().next().unwrap_or_default().replace('|', "/");
    if line.chars().count() > 90 {
        format!("{}…", line.chars().take(90).collect::<String>())
    } else {
        line
    }
}

/// How the predictions fared: rows within 2x per backend, winners agreeing.
pub fn summary(r: &Report) -> String {
    let fhe: Vec<(f64, f64)> =
        r.rows.iter().filter_map(|row| row.fhe.measured()).map(|f| (f.median_ms, f.predicted_ms)).collect();
    let mpc: Vec<(f64, f64)> =
        r.rows.iter().filter_map(|row| row.mpc.measured()).map(|m| (m.median_ms, m.predicted_ms)).collect();
    let ok = |v: &[(f64, f64)]| v.iter().filter(|(m, p)| within_2x(*m, *p)).count();
    let winners: Vec<&Winner> = r.rows.iter().filter_map(|row| row.winner.as_ref()).collect();
    let ties = winners.iter().filter(|w| w.measured.is_none()).count();
    let agree = winners.iter().filter(|w| w.measured == Some(w.predicted)).count();
    let plans = r.rows.iter().filter_map(|row| row.mpc.measured()).filter(|m| !m.plan_matches).count();
    let mut s = format!(
        "prediction within 2x of measurement: TFHE {}/{} rows, SMPC {}/{} rows; predicted winner = measured winner in {}/{} rows (and {ties} ties within {TIE}x)",
        ok(&fhe),
        fhe.len(),
        ok(&mpc),
        mpc.len(),
        agree,
        winners.len() - ties
    );
    if plans > 0 {
        let _ = write!(s, "; {plans} SMPC rows sent other rounds or bytes than their plan states");
    }
    s
}

/// Writes `bench.json`, `bench.md` and the charts into `dir`.
pub fn write_report(r: &Report, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).with_context(|| format!("cannot write {}", p.display()))
    };
    write("bench.json", &(serde_json::to_string_pretty(r).expect("reports serialize") + "\n"))?;
    let mut md = format!(
        "# secc bench ({:?})\n\nMachine: {}. 1-minute load average {:.2} before, {:.2} after. Costs: {}.\nTime per inference: TFHE encrypt + evaluate + decrypt (keys made once per parameter set); SMPC one run of the plan, slowest party, three parties on loopback TLS links. Median of n runs; (x) is measured / predicted. Winners closer than {TIE}x are a tie.\n\n",
        r.scale, r.machine, r.load.0, r.load.1, r.costs
    );
    md.push_str(&markdown_table(r));
    let _ = writeln!(md, "\n{}\n", summary(r));
    let mut charts: Vec<&str> = r.rows.iter().map(|row| chart_of(&row.suite)).collect();
    charts.dedup();
    for chart in charts {
        let rows: Vec<&Row> = r.rows.iter().filter(|row| chart_of(&row.suite) == chart).collect();
        write(&format!("{chart}.svg"), &suite_chart(chart, &rows))?;
        let _ = writeln!(md, "![{chart}]({chart}.svg)\n");
    }
    write("bench.md", &md)
}

/// The chart a suite's rows go on: the synthetic suites each have their own (time
/// against size), the model suites share one.
fn chart_of(suite: &str) -> &str {
    match suite {
        "forest" | "dense" | "cnn" => "models",
        other => other,
    }
}

fn suite_chart(suite: &str, rows: &[&Row]) -> String {
    let fhe = |pick: fn(&FheResult) -> f64| rows.iter().map(|r| r.fhe.measured().map(pick)).collect();
    let mpc = |pick: fn(&MpcResult) -> f64| rows.iter().map(|r| r.mpc.measured().map(pick)).collect();
    let series = [
        Series { label: "TFHE measured".into(), color: "#1f77b4", dashed: false, values: fhe(|f| f.median_ms) },
        Series { label: "TFHE predicted".into(), color: "#1f77b4", dashed: true, values: fhe(|f| f.predicted_ms) },
        Series { label: "SMPC measured".into(), color: "#d62728", dashed: false, values: mpc(|m| m.median_ms) },
        Series { label: "SMPC predicted".into(), color: "#d62728", dashed: true, values: mpc(|m| m.predicted_ms) },
    ];
    let x_label = match suite {
        "matmul" => "n (x[1,n] · W[n,n])",
        "linreg" => "features",
        "activations" => "activation over 100 values",
        _ => "model",
    };
    let categories: Vec<String> =
        rows.iter().map(|r| if suite == "models" { r.name.clone() } else { r.x.clone() }).collect();
    line_chart(&format!("{suite}: TFHE vs SMPC (loopback), time per inference"), x_label, &categories, &series)
}
