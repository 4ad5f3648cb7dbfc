//! `secc inspect`: what a compiled model contains.

use anyhow::Result;
use secc_compiler::cost::fhe::predict_fhe;
use secc_compiler::cost::machine::MachineCosts;
use secc_compiler::cost::mpc::predict_mpc;
use secc_compiler::cost::{Network, Prediction};
use secc_compiler::passes::bit_width::analyze_bit_widths;
use secc_ir::artifact::Artifact;
use secc_ir::{Graph, Op};
use std::path::{Path, PathBuf};

/// Show a compiled model: its quantized IR, the bit width of every integer value,
/// its tables, and its input and output shapes.
///
/// Each IR line reads `%N = op operands {attributes} : type`, where an integer type
/// prints as `i17[1,8,6,6] [lo, hi] q(scale, zero_point)`: bit width (u = unsigned,
/// i = signed), shape, exact range and the real values it stands for.
///
/// Ends with the predicted time per inference of each backend on loopback, a LAN and
/// a WAN, from the per-operation costs of `secc calibrate-costs` (or --costs, or the
/// built-in ones), and the backend `secc compile --backend auto` chose.
#[derive(clap::Args)]
pub struct Args {
    /// A model compiled by `secc compile`
    pub artifact: PathBuf,
    /// Per-operation costs for the predictions
    #[arg(long, value_name = "FILE")]
    pub costs: Option<PathBuf>,
    /// Also print the float IR
    #[arg(long)]
    pub float: bool,
}

pub fn run(a: Args) -> Result<()> {
    let art = Artifact::read(&a.artifact)?;
    let s = &art.settings;
    let f = &art.float;
    println!("model: {} (from {}, secc {})", f.name, s.source, s.secc_version);
    println!(
        "quantization: {}-bit activations, {}-bit inputs, {}-bit weights (per output channel), tables read ≤ {} bits{}, {}-bit tree features; {} calibration samples",
        s.quant.bits,
        s.quant.input_bits,
        s.quant.weight_bits,
        s.quant.widest_table_bits(),
        s.quant.layer_widths(),
        s.quant.tree_bits,
        s.calibration_samples
    );
    for (i, v) in f.inputs.iter().enumerate() {
        println!("input {i}: f32{}", f.ty(*v).shape);
    }
    for (i, v) in f.outputs.iter().enumerate() {
        println!("output {i}: f32{}", f.ty(*v).shape);
    }
    if a.float {
        println!("\n{f}");
    }
    match &art.quantized {
        Ok(g) => print_quantized(g),
        Err(e) => println!("\nquantized IR: none ({e})"),
    }
    print_mpc_plan(&art);
    print_circuit(&art);
    print_predictions(&art, a.costs.as_deref())
}

/// The quantized IR and the bit width of every integer value.
fn print_quantized(g: &Graph) {
    println!("\n{g}\n");
    let r = analyze_bit_widths(g);
    println!("bit widths:");
    for (v, bw) in &r.values {
        let node = g.node(*v);
        let extra = if let Op::Lut(l) = &node.op {
            format!(
                "  {} lookups, {} distinct tables of {} entries, input {} bits",
                node.ty.shape.numel(),
                l.tables.len(),
                l.table_len(),
                g.ty(node.inputs[0])
                    .as_int()
                    .map_or(0, |t| secc_compiler::passes::bit_width::table_input_bits(l, t.lo, t.hi).max(1)),
            )
        } else {
            String::new()
        };
        println!("  {v:>5} {:<12} {bw}{extra}", node_label(&node.op));
    }
    println!("tables: {} lookups per inference, {} distinct tables", r.table_lookups, r.distinct_tables);
    match r.widest_table_input {
        Some((v, bits, from)) => println!("widest table input: {v}, {bits} bits (read from a {from} accumulator)"),
        None => println!("widest table input: none (no tables)"),
    }
    if let Some((v, bw)) = r.widest_value {
        println!("widest integer value: {v}, {bw}");
    }
}

