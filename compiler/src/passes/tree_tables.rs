//! `tree_tables`: a tree ensemble as integer tables and levelled sums (used by
//! `quantize`), so that under TFHE it costs one bootstrap per distinct comparison and
//! one per parent of leaves, and everything else is levelled.
//!
//! 1. **Features** are quantized one by one, each to `tree_bits` bits on a grid spanning
//!    its own thresholds (the first and last fall on rounding boundaries), so a
//!    feature's bits are spent where its trees split it. Values beyond the grid clip,
//!    which never changes a comparison.
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

use ndarray::Array2;
use secc_ir::ops::{Aggregate, BranchMode, TreeEnsemble, TreeNode};
use secc_ir::Quant;
use std::collections::HashMap;

/// The integer form of an ensemble: what `quantize` pushes as IR nodes.
#[derive(Clone, Debug)]
pub struct ForestTables {
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

/// A path literal: comparison `j` must be `want` (`c_j = [q ≤ k_j]`).
#[derive(Clone, Copy)]
struct Literal {
    j: usize,
    want: bool,
}

/// A parent of leaves: its path to the parent and the leaf weights for `c_parent` = 1 and 0.
struct Group {
    prefix: Vec<Literal>,
    /// The parent's comparison, or `None` for a leaf under resolved branches.
    selector: Option<usize>,
    /// Leaf weights reached when the selector is 1 / 0 (or the lone leaf, in `on_true`).
    on_true: Option<Vec<(usize, f64)>>,
    on_false: Option<Vec<(usize, f64)>>,
}

/// What a branch becomes on the grid: a comparison `q ≤ k` (xor `negate`), or a constant.
enum Test {
    Compare { k: i64, negate: bool },
    Constant(bool),
}

/// Builds the integer form of `t` with `bits`-bit features and `leaf_bits`-bit leaf weights.
pub fn tree_tables(t: &TreeEnsemble, n_features: usize, bits: u32, leaf_bits: u32) -> Result<ForestTables, String> {
    let levels = 1i64 << bits;
    let (scale, zero_point) = feature_grids(t, n_features, levels);
    let test = |feature: usize, threshold: f64, mode: BranchMode| -> Result<Test, String> {
        let u = zero_point[feature] as f64 + threshold / scale[feature];
        let (k, negate) = match mode {
            BranchMode::Leq => (u.floor(), false),
            BranchMode::Lt => (u.ceil() - 1.0, false),
            BranchMode::Gte => (u.ceil() - 1.0, true),
            BranchMode::Gt => (u.floor(), true),
            BranchMode::Eq | BranchMode::Neq => return Err("equality branches have no quantized form".into()),
        };
        Ok(if k < 0.0 {
            Test::Constant(negate)
        } else if k >= (levels - 1) as f64 {
            Test::Constant(!negate)
        } else {
            Test::Compare { k: k as i64, negate }
        })
    };

    let per_tree = match t.aggregate {
        Aggregate::Sum => 1.0,
        Aggregate::Average => 1.0 / t.trees.len() as f64,
    };
    let mut comparisons: Vec<(usize, i64)> = Vec::new();
    let mut index: HashMap<(usize, i64), usize> = HashMap::new();
    let mut groups: Vec<Group> = Vec::new();
    let mut always: Vec<f64> = t.base_values.clone();
    for tree in &t.trees {
        // (node, path literals) still to visit.
        let mut stack = vec![(0usize, Vec::<Literal>::new())];
        while let Some((i, prefix)) = stack.pop() {
            match &tree.nodes[i] {
                TreeNode::Leaf { weights } if prefix.is_empty() => {
                    weights.iter().for_each(|&(target, w)| always[target] += w * per_tree)
                }
                TreeNode::Leaf { weights } => {
                    let on_true = Some(weights.clone());
                    groups.push(Group { prefix, selector: None, on_true, on_false: None })
                }
                &TreeNode::Branch { feature, threshold, mode, true_child, false_child } => {
                    let (k, negate) = match test(feature, threshold, mode)? {
                        Test::Constant(holds) => {
                            stack.push((if holds { true_child } else { false_child } as usize, prefix));
                            continue;
                        }
                        Test::Compare { k, negate } => (k, negate),
                    };
                    let j = *index.entry((feature, k)).or_insert_with(|| {
                        comparisons.push((feature, k));
                        comparisons.len() - 1
                    });
                    let mut group = Group { prefix: prefix.clone(), selector: Some(j), on_true: None, on_false: None };
                    // The true child is taken when c_j differs from `negate`.
                    for (child, c) in [(true_child, !negate), (false_child, negate)] {
                        match &tree.nodes[child as usize] {
                            TreeNode::Leaf { weights } => {
                                *(if c { &mut group.on_true } else { &mut group.on_false }) = Some(weights.clone())
                            }
                            TreeNode::Branch { .. } => {
                                let mut path = prefix.clone();
                                path.push(Literal { j, want: c });
                                stack.push((child as usize, path));
                            }
                        }
                    }
                    if group.on_true.is_some() || group.on_false.is_some() {
                        groups.push(group);
                    }
                }
            }
        }
    }
    if comparisons.is_empty() {
        return Err(format!("every comparison is constant on the {bits}-bit feature grids; the ensemble is constant"));
    }

    let max_leaf = groups
        .iter()
        .flat_map(|g| g.on_true.iter().chain(&g.on_false).flatten())
        .map(|&(_, w)| (w * per_tree).abs())
        .fold(0f64, f64::max);
    let leaf_scale = if max_leaf > 0.0 { max_leaf / ((1i64 << (leaf_bits - 1)) - 1) as f64 } else { 1.0 };
    let q = |w: f64| (w * per_tree / leaf_scale).round() as i64;

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
        let mut targets: Vec<usize> = group.on_true.iter().chain(&group.on_false).flatten().map(|w| w.0).collect();
        targets.sort_unstable();
        targets.dedup();
        columns.extend(targets.into_iter().map(|target| (g, target)));
    }
    let len = groups.iter().map(|g| if g.selector.is_some() { 2 * g.prefix.len() + 2 } else { g.prefix.len() + 1 });
    let len = len.max().unwrap_or(1);
    let mut path = Array2::zeros((j_count, columns.len()));
    let mut path_bias = vec![0; columns.len()];
    let mut leaf = Vec::with_capacity(columns.len());
    let mut sum = Array2::zeros((columns.len(), t.n_targets));
    for (col, &(g, target)) in columns.iter().enumerate() {
        let group = &groups[g];
        let weight = |leaf: &Option<Vec<(usize, f64)>>| {
            leaf.iter().flatten().filter(|w| w.0 == target).map(|w| q(w.1)).sum::<i64>()
        };
        // m counts literals that hold: c_j when wanted true, 1 − c_j otherwise.
        let unit = if group.selector.is_some() { 2 } else { 1 };
        for lit in &group.prefix {
            if lit.want {
                path[[lit.j, col]] += unit;
            } else {
                path[[lit.j, col]] -= unit;
                path_bias[col] += unit;
            }
        }
        let full = unit * group.prefix.len() as i64;
        let mut table = vec![0; len];
        match group.selector {
            Some(j) => {
                path[[j, col]] += 1;
                table[full as usize] = weight(&group.on_false);
                table[full as usize + 1] = weight(&group.on_true);
            }
            None => table[full as usize] = weight(&group.on_true),
        }
        leaf.push(table);
        sum[[col, target]] = 1;
    }
    let base = always.iter().map(|&b| (b / leaf_scale).round() as i64).collect();
    let features = Quant { axis: Some(1), scale, zero_point };
    Ok(ForestTables { features, levels, select, compare, path, path_bias, leaf, sum, base, leaf_scale })
}

