//! The quantization rule of a tree ensemble: the ensemble as integer tables and
//! levelled sums, so that under TFHE it costs one bootstrap per distinct comparison
//! and one per parent of leaves, and everything else is levelled.
//!
//! 1. **Features** are quantized one by one, each to `tree_bits` bits on a grid spanning
//!    its own thresholds, so a feature's bits are spent where its trees split it.
//!    Values beyond the grid clip, which never changes a comparison; a sample more
//!    than one step from every threshold takes exactly the float path.
//! 2. **Comparisons** `x_f <mode> t` become `q_f ≤ k` with an integer `k` (negated for
//!    `>`/`≥`); equal `(f, k)` pairs across the forest are computed once, and bounds
//!    outside the grid are constants resolved at compile time. A levelled gather
//!    (`matmul` with a 0/1 matrix) lines the features up, one table per comparison
//!    gives `c_j = [q_f ≤ k_j]`.
//! 3. **Paths**: every branch node with a leaf child is a *group*. With `m` the number
//!    of the group's path literals that hold (a literal is `c` or `1 − c`, levelled),
//!    `idx = 2m + c_parent` names which leaf the sample reaches, if any (`m` = path
//!    length): one table per group and target turns `idx` into the leaf's weight or 0.
//!    A leaf under a resolved constant branch reads `idx = m` instead.
//! 4. **Sum**: a levelled `matmul` adds the group outputs per target, plus the base
//!    values and leaves every sample reaches.
//!
//! Leaf weights (divided by the tree count for `AVERAGE`) share one scale: the largest
//! maps to `2^(bits−1) − 1`.

use super::{BranchMode, Literal, Split, TreeEnsemble};
use crate::Quant;
use ndarray::Array2;

/// The integer form of an ensemble: what the quantization rule pushes as IR nodes.
#[derive(Clone, Debug)]
pub(crate) struct ForestTables {
    /// Per-feature quantization (axis 1 of the `[N, F]` input) to `[0, levels − 1]`.
    pub features: Quant,
    /// `2^tree_bits`.
    pub levels: i64,
    /// `[F, J]`: column `j` picks comparison `j`'s feature.
    pub select: Array2<i64>,
    /// Comparison `j`'s table over `q ∈ [0, levels)`: `[q ≤ k_j]`.
    pub compare: Vec<Vec<i64>>,
    /// `[J, G]` and `[G]`: each group column's `idx` from the comparison bits.
    pub path: Array2<i64>,
    /// See `path`.
    pub path_bias: Vec<i64>,
    /// Group column `g`'s table over `idx` (all padded to one length).
    pub leaf: Vec<Vec<i64>>,
    /// `[G, T]`: which target each group column adds to.
    pub sum: Array2<i64>,
    /// `[T]`: base values and always-reached leaves.
    pub base: Vec<i64>,
    /// The real value of one unit of a leaf table output.
    pub leaf_scale: f64,
}

/// A table's worth of leaves: two siblings told apart by their parent's comparison
/// (`idx = 2m + c`), or one leaf (`idx = m`); `m` counts the prefix literals that hold.
struct Group<'a> {
    prefix: &'a [Literal],
    /// The siblings' comparison, and the leaves for `c` = 1 and `c` = 0.
    selector: Option<usize>,
    leaves: [Option<&'a [(usize, f64)]>; 2],
}

impl Group<'_> {
    fn table_len(&self) -> usize {
        match self.selector {
            Some(_) => 2 * self.prefix.len() + 2,
            None => self.prefix.len() + 1,
        }
    }
}