/// The TFHE circuit's parameters and counts, or why there is none.
fn print_circuit(art: &Artifact) {
    println!();
    match &art.fhe {
        Ok(c) => {
            let st = &c.stats;
            println!("TFHE circuit:");
            let per = match &art.quantized {
                Ok(g) => secc_compiler::cost::fhe::bootstraps_per_partition(g, c),
                Err(_) => vec![0; c.params.len()],
            };
            for (k, set) in c.params.iter().enumerate() {
                let (label, count) = match c.params.len() {
                    1 => ("parameters".to_string(), String::new()),
                    _ => (format!("partition {k}"), format!("{} bootstraps; ", per[k])),
                };
                println!(
                    "  {label}: {} ({count}p_fail 2^{} per bootstrap, {}-bit security, {} message+carry bits, 2-norm budget {})",
                    set.name,
                    set.log2_p_fail,
                    set.security_bits,
                    set.bits(),
                    set.norm_budget
                );
            }
            println!("  bootstraps per inference: {}", st.pbs);
            if let Some((bits, v)) = st.widest_table {
                println!(
                    "  widest table: %{v}, {bits} bits (its input range, with a spare box each side if it rounds)"
                );
            }
            if let Some((norm, v)) = st.max_norm {
                println!("  largest weight 2-norm feeding a bootstrap: {norm:.2} (into %{v})");
            }
            println!("  levelled multiply-accumulates: {}", st.levelled_macs);
        }
        Err(e) => println!("TFHE circuit: none ({e})"),
    }
}

/// The predicted time per inference of each backend on `network`, or why it has none.
pub fn predict_both(
    art: &Artifact,
    costs: &MachineCosts,
    network: Network,
) -> (Result<Prediction, String>, Result<Prediction, String>) {
    let fhe = match (&art.fhe, &art.quantized) {
        (Ok(c), Ok(g)) => Ok(predict_fhe(g, c, costs, network)),
        (Err(e), _) | (_, Err(e)) => Err(e.clone()),
    };
    let mpc = art.mpc.as_ref().map(|p| predict_mpc(p, 1, costs, network)).map_err(String::clone);
    (fhe, mpc)
}

fn print_predictions(art: &Artifact, costs: Option<&Path>) -> Result<()> {
    let (costs, source) = MachineCosts::resolve(costs)?;
    println!("\npredicted time per inference (costs: {source}):");
    for network in Network::ALL {
        let (fhe, mpc) = predict_both(art, &costs, network);
        let show = |p: Result<Prediction, String>| p.map_or_else(|e| format!("none ({e})"), |p| p.to_string());
        println!("  {network}:\n    fhe: {}\n    mpc: {}", show(fhe), show(mpc));
    }
    match &art.settings.backend {
        Some(c) => println!("backend (compile --backend auto): {}", c.reason),
        None => println!("backend: not chosen (compile with --backend auto to record the predicted winner)"),
    }
    Ok(())
}

fn node_label(op: &Op) -> &'static str {
    secc_ir::OpSpec::mnemonic(op)
}

/// The SMPC plan's steps with the rounds and bytes each party sends (one sample).
fn print_mpc_plan(art: &Artifact) {
    println!();
    let plan = match &art.mpc {
        Ok(p) => p,
        Err(e) => return println!("SMPC plan: none ({e})"),
    };
    println!("SMPC plan: 3-party replicated sharing on Z_2^64, {} fractional bits; P{} shares the input, P{} the weights, P{} gets the output", plan.frac_bits, plan.roles.data_owner, plan.roles.model_owner, plan.roles.receiver);
    for step in &plan.steps {
        let extra = match &step.op {
            secc_ir::lowered::mpc::StepOp::Piecewise { function, .. } => format!(
                "  {}: {} pieces of degree {}, error ≤ {:.1e}",
                function.function,
                function.pieces.len() - 2,
                function.degree(),
                function.max_error
            ),
            _ => String::new(),
        };
        println!("  {:<10} {:<28} {}{extra}", step.op.mnemonic(), step.label, step.cost(plan));
    }
    if let Some(g) = &plan.finish {
        let ops: Vec<&str> = g.nodes.iter().skip(1).map(|n| node_label(&n.op)).collect();
        println!("  then P{}, in the clear on the revealed values: {}", plan.roles.receiver, ops.join(" → "));
    }
    println!("  total (1 sample)                        {}", plan.total(1));
    println!("  (plus one set-up round: each party sends its PRG seed, 48 bytes)");
}