/// Each feature's grid: `levels − 2` steps from its smallest to its largest threshold,
/// so both lie on rounding boundaries; a feature with one threshold `t` gets steps of
/// `|t| / (levels − 2)`, one without any scale 1 (it is never read).
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
                // The boundary between q = 0 and q = 1 is at s·(0.5 − z).
                (scale, (0.5 - lo / scale).round() as i64)
            }
        })
        .unzip()
}

#[cfg(test)]
mod tests {
    use super::*;
    use secc_ir::ops::{PostTransform, Tree};
    use secc_ir::ops::quantize_value;

    /// Evaluates the tables the way the IR does: gather, compare, path, leaf, sum.
    fn run(f: &ForestTables, q: &[i64]) -> Vec<i64> {
        let g: Vec<i64> = (0..f.select.ncols()).map(|j| (0..q.len()).map(|i| q[i] * f.select[[i, j]]).sum()).collect();
        let c: Vec<i64> = g.iter().enumerate().map(|(j, &v)| f.compare[j][v as usize]).collect();
        let idx: Vec<i64> =
            (0..f.path.ncols()).map(|col| f.path_bias[col] + (0..c.len()).map(|j| c[j] * f.path[[j, col]]).sum::<i64>()).collect();
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
        let b = Tree { nodes: vec![branch(0, 0.3, Leq, 1, 2), leaf(3.0), branch(1, 2.0, Gte, 3, 4), leaf(-4.0), leaf(0.5)] };
        TreeEnsemble {
            trees: vec![a, b],
            n_targets: 1,
            base_values: vec![10.0],
            aggregate: Aggregate::Sum,
            post_transform: PostTransform::None,
        }
    }

