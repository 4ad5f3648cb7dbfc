//! `lower_fhe`: a quantized graph → its TFHE circuit ([`secc_ir::lowered::fhe`]).
//!
//! Each op says how it is computed ([`FheLowering`], its [`FheRule`] in its file under
//! `secc_ir::ops`): the client encrypts or decrypts it, it is levelled, it is one
//! bootstrap per element of a table, or it is refused. This driver does the rest:
//!
//! 1. Every table gets its bootstrap plan: the boxes span its calibrated or its exact
//!    input range ([`Coverage`]) plus one spare box on each side, so approximate
//!    rounding at the edges never spills into the padding bit (a table that rounds
//!    nothing away and covers its operand's whole interval needs no spare box).
//! 2. Encodings are fixed backwards from the readers: a table needs its input at
//!    `2^(63 − precision − shift)`; levelled ops pass their requirement to their
//!    inputs; values the client decrypts get the widest encoding that holds their
//!    range. A value read at several encodings gets the finest; a reader that needs
//!    a coarser one multiplies it by the power of 2 between them (levelled: folded
//!    into a linear map's weights, or applied before a bootstrap).
//! 3. Noise is propagated forwards as a variance multiplier of a bootstrap output:
//!    fresh encryptions ~0, table outputs 1, a linear output `Σ w²·var(x)` over the
//!    terms of all its encrypted operands, a rescaled read `4^k·var(x)`.
//! 4. The cheapest catalog set that serves every table at the asked failure
//!    probability, or the cheapest searched set ([`search`]) when that is cheaper by
//!    the same cost model, is chosen; none is a compile error naming the hardest table.
//! 5. Values levelled ops join share keys: each such class is a key partition, and a
//!    partition whose tables a cheaper searched set serves gets it ([`partition_sets`]).

mod search;

use crate::passes::calibrate::Calibration;
use crate::CompileError;
use search::Unit;
use secc_ir::lowered::fhe::{
    catalog_choice, client_values, decryption_bound, map_operands, noise, output_noise_bound, Circuit, CircuitStats,
    FheLut, ParamSet, MAX_PARTITIONS,
};
use secc_ir::ops::{round_shift, FheLowering, FheRule, LinearMap, MapOperand};
use secc_ir::{Graph, OpSpec, ValueId};

/// Bits the client's decryption of `v` must hold.
fn decrypted_bits(graph: &Graph, v: ValueId, coverage: Coverage, observed: &Calibration) -> u32 {
    let t = graph.ty(v).as_int().expect("integer");
    let (lo, hi) = match (coverage, observed.ranges.get(v.index()).copied().flatten()) {
        (Coverage::Calibrated, Some((lo, hi))) => ((2 * lo as i64).max(t.lo).min(0), (2 * hi as i64).min(t.hi).max(0)),
        _ => (t.lo, t.hi),
    };
    secc_ir::BitWidth::of_range(lo, hi).bits
}

/// Whether `v` is a ciphertext: an integer but a constant (the server computes it,
/// or the client encrypts it).
pub fn is_encrypted(graph: &Graph, v: ValueId) -> bool {
    let node = graph.node(v);
    node.ty.as_int().is_some() && !matches!(node.op.fhe_lowering(), FheLowering::Cleartext)
}

fn fail(graph: &Graph, v: ValueId, message: String) -> CompileError {
    CompileError::Pass { pass: "lower_fhe", value: v, node: graph.node(v).name.clone(), message }
}

/// The affine map of encrypted levelled node `v` of a circuit with encodings
/// `log_delta`, over the encrypted operands [`map_operands`] lists; `None` when an
/// operand is neither encrypted nor a constant.
pub fn node_linear_map(graph: &Graph, v: ValueId, log_delta: &[Option<u32>]) -> Option<LinearMap> {
    let encrypted = map_operands(graph, v, log_delta);
    let operands: Option<Vec<MapOperand>> = graph
        .node(v)
        .inputs
        .iter()
        .map(|x| match encrypted.iter().position(|e| e == x) {
            Some(k) => Some(MapOperand::Encrypted(k, &graph.ty(*x).shape)),
            None => graph.const_value(*x).map(MapOperand::Const),
        })
        .collect();
    LinearMap::of(&graph.node(v).op, &operands?)
}

/// Where the parameter set comes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ParamChoice {
    /// tfhe-rs's catalog only.
    Catalog,
    /// The cheaper of the catalog's best and the best searched set, for every table: the
    /// catalog is the fallback where no searched set serves the tables or none is cheaper.
    Search,
    /// That set, and per key partition a cheaper searched one where the partition's
    /// tables allow ([`partition_sets`]).
    #[default]
    Partitions,
}