/// Builds the integer form of `t` with `bits`-bit features and `leaf_bits`-bit leaf weights.
pub(crate) fn tree_tables(
    t: &TreeEnsemble,
    n_features: usize,
    bits: u32,
    leaf_bits: u32,
) -> Result<ForestTables, String> {
    let levels = 1i64 << bits;
    let (scale, zero_point) = feature_grids(t, n_features, levels);
    let (comparisons, paths) = t.leaf_paths(|feature, threshold, mode| {
        let u = zero_point[feature] as f64 + threshold / scale[feature];
        let (k, negate) = match mode {
            BranchMode::Leq => (u.floor(), false),
            BranchMode::Lt => (u.ceil() - 1.0, false),
            BranchMode::Gte => (u.ceil() - 1.0, true),
            BranchMode::Gt => (u.floor(), true),
            BranchMode::Eq | BranchMode::Neq => return Err("equality branches have no quantized form".into()),
        };
        Ok(if k < 0.0 {
            Split::Constant(negate)
        } else if k >= (levels - 1) as f64 {
            Split::Constant(!negate)
        } else {
            Split::Compare { key: (feature, k as i64), negate }
        })
    })?;
    if comparisons.is_empty() {
        return Err(format!("every comparison is constant on the {bits}-bit feature grids; the ensemble is constant"));
    }

    // Siblings are adjacent in `paths`: pair them.
    let mut always: Vec<f64> = t.base_values.iter().map(|b| b / t.per_tree()).collect();
    let mut groups: Vec<Group> = Vec::new();
    let mut i = 0;
    while i < paths.len() {
        let (a, next) = (&paths[i], paths.get(i + 1));
        let Some((last, prefix)) = a.literals.split_last() else {
            a.weights.iter().for_each(|&(target, w)| always[target] += w);
            i += 1;
            continue;
        };
        let sibling = next.filter(|b| {
            b.literals
                .split_last()
                .is_some_and(|(l, p)| p == prefix && l.comparison == last.comparison && l.want != last.want)
        });
        let group = match sibling {
            Some(b) => {
                let (on_true, on_false) = if last.want { (a, b) } else { (b, a) };
                i += 2;
                Group {
                    prefix,
                    selector: Some(last.comparison),
                    leaves: [Some(&on_true.weights), Some(&on_false.weights)],
                }
            }
            None => {
                i += 1;
                Group { prefix: &a.literals, selector: None, leaves: [Some(&a.weights), None] }
            }
        };
        groups.push(group);
    }

    let max_leaf = paths.iter().flat_map(|p| &p.weights).map(|&(_, w)| (w * t.per_tree()).abs()).fold(0f64, f64::max);
    let leaf_scale = if max_leaf > 0.0 { max_leaf / ((1i64 << (leaf_bits - 1)) - 1) as f64 } else { 1.0 };
    let q = |w: f64| (w * t.per_tree() / leaf_scale).round() as i64;

    let j_count = comparisons.len();
    let mut select = Array2::zeros((n_features, j_count));
    let mut compare = Vec::with_capacity(j_count);
    for (j, &(feature, k)) in comparisons.iter().enumerate() {
        select[[feature, j]] = 1;
        compare.push((0..levels).map(|q| i64::from(q <= k)).collect());
    }
    // One column per (group, target) with a weight.
    let mut columns: Vec<(usize, usize)> = Vec::new();
    for (g, group) in groups.iter().enumerate() {
        let mut targets: Vec<usize> = group.leaves.iter().flatten().flat_map(|w| w.iter().map(|w| w.0)).collect();
        targets.sort_unstable();
        targets.dedup();
        columns.extend(targets.into_iter().map(|target| (g, target)));
    }
    let len = groups.iter().map(Group::table_len).max().unwrap_or(1);
    let mut path = Array2::zeros((j_count, columns.len()));
    let mut path_bias = vec![0; columns.len()];
    let mut leaf = Vec::with_capacity(columns.len());
    let mut sum = Array2::zeros((columns.len(), t.n_targets));
    for (col, &(g, target)) in columns.iter().enumerate() {
        let group = &groups[g];
        let weight = |leaf: Option<&[(usize, f64)]>| {
            leaf.iter().flat_map(|w| w.iter()).filter(|w| w.0 == target).map(|w| q(w.1)).sum::<i64>()
        };
        // m counts literals that hold: c_j when wanted true, 1 − c_j otherwise.
        let unit = if group.selector.is_some() { 2 } else { 1 };
        for lit in group.prefix {
            if lit.want {
                path[[lit.comparison, col]] += unit;
            } else {
                path[[lit.comparison, col]] -= unit;
                path_bias[col] += unit;
            }
        }
        let full = (unit * group.prefix.len() as i64) as usize;
        let mut table = vec![0; len];
        match group.selector {
            Some(j) => {
                path[[j, col]] += 1;
                table[full] = weight(group.leaves[1]);
                table[full + 1] = weight(group.leaves[0]);
            }
            None => table[full] = weight(group.leaves[0]),
        }
        leaf.push(table);
        sum[[col, target]] = 1;
    }
    let base = always.iter().map(|&b| q(b)).collect();
    let features = Quant { axis: Some(1), scale, zero_point };
    Ok(ForestTables { features, levels, select, compare, path, path_bias, leaf, sum, base, leaf_scale })
}