    #[test]
    fn tables_compute_the_trees_on_the_grid() {
        let t = forest();
        let f = tree_tables(&t, 2, 4, 8).unwrap();
        // Five branches; (0, 0.3) is shared by both roots.
        assert_eq!(f.compare.len(), 4);
        // Groups: tree a's nodes 0 (leaf 2), 4 (leaves 5, 6), 1 (leaf 3); tree b's 0 and 2.
        assert_eq!(f.leaf.len(), 5);
        for x0 in (-20..=20).map(|i| i as f64 * 0.07) {
            for x1 in (-20..=20).map(|i| i as f64 * 0.17) {
                let q = quantized(&f, &[x0, x1]);
                // The same trees walked on the dequantized features.
                let deq: Vec<f64> = (0..2).map(|i| f.features.scale[i] * (q[i] - f.features.zero_point[i]) as f64).collect();
                let x = secc_ir::Tensor::F32(ndarray::arr2(&[[deq[0] as f32, deq[1] as f32]]).into_dyn());
                let want = secc_ir::OpSpec::eval(&t, &[&x]).to_f64_vec()[0];
                let got = run(&f, &q)[0] as f64 * f.leaf_scale;
                assert!((got - want).abs() <= 3.0 * f.leaf_scale, "x=({x0}, {x1}): {got} vs {want}");
            }
        }
    }

    #[test]
    fn thresholds_at_the_grid_ends_are_exact() {
        let f = tree_tables(&forest(), 2, 3, 8).unwrap();
        // Feature 0's extreme thresholds, −0.5 and 0.3, are rounding boundaries.
        for t in [-0.5, 0.3] {
            let below = quantized(&f, &[t - 1e-9, 0.0])[0];
            let above = quantized(&f, &[t + 1e-9, 0.0])[0];
            assert_eq!(above, below + 1, "threshold {t}");
        }
    }

    #[test]
    fn equality_branches_are_refused() {
        let mut t = forest();
        t.trees[0].nodes[0] = branch(0, 0.3, BranchMode::Eq, 1, 2);
        assert!(tree_tables(&t, 2, 4, 8).unwrap_err().contains("equality"));
    }
}