/// What the bootstrap of a table must cover.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coverage {
    /// The range the accumulator took on the calibration set (the table's own
    /// entries) plus one spare box each side: `table_bits` bits. An accumulator beyond
    /// it wraps around in the bootstrap (as in Concrete-ML); the simulation clamps.
    Calibrated,
    /// The exact interval of the accumulator: never wraps, usually 1-2 bits wider.
    Exact,
}

/// Lowers `graph` (quantized, verified) to a TFHE circuit at failure probability
/// `2^log2_p_fail`. `observed` is the calibration of `graph` itself (what its
/// integers reach, [`crate::passes::calibrate::calibrate`]); with [`Coverage::Calibrated`] the values the client decrypts
/// are encoded for twice that range instead of their worst case, which leaves the
/// bootstrap noise fewer of their bits.
pub fn lower_fhe(
    graph: &Graph,
    log2_p_fail: i32,
    coverage: Coverage,
    observed: &Calibration,
    choice: ParamChoice,
) -> Result<Circuit, CompileError> {
    let n = graph.nodes.len();
    if !graph.nodes.iter().any(|node| matches!(node.op.fhe_lowering(), FheLowering::ClientEncrypts)) {
        return Err(fail(graph, ValueId(0), "lower_fhe lowers the quantized IR; this graph quantizes nothing".into()));
    }
    let users = graph.users();
    let mut luts: Vec<Option<FheLut>> = vec![None; n];
    for (i, node) in graph.nodes.iter().enumerate() {
        let v = ValueId(i as u32);
        if !is_encrypted(graph, v) {
            continue;
        }
        match node.op.fhe_lowering() {
            FheLowering::Bootstrap(l) => {
                let t = graph.ty(node.inputs[0]).as_int().expect("integer input");
                let (first, last) = match coverage {
                    Coverage::Calibrated => (l.base, l.base + l.table_len() as i64 - 1),
                    Coverage::Exact => (round_shift(t.lo, l.shift), round_shift(t.hi, l.shift)),
                };
                // A table that drops no bits and covers its operand's whole interval reads
                // exact integers: noise under half a box keeps each in its own box, so it
                // needs no spare one (tree comparisons and path tables are such).
                let exact = l.shift == 0 && t.lo >= first && t.hi <= last;
                let offset = if exact { first } else { first - 1 };
                let span = (last - offset + 1 + u64::from(!exact) as i64) as u64;
                let precision = 64 - (span - 1).leading_zeros();
                if precision + l.shift > 63 {
                    return Err(fail(
                        graph,
                        v,
                        format!("a {precision}-bit table on a {}-bit shift does not fit 64 bits", l.shift),
                    ));
                }
                luts[i] = Some(FheLut { precision, offset, norm: 0.0 });
            }
            FheLowering::ClientEncrypts | FheLowering::Levelled => {}
            FheLowering::Refused(why) => return Err(fail(graph, v, format!("`{}` {why}", node.op.mnemonic()))),
            FheLowering::Cleartext | FheLowering::ClientDecrypts | FheLowering::FloatOnly => {
                unreachable!("{v} is encrypted: an integer, and no constant")
            }
        }
    }

    // Encodings, backwards from the readers: the finest any reader needs.
    let mut log_delta: Vec<Option<u32>> = vec![None; n];
    for i in (0..n).rev() {
        let v = ValueId(i as u32);
        if !is_encrypted(graph, v) {
            continue;
        }
        let mut need: Option<u32> = None;
        for &u in &users[i] {
            let d = match graph.node(u).op.fhe_lowering() {
                FheLowering::Bootstrap(l) => 63 - luts[u.index()].as_ref().expect("planned").precision - l.shift,
                FheLowering::ClientDecrypts => 63 - decrypted_bits(graph, v, coverage, observed),
                FheLowering::Levelled
                | FheLowering::ClientEncrypts
                | FheLowering::Cleartext
                | FheLowering::FloatOnly
                | FheLowering::Refused(_) => {
                    if !is_encrypted(graph, u) {
                        continue;
                    }
                    log_delta[u.index()].expect("readers come later")
                }
            };
            need = Some(need.map_or(d, |n| n.min(d)));
        }
        log_delta[i] = need;
    }

    // Noise, forwards; the levelled ops' maps are kept for the server.
    let mut variance = vec![0f64; n];
    let mut linear: Vec<Option<LinearMap>> = vec![None; n];
    let mut stats = CircuitStats { pbs: 0, widest_table: None, max_norm: None, levelled_macs: 0 };
    for (i, node) in graph.nodes.iter().enumerate() {
        let v = ValueId(i as u32);
        if !is_encrypted(graph, v) {
            continue;
        }
        variance[i] = match node.op.fhe_lowering() {
            FheLowering::ClientEncrypts => noise::FRESH_VARIANCE,
            FheLowering::Bootstrap(l) => {
                let input = node.inputs[0].index();
                let plan = luts[i].as_mut().expect("planned");
                let rescale = 63 - plan.precision - l.shift - log_delta[input].expect("encrypted");
                let norm = variance[input].sqrt() * 2f64.powi(rescale as i32);
                plan.norm = norm;
                stats.pbs += node.ty.shape.numel();
                if stats.widest_table.is_none_or(|(b, _)| plan.precision > b) {
                    stats.widest_table = Some((plan.precision, v.0));
                }
                if stats.max_norm.is_none_or(|(m, _)| norm > m) {
                    stats.max_norm = Some((norm, v.0));
                }
                1.0
            }
            FheLowering::Levelled => {
                let mut map = node_linear_map(graph, v, &log_delta).ok_or_else(|| {
                    let why = "reads an operand that is neither encrypted nor a constant";
                    fail(graph, v, format!("`{}` {why}", node.op.mnemonic()))
                })?;
                // Each term's operand: its variance, and the power of 2 that brings it
                // from its own encoding to this value's.
                let Some(d) = log_delta[i] else { continue };
                let mut of_term: Vec<(f64, u32)> = Vec::new();
                for x in map_operands(graph, v, &log_delta) {
                    let k = d - log_delta[x.index()].expect("encrypted");
                    of_term.extend(std::iter::repeat_n((variance[x.index()], k), graph.ty(x).shape.numel()));
                }
                let mut out = 0f64;
                for terms in &mut map.terms {
                    let mut sum = 0.0;
                    for (e, w) in terms.iter_mut() {
                        let (var, k) = of_term[*e as usize];
                        let scaled = 2i64.checked_pow(k).and_then(|f| w.checked_mul(f));
                        *w = scaled.ok_or_else(|| {
                            fail(graph, v, format!("a weight {w} rescaled by 2^{k} overflows 64 bits"))
                        })?;
                        sum += (*w as f64).powi(2) * var;
                    }
                    out = out.max(sum);
                }
                stats.levelled_macs += map.terms.iter().map(Vec::len).sum::<usize>();
                linear[i] = Some(map);
                out
            }
            FheLowering::Cleartext | FheLowering::ClientDecrypts | FheLowering::FloatOnly | FheLowering::Refused(_) => {
                unreachable!("{v} is encrypted and was not refused")
            }
        };
    }

    let planned: Vec<(ValueId, &FheLut)> =
        luts.iter().enumerate().filter_map(|(i, l)| l.as_ref().map(|l| (ValueId(i as u32), l))).collect();
    let demands: Vec<(u32, f64)> = planned.iter().map(|(_, l)| (l.precision, l.norm)).collect();
    let (inputs, outputs) = client_values(graph, &log_delta);
    // Decryption rounds as a bootstrap reads: the noise unit may be as large as keeps
    // every decrypted value exact, or as tfhe-rs's catalog leaves outputs where that is
    // looser (decrypted values are encoded as wide as their range, and a sum of many
    // bootstrap outputs carries their noise into its low bits).
    let decrypted = outputs.iter().map(|&v| v as usize).filter(|&v| variance[v] > 0.0);
    let exact = decrypted
        .map(|v| decryption_bound(log_delta[v].expect("encrypted"), log2_p_fail) / variance[v])
        .fold(f64::INFINITY, f64::min);
    let max_unit = exact.max(output_noise_bound(&demands, log2_p_fail));
    let from_catalog = catalog_choice(&demands, log2_p_fail);
    let searched = match choice {
        ParamChoice::Catalog => None,
        ParamChoice::Search | ParamChoice::Partitions => search::search(&demands, Unit::Own, max_unit, log2_p_fail),
    };
    let cost = |s: &ParamSet| noise::cost(&s.lattice);
    let params = match (from_catalog, searched) {
        (Some(c), Some(s)) => Some(if cost(&s) < cost(&c) { s } else { c }),
        (c, s) => c.or(s),
    };
    let Some(params) = params else {
        let (v, hardest) = planned
            .iter()
            .max_by(|a, b| (a.1.precision, a.1.norm).partial_cmp(&(b.1.precision, b.1.norm)).expect("finite"))
            .expect("a circuit without tables fits any set");
        return Err(fail(
            graph,
            *v,
            format!(
                "no parameter set at p_fail 2^{log2_p_fail} serves this table: it reads {} bits of an input whose noise is {:.1}x a bootstrap's (weight 2-norm); \
                 compile with fewer --table-bits, a smaller --max-weight-norm or fewer --weight-bits",
                hardest.precision, hardest.norm
            ),
        ));
    };
    let partitioned = match choice {
        ParamChoice::Catalog | ParamChoice::Search => None,
        ParamChoice::Partitions => partition_sets(graph, &params, &luts, &log_delta, max_unit, log2_p_fail),
    };
    let mut circuit = Circuit {
        graph_digest: graph.digest(),
        params: vec![params],
        partition: Vec::new(),
        log_delta,
        luts,
        linear,
        inputs,
        outputs,
        stats,
    };
    if let Some((sets, partition)) = partitioned {
        let single = std::mem::replace(&mut circuit.params, sets);
        circuit.partition = partition;
        // The client's encryptions count as a fraction of the unit the sets chosen make
        // (the verifier's check): where they would not, one set it is.
        if circuit.noisy_encryption(circuit.noise_unit()).is_some() {
            circuit.params = single;
            circuit.partition = Vec::new();
        }
    }
    Ok(circuit)
}