/// Each feature's grid: `levels − 2` steps from its smallest to its largest threshold,
/// the smallest within half a step of the boundary between `q = 0` and `1`; a feature
/// with one threshold `t` gets steps of `|t| / (levels − 2)`, one without any scale 1
/// (it is never read).
fn feature_grids(t: &TreeEnsemble, n_features: usize, levels: i64) -> (Vec<f64>, Vec<i64>) {
    let mut span: Vec<Option<(f64, f64)>> = vec![None; n_features];
    for (feature, threshold, _) in t.branches() {
        let s = span[feature].get_or_insert((threshold, threshold));
        *s = (s.0.min(threshold), s.1.max(threshold));
    }
    span.iter()
        .map(|s| match *s {
            None => (1.0, 0),
            Some((lo, hi)) => {
                let width = if hi > lo { hi - lo } else { lo.abs().max(f64::MIN_POSITIVE) };
                let scale = width / (levels - 2) as f64;
                // The boundary between q = 0 and q = 1 is at s·(0.5 − z), z an integer.
                (scale, (0.5 - lo / scale).round() as i64)
            }
        })
        .unzip()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::quantize_value;
    use crate::ops::{Aggregate, Tree, TreeNode};

    /// Evaluates the tables the way the IR does: gather, compare, path, leaf, sum.
    fn run(f: &ForestTables, q: &[i64]) -> Vec<i64> {
        let g: Vec<i64> = (0..f.select.ncols()).map(|j| (0..q.len()).map(|i| q[i] * f.select[[i, j]]).sum()).collect();
        let c: Vec<i64> = g.iter().enumerate().map(|(j, &v)| f.compare[j][v as usize]).collect();
        let idx: Vec<i64> = (0..f.path.ncols())
            .map(|col| f.path_bias[col] + (0..c.len()).map(|j| c[j] * f.path[[j, col]]).sum::<i64>())
            .collect();
        let v: Vec<i64> = idx.iter().enumerate().map(|(col, &i)| f.leaf[col][i as usize]).collect();
        (0..f.sum.ncols()).map(|t| f.base[t] + (0..v.len()).map(|col| v[col] * f.sum[[col, t]]).sum::<i64>()).collect()
    }

    fn quantized(f: &ForestTables, x: &[f64]) -> Vec<i64> {
        let z = &f.features.zero_point;
        x.iter().enumerate().map(|(i, &v)| quantize_value(v, f.features.scale[i], z[i], 0, f.levels - 1)).collect()
    }

    fn leaf(w: f64) -> TreeNode {
        TreeNode::Leaf { weights: vec![(0, w)] }
    }

    fn branch(feature: usize, threshold: f64, mode: BranchMode, t: u32, f: u32) -> TreeNode {
        TreeNode::Branch { feature, threshold, mode, true_child: t, false_child: f }
    }

    /// Two trees of uneven depth, all four branch modes, a repeated comparison.
    fn forest() -> TreeEnsemble {
        use BranchMode::*;
        let a = Tree {
            nodes: vec![
                branch(0, 0.3, Leq, 1, 2),
                branch(1, -1.0, Gt, 3, 4),
                leaf(5.0),
                leaf(-2.0),
                branch(0, -0.5, Lt, 5, 6),
                leaf(1.0),
                leaf(7.0),
            ],
        };
        let b = Tree {
            nodes: vec![branch(0, 0.3, Leq, 1, 2), leaf(3.0), branch(1, 2.0, Gte, 3, 4), leaf(-4.0), leaf(0.5)],
        };
        TreeEnsemble { trees: vec![a, b], n_targets: 1, base_values: vec![10.0], aggregate: Aggregate::Sum }
    }

    #[test]
    fn tables_compute_the_trees_on_the_grid() {
        let t = forest();
        let f = tree_tables(&t, 2, 4, 8).unwrap();
        // Five branches; (0, 0.3) is shared by both roots.
        assert_eq!(f.compare.len(), 4);
        // Tables: tree a's leaf 3 and leaves 5 and 6; tree b's leaves 3 and 4; and tree
        // a's leaf 2 with tree b's leaf 1, which hang off the shared root comparison
        // with opposite outcomes (exactly one is reached).
        assert_eq!(f.leaf.len(), 4);
        for x0 in (-20..=20).map(|i| i as f64 * 0.07) {
            for x1 in (-20..=20).map(|i| i as f64 * 0.17) {
                let q = quantized(&f, &[x0, x1]);
                // The same trees walked on the dequantized features.
                let deq: Vec<f64> =
                    (0..2).map(|i| f.features.scale[i] * (q[i] - f.features.zero_point[i]) as f64).collect();
                let x = crate::Tensor::F32(ndarray::arr2(&[[deq[0] as f32, deq[1] as f32]]).into_dyn());
                let want = crate::OpSpec::eval(&t, &[&x]).to_f64_vec()[0];
                let got = run(&f, &q)[0] as f64 * f.leaf_scale;
                assert!((got - want).abs() <= 3.0 * f.leaf_scale, "x=({x0}, {x1}): {got} vs {want}");
            }
        }
    }

    #[test]
    fn samples_a_step_away_from_every_threshold_take_the_float_path() {
        let t = forest();
        let f = tree_tables(&t, 2, 4, 8).unwrap();
        let thresholds: Vec<(usize, f64)> = t.branches().map(|(feature, th, _)| (feature, th)).collect();
        let mut checked = 0;
        for x0 in (-30..=30).map(|i| i as f64 * 0.031) {
            for x1 in (-30..=30).map(|i| i as f64 * 0.13) {
                let x = [x0, x1];
                if thresholds.iter().any(|&(i, th)| (x[i] - th).abs() <= f.features.scale[i]) {
                    continue;
                }
                let input = crate::Tensor::F32(ndarray::arr2(&[[x0 as f32, x1 as f32]]).into_dyn());
                let want = crate::OpSpec::eval(&t, &[&input]).to_f64_vec()[0];
                let got = run(&f, &quantized(&f, &x))[0] as f64 * f.leaf_scale;
                assert!((got - want).abs() <= 3.0 * f.leaf_scale, "x=({x0}, {x1}): {got} vs {want}");
                checked += 1;
            }
        }
        assert!(checked > 1000, "{checked}");
    }

    #[test]
    fn equality_branches_are_refused() {
        let mut t = forest();
        t.trees[0].nodes[0] = branch(0, 0.3, BranchMode::Eq, 1, 2);
        assert!(tree_tables(&t, 2, 4, 8).unwrap_err().contains("equality"));
    }
}
