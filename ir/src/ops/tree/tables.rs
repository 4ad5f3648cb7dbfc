//! The quantization rule of a tree ensemble: the ensemble as integer tables and
//! levelled sums, so that under TFHE it costs one bootstrap per distinct comparison
//! and one per parent of leaves, and everything else is levelled.
//!
//! 1. **Features** are bucketized one by one on the thresholds their trees compare them
//!    with (`bucketize`: `q_f` counts the cuts `x_f` passes, a cut `>=t` for `x < t`
//!    and `x >= t`, `>t` for `x <= t` and `x > t`), at most `2^tree_bits − 1` cuts per
//!    feature. A feature with no more distinct cuts than that is compared exactly, a
//!    sample equal to a threshold included; one with more keeps cuts evenly spaced
//!    in rank, and each comparison reads the kept cut nearest its threshold.
//! 2. **Comparisons** `x_f <mode> t` become `q_f ≤ k`, `k` the index of the cut they
//!    read (negated for `>`/`≥`); equal `(f, k)` pairs across the forest are computed
//!    once. A levelled gather
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
use crate::ops::Cut;
use ndarray::Array2;

/// The integer form of an ensemble: what the quantization rule pushes as IR nodes.
#[derive(Clone, Debug)]
pub(crate) struct ForestTables {
    /// Each feature's cuts (axis 1 of the `[N, F]` input), at most `2^tree_bits − 1`.
    pub cuts: Vec<Vec<Cut>>,
    /// `[F, J]`: column `j` picks comparison `j`'s feature.
    pub select: Array2<i64>,
    /// Comparison `j`'s table over every bucket: `[q ≤ k_j]`.
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
    let cuts = feature_cuts(t, n_features, (1usize << bits) - 1)?;
    // Every bucket of the feature with the most cuts.
    let levels = cuts.iter().map(Vec::len).max().unwrap_or(0) as i64 + 1;
    let (comparisons, paths) = t.leaf_paths(|feature, threshold, mode| {
        // `x <= t` is "`>t` not passed", `x < t` is "`>=t` not passed".
        let (closed, negate) = match mode {
            BranchMode::Leq => (false, false),
            BranchMode::Lt => (true, false),
            BranchMode::Gte => (true, true),
            BranchMode::Gt => (false, true),
            BranchMode::Eq | BranchMode::Neq => return Err("equality branches have no quantized form".into()),
        };
        let k = nearest_cut(&cuts[feature], Cut { at: threshold, closed });
        Ok(Split::Compare { key: (feature, k as i64), negate })
    })?;
    if comparisons.is_empty() {
        return Err("the ensemble compares nothing: it is a constant".into());
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
    Ok(ForestTables { cuts, select, compare, path, path_bias, leaf, sum, base, leaf_scale })
}

/// Each feature's cuts: those its comparisons make, sorted, or `cap` of them evenly
/// spaced in rank when there are more.
fn feature_cuts(t: &TreeEnsemble, n_features: usize, cap: usize) -> Result<Vec<Vec<Cut>>, String> {
    let mut cuts: Vec<Vec<Cut>> = vec![Vec::new(); n_features];
    for (feature, at, mode) in t.branches() {
        if !at.is_finite() {
            return Err(format!("feature {feature} is compared with {at}"));
        }
        cuts[feature].push(Cut { at, closed: matches!(mode, BranchMode::Lt | BranchMode::Gte) });
    }
    for c in &mut cuts {
        c.sort_by(Cut::order);
        c.dedup();
        if c.len() > cap {
            let n = c.len();
            *c = (0..cap).map(|i| c[(2 * i + 1) * n / (2 * cap)]).collect();
        }
    }
    Ok(cuts)
}

/// The index of the cut in `cuts` nearest to `want` (`want` itself when kept).
fn nearest_cut(cuts: &[Cut], want: Cut) -> usize {
    let distance = |c: &Cut| ((c.at - want.at).abs(), c.closed != want.closed);
    (0..cuts.len())
        .min_by(|&a, &b| distance(&cuts[a]).partial_cmp(&distance(&cuts[b])).expect("finite cuts"))
        .expect("the feature has cuts")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{Aggregate, Bucketize, Tree, TreeNode};

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

    /// The forest's output through its tables, and the float forest's.
    fn both(t: &TreeEnsemble, f: &ForestTables, x: &[f64]) -> (f64, f64) {
        // As the ops see them: float32 inputs.
        let b = Bucketize { cuts: f.cuts.clone() };
        let q: Vec<i64> = x.iter().enumerate().map(|(i, &v)| b.bucket(i, v as f32 as f64)).collect();
        let input = crate::Tensor::F32(ndarray::Array2::from_shape_fn((1, x.len()), |(_, i)| x[i] as f32).into_dyn());
        (run(f, &q)[0] as f64 * f.leaf_scale, crate::OpSpec::eval(t, &[&input]).to_f64_vec()[0])
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
    fn tables_compute_the_trees_exactly_thresholds_included() {
        let t = forest();
        let f = tree_tables(&t, 2, 4, 8).unwrap();
        // Five branches; (0, 0.3) is shared by both roots.
        assert_eq!(f.compare.len(), 4);
        // Tables: tree a's leaf 3 and leaves 5 and 6; tree b's leaves 3 and 4; and tree
        // a's leaf 2 with tree b's leaf 1, which hang off the shared root comparison
        // with opposite outcomes (exactly one is reached).
        assert_eq!(f.leaf.len(), 4);
        let thresholds = [0.3, -0.5, -1.0, 2.0];
        let grid = (-30..=30).map(|i| i as f64 * 0.1).chain(thresholds);
        for x0 in grid.clone() {
            for x1 in grid.clone() {
                let (got, want) = both(&t, &f, &[x0, x1]);
                assert!((got - want).abs() <= 2.0 * f.leaf_scale, "x=({x0}, {x1}): {got} vs {want}");
            }
        }
    }

    #[test]
    fn with_fewer_levels_than_thresholds_samples_beyond_them_take_the_float_path() {
        // One chain of 12 `<` comparisons on one feature, read through 2 bits (3 cuts).
        let n = 12;
        let mut nodes = Vec::new();
        for i in 0..n {
            nodes.push(branch(0, i as f64, BranchMode::Lt, 2 * i + 1, 2 * i + 2));
            nodes.push(leaf(i as f64));
        }
        nodes.push(leaf(n as f64));
        // Children of branch i are at 2i+1 (leaf) and 2i+2 (next branch).
        let t = TreeEnsemble {
            trees: vec![Tree { nodes }],
            n_targets: 1,
            base_values: vec![0.0],
            aggregate: Aggregate::Sum,
        };
        let f = tree_tables(&t, 1, 2, 8).unwrap();
        assert_eq!(f.cuts[0].len(), 3);
        let kept: Vec<f64> = f.cuts[0].iter().map(|c| c.at).collect();
        for x in [-5.0, -0.5, 11.0, 11.5, 40.0] {
            let (got, want) = both(&t, &f, &[x]);
            assert!((got - want).abs() <= f.leaf_scale, "x={x}: {got} vs {want} (kept {kept:?})");
        }
    }

    #[test]
    fn equality_branches_are_refused() {
        let mut t = forest();
        t.trees[0].nodes[0] = branch(0, 0.3, BranchMode::Eq, 1, 2);
        assert!(tree_tables(&t, 2, 4, 8).unwrap_err().contains("equality"));
    }
}