/// Key partitions: values a levelled op sums share keys, so each class of values joined
/// by levelled ops is one partition (numbered in graph order); a table's output starts
/// its own unless a levelled op joins it to others. `None` for values not encrypted.
fn partitions(graph: &Graph, log_delta: &[Option<u32>], luts: &[Option<FheLut>]) -> Vec<Option<usize>> {
    let n = graph.nodes.len();
    let mut parent: Vec<usize> = (0..n).collect();
    fn root(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    for i in 0..n {
        if log_delta[i].is_none()
            || luts[i].is_some()
            || !matches!(graph.nodes[i].op.fhe_lowering(), FheLowering::Levelled)
        {
            continue;
        }
        for x in map_operands(graph, ValueId(i as u32), log_delta) {
            let (a, b) = (root(&mut parent, i), root(&mut parent, x.index()));
            parent[a.max(b)] = a.min(b);
        }
    }
    let mut number: Vec<Option<usize>> = vec![None; n];
    let mut count = 0;
    (0..n)
        .map(|i| {
            log_delta[i]?;
            let r = root(&mut parent, i);
            Some(*number[r].get_or_insert_with(|| {
                count += 1;
                count - 1
            }))
        })
        .collect()
}

/// Per-partition parameter sets, where they cost less than `single` on every table:
/// each partition with tables gets the cheapest set that serves its own tables with the
/// norms counted in `single`'s output noise (bounded by `max_unit`, what decryption
/// allows), every input keyswitched from a big key no larger than `single`'s, and no
/// noisier outputs; partitions without tables (the client's encryptions, levelled
/// sums of them) keep `single`. Partitions that get the same set share its keys.
/// `None`: one set is as cheap, or a partition has no cheaper set.
fn partition_sets(
    graph: &Graph,
    single: &ParamSet,
    luts: &[Option<FheLut>],
    log_delta: &[Option<u32>],
    max_unit: f64,
    log2_p_fail: i32,
) -> Option<(Vec<ParamSet>, Vec<Option<u32>>)> {
    let part = partitions(graph, log_delta, luts);
    let count = part.iter().flatten().max().map_or(0, |m| m + 1);
    let mut tables: Vec<Vec<(usize, &FheLut)>> = vec![Vec::new(); count];
    for (i, p) in part.iter().enumerate() {
        if let (Some(p), Some(lut)) = (p, &luts[i]) {
            tables[*p].push((i, lut));
        }
    }
    let unit = noise::bootstrap_variance(&single.lattice).min(max_unit);
    let big = single.lattice.big_dimension();
    let (mut sets, mut index) = (Vec::<ParamSet>::new(), Vec::new());
    let (mut pbs_cost, mut single_cost) = (0.0, 0.0);
    for values in &tables {
        let demands: Vec<(u32, f64)> = values.iter().map(|(_, l)| (l.precision, l.norm)).collect();
        let set = if demands.is_empty() {
            single.clone()
        } else {
            search::search(&demands, Unit::Fixed { variance: unit, big }, unit, log2_p_fail)?
        };
        let elements: usize = values.iter().map(|&(i, _)| graph.nodes[i].ty.shape.numel()).sum();
        pbs_cost += elements as f64 * noise::cost(&set.lattice);
        single_cost += elements as f64 * noise::cost(&single.lattice);
        let k = sets.iter().position(|s| *s == set).unwrap_or_else(|| {
            sets.push(set);
            sets.len() - 1
        });
        index.push(k as u32);
    }
    if sets.len() < 2 || sets.len() > MAX_PARTITIONS || pbs_cost >= single_cost {
        return None;
    }
    Some((sets, part.into_iter().map(|p| p.map(|p| index[p])).collect()))
}
