//! `tree_ensemble %x`: a sum of decision trees (ONNX-ML `TreeEnsembleRegressor` and
//! `TreeEnsembleClassifier`).
//!
//! For each sample row `x[n, :]` every tree is walked from node 0: a branch sends the
//! sample to `true_child` when `x[feature] <mode> threshold` holds, else `false_child`;
//! the leaf reached adds its weights to the targets. `y[n, t] = base[t] + agg(sum)`,
//! where `agg` divides by the tree count for `AVERAGE`. A classifier's output is its
//! raw class scores: the ONNX frontend writes its `post_transform` as the ops after it
//! (`sigmoid`, `softmax`), and a binary classifier's one score column as two.
//!
//! The op exists in the float IR only. The quantizer rewrites it into a bucketization
//! of the model input on the trees' thresholds, a levelled gather, comparison tables, a levelled
//! path sum, leaf tables and a levelled sum over trees ([`tables`]). The SMPC backend
//! runs it as one forest step: batched comparisons, boolean path selection, one bit
//! injection per leaf.

mod tables;

use super::facets::{Channels, FheLowering, FheRule, Lowered, MpcCx, MpcRule, QuantizeCx, QuantizeRule, TableNoise};
use super::{expect_arity, Bucketize, Lut, MatMul, Op, OpSpec, Operand};
use crate::lowered::fixed::encode_fixed as fixed;
use crate::lowered::mpc::{ForestPlan, Reg, StepOp};
use crate::tensor::Tensor;
use crate::text::{ParseError, Parser, Printer};
use crate::types::{Quant, Shape, TensorType};
use crate::{Graph, ValueId};
use ndarray::{ArrayD, IxDyn};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::hash::Hash;
use tables::tree_tables;

/// Fractional bits of a plan with a tree ensemble: inputs up to `2^30` in magnitude.
pub const FOREST_FRAC_BITS: u32 = 32;

/// The comparison of a branch node.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum BranchMode {
    /// x <= t
    Leq,
    /// x < t
    Lt,
    /// x >= t
    Gte,
    /// x > t
    Gt,
    /// x == t
    Eq,
    /// x != t
    Neq,
}

impl BranchMode {
    /// Whether `x <mode> t` holds.
    pub fn holds(self, x: f64, t: f64) -> bool {
        match self {
            BranchMode::Leq => x <= t,
            BranchMode::Lt => x < t,
            BranchMode::Gte => x >= t,
            BranchMode::Gt => x > t,
            BranchMode::Eq => x == t,
            BranchMode::Neq => x != t,
        }
    }
}

/// A node of a tree.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub enum TreeNode {
    /// A comparison of one feature with a threshold.
    Branch {
        /// Feature index.
        feature: usize,
        /// Threshold.
        threshold: f64,
        /// Comparison.
        mode: BranchMode,
        /// Node taken when the comparison holds.
        true_child: u32,
        /// Node taken otherwise.
        false_child: u32,
    },
    /// A leaf with (target, weight) contributions.
    Leaf {
        /// Contributions to targets.
        weights: Vec<(usize, f64)>,
    },
}

/// One tree; node 0 is the root.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Tree {
    /// Nodes, children referenced by index.
    pub nodes: Vec<TreeNode>,
}

/// How tree outputs are combined.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Aggregate {
    /// Sum of tree outputs.
    Sum,
    /// Mean of tree outputs.
    Average,
}

/// A tree ensemble.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct TreeEnsemble {
    /// The trees.
    pub trees: Vec<Tree>,
    /// Number of outputs per sample.
    pub n_targets: usize,
    /// Added to each target.
    pub base_values: Vec<f64>,
    /// Tree combination.
    pub aggregate: Aggregate,
}

/// What a branch becomes once thresholds are encoded: `c = [key]` (the branch holds
/// when `c ≠ negate`), or a constant outcome.
pub enum Split<K> {
    /// A comparison, shared by every branch with the same key.
    Compare {
        /// Identifies the comparison (feature and encoded bound).
        key: K,
        /// Whether the branch holds when the comparison is false.
        negate: bool,
    },
    /// The branch always (true) or never holds.
    Constant(bool),
}

/// One literal of a path: comparison `comparison` must come out `want`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Literal {
    /// Index into the distinct comparisons.
    pub comparison: usize,
    /// The value it must have.
    pub want: bool,
}

/// A leaf and what reaching it takes.
#[derive(Clone, PartialEq, Debug)]
pub struct LeafPath {
    /// The non-constant comparisons on its path (empty: every sample reaches it).
    pub literals: Vec<Literal>,
    /// Its (target, weight) contributions.
    pub weights: Vec<(usize, f64)>,
}

impl TreeEnsemble {
    /// Number of features read (largest feature index + 1).
    pub fn n_features(&self) -> usize {
        self.branches().map(|(f, _, _)| f + 1).max().unwrap_or(0)
    }

    /// Every branch as (feature, threshold, mode).
    pub fn branches(&self) -> impl Iterator<Item = (usize, f64, BranchMode)> + '_ {
        self.trees.iter().flat_map(|t| &t.nodes).filter_map(|n| match n {
            TreeNode::Branch { feature, threshold, mode, .. } => Some((*feature, *threshold, *mode)),
            TreeNode::Leaf { .. } => None,
        })
    }

    /// Every reachable leaf with the literals of its path; `split` encodes each branch
    /// and equal keys share one comparison (returned in first-seen order). Siblings
    /// come out adjacent, the true child's leaf first. Both backends build on this.
    pub fn leaf_paths<K: Eq + Hash + Clone>(
        &self,
        split: impl Fn(usize, f64, BranchMode) -> Result<Split<K>, String>,
    ) -> Result<(Vec<K>, Vec<LeafPath>), String> {
        let mut keys: Vec<K> = Vec::new();
        let mut index: HashMap<K, usize> = HashMap::new();
        let mut leaves = Vec::new();
        for tree in &self.trees {
            let mut stack = vec![(0usize, Vec::<Literal>::new())];
            while let Some((i, literals)) = stack.pop() {
                match &tree.nodes[i] {
                    TreeNode::Leaf { weights } => leaves.push(LeafPath { literals, weights: weights.clone() }),
                    &TreeNode::Branch { feature, threshold, mode, true_child, false_child } => {
                        match split(feature, threshold, mode)? {
                            Split::Constant(holds) => {
                                stack.push((if holds { true_child } else { false_child } as usize, literals))
                            }
                            Split::Compare { key, negate } => {
                                let comparison = *index.entry(key.clone()).or_insert_with(|| {
                                    keys.push(key);
                                    keys.len() - 1
                                });
                                // Popped true child first.
                                for (child, want) in [(false_child, negate), (true_child, !negate)] {
                                    let mut path = literals.clone();
                                    path.push(Literal { comparison, want });
                                    stack.push((child as usize, path));
                                }
                            }
                        }
                    }
                }
            }
        }
        Ok((keys, leaves))
    }

    /// The factor applied to every tree's leaves: 1, or `1/trees` for `AVERAGE`.
    pub fn per_tree(&self) -> f64 {
        match self.aggregate {
            Aggregate::Sum => 1.0,
            Aggregate::Average => 1.0 / self.trees.len() as f64,
        }
    }

    /// Checks structure: children in range, no node reached twice, leaf targets in range.
    pub fn check(&self) -> Result<(), String> {
        for (ti, tree) in self.trees.iter().enumerate() {
            let mut seen = vec![false; tree.nodes.len()];
            let mut stack = vec![0u32];
            while let Some(i) = stack.pop() {
                let Some(node) = tree.nodes.get(i as usize) else {
                    return Err(format!("tree {ti}: child {i} out of range ({} nodes)", tree.nodes.len()));
                };
                if std::mem::replace(&mut seen[i as usize], true) {
                    return Err(format!("tree {ti}: node {i} is reached twice (not a tree)"));
                }
                match node {
                    TreeNode::Branch { true_child, false_child, .. } => stack.extend([*true_child, *false_child]),
                    TreeNode::Leaf { weights } => {
                        if let Some((t, _)) = weights.iter().find(|(t, _)| *t >= self.n_targets) {
                            return Err(format!("tree {ti}: leaf {i} targets {t} of {}", self.n_targets));
                        }
                    }
                }
            }
        }
        if self.base_values.len() != self.n_targets {
            return Err(format!("{} base values for {} targets", self.base_values.len(), self.n_targets));
        }
        Ok(())
    }

    fn leaf_of<'a>(&self, tree: &'a Tree, x: impl Fn(usize) -> f64) -> &'a [(usize, f64)] {
        let mut i = 0usize;
        loop {
            match &tree.nodes[i] {
                TreeNode::Branch { feature, threshold, mode, true_child, false_child } => {
                    i = if mode.holds(x(*feature), *threshold) { *true_child } else { *false_child } as usize
                }
                TreeNode::Leaf { weights } => return weights,
            }
        }
    }

    /// Raw (un-aggregated, un-based) per-target sums for each sample row.
    fn sums(&self, rows: usize, x: impl Fn(usize, usize) -> f64) -> Vec<f64> {
        let mut y = vec![0.0; rows * self.n_targets];
        for n in 0..rows {
            for tree in &self.trees {
                for &(t, w) in self.leaf_of(tree, |f| x(n, f)) {
                    y[n * self.n_targets + t] += w;
                }
            }
        }
        y
    }
}

impl OpSpec for TreeEnsemble {
    fn mnemonic(&self) -> &'static str {
        "tree_ensemble"
    }
    fn infer(&self, inputs: &[Operand]) -> Result<TensorType, String> {
        expect_arity(inputs, 1..=1)?;
        self.check()?;
        let x = inputs[0].ty;
        let &[n, f] = x.shape.0.as_slice() else {
            return Err(format!("expects a [N, features] input, got {}", x.shape));
        };
        if f < self.n_features() {
            return Err(format!("reads feature {} of a {f}-feature input", self.n_features() - 1));
        }
        if !x.is_float() {
            return Err("tree ensembles exist in the float IR only (the quantizer expands them)".into());
        }
        Ok(TensorType::f32(Shape(vec![n, self.n_targets])))
    }
    fn eval(&self, inputs: &[&Tensor]) -> Tensor {
        let x = inputs[0].as_f32().expect("float operand verified");
        let rows = x.shape()[0];
        let y = self.sums(rows, |n, f| x[[n, f]] as f64);
        let y = y.iter().enumerate().map(|(i, s)| (s * self.per_tree() + self.base_values[i % self.n_targets]) as f32);
        Tensor::F32(ArrayD::from_shape_vec(IxDyn(&[rows, self.n_targets]), y.collect()).expect("shape"))
    }
    fn print_attrs(&self, w: &mut Printer) {
        w.attr("targets", |w| w.display(self.n_targets));
        w.attr("aggregate", |w| w.text(AGGREGATES[self.aggregate as usize]));
        w.attr("base_values", |w| w.list(&self.base_values, |w, v| w.f64(*v)));
        w.attr("trees", |w| w.list(&self.trees, |w, t| w.list(&t.nodes, |w, n| n.print(w))));
    }
}

impl QuantizeRule for TreeEnsemble {
    /// The ensemble as `tree_tables` builds it: the model input bucketized on the
    /// thresholds, gather, comparison tables, path sums, leaf tables, sum over trees.
    fn quantize<C: QuantizeCx>(&self, graph: &Graph, v: ValueId, cx: &mut C) -> Result<Lowered<ValueId>, C::Error> {
        let node = graph.node(v);
        let name = node.name.clone();
        let x = node.inputs[0];
        if !matches!(graph.node(x).op, Op::Input(_)) {
            return Err(cx.fail(v, "a tree ensemble must read a model input"));
        }
        let n_features = *graph.ty(x).shape.0.last().expect("[N, F] input");
        let cfg = cx.config().clone();
        let f = tree_tables(self, n_features, cfg.tree_bits, cfg.bits).map_err(|m| cx.fail(v, m))?;
        // The float input, bucketized on the trees' thresholds instead of the per-tensor
        // quantization pushed for it (which `compact` then drops).
        let &Lowered::Computed(q) = cx.state(x) else { unreachable!("inputs are computed") };
        let float_in = cx.new_graph().node(q).inputs[0];
        let buckets = Bucketize { cuts: f.cuts.clone() };
        let xq = cx.push(Op::Bucketize(buckets), vec![float_in], graph.node(x).name.clone())?;
        let int = |a: ndarray::Array2<i64>| Tensor::I64(a.into_dyn());
        let vector = |b: Vec<i64>| Tensor::I64(ndarray::Array1::from(b).into_dyn());
        let one = Some(Quant::per_tensor(1.0, 0));
        let linear = |cx: &mut C, x: ValueId, w: Tensor, b: Option<Tensor>, wq: Option<Quant>, what: &str| {
            let mut inputs = vec![x, cx.push_const(w, wq, format!("{name}/{what}.weight"))?];
            if let Some(b) = b {
                inputs.push(cx.push_const(b, None, format!("{name}/{what}.bias"))?);
            }
            cx.push(Op::MatMul(MatMul { x_zp: 0 }), inputs, format!("{name}/{what}"))
        };
        let gathered = linear(cx, xq, int(f.select), None, None, "gather")?;
        let table_of = |n: usize| (0..n as u32).collect();
        let compare = Lut { shift: 0, base: 0, table_of: table_of(f.compare.len()), tables: f.compare, quant: None };
        let bits = cx.push(Op::Lut(compare), vec![gathered], format!("{name}/compare"))?;
        let idx = linear(cx, bits, int(f.path), Some(vector(f.path_bias)), None, "path")?;
        let leaf = Lut {
            shift: 0,
            base: 0,
            table_of: table_of(f.leaf.len()),
            tables: f.leaf,
            quant: Some(Quant::per_tensor(f.leaf_scale, 0)),
        };
        let leaves = cx.push(Op::Lut(leaf), vec![idx], format!("{name}/leaves"))?;
        Ok(Lowered::Computed(linear(cx, leaves, int(f.sum), Some(vector(f.base)), one, "sum")?))
    }
    fn table_noise(&self) -> TableNoise {
        TableNoise::Untracked
    }
    fn weight_channels(&self, _: usize) -> Option<Channels> {
        None
    }
}

impl FheRule for TreeEnsemble {
    fn fhe_lowering(&self) -> FheLowering<'_> {
        FheLowering::FloatOnly
    }
}

impl MpcRule for TreeEnsemble {
    /// The forest step ([`ForestPlan`]): comparisons `c = [x̃ < τ]` on the fixed-point
    /// input `x̃`, so with `t̃` the threshold rounded the same way, `x ≤ t` is
    /// `x̃ < t̃ + 1` and `x < t` is `x̃ < t̃` (`≥`, `>` their negations): exact but for
    /// inputs within `2^−f` of a threshold.
    fn lower_mpc<C: MpcCx>(&self, graph: &Graph, v: ValueId, cx: &mut C) -> Result<Lowered<Reg>, C::Error> {
        let node = graph.node(v);
        let x = cx.reg(node.inputs[0])?;
        let f = cx.frac_bits();
        let features = *graph.ty(node.inputs[0]).shape.0.last().expect("[N, F] input");
        let (keys, paths) = self
            .leaf_paths(|feature, threshold, mode| {
                // Rounded as the input is, so a feature equal to its threshold compares equal.
                let t = fixed(threshold, f);
                let (bound, negate) = match mode {
                    BranchMode::Leq => (t + 1, false),
                    BranchMode::Lt => (t, false),
                    BranchMode::Gte => (t, true),
                    BranchMode::Gt => (t + 1, true),
                    BranchMode::Eq | BranchMode::Neq => {
                        return Err("equality branches are not supported by the mpc backend".to_string())
                    }
                };
                Ok(Split::Compare { key: (feature, bound), negate })
            })
            .map_err(|m| cx.fail(v, m))?;
        let mut select = vec![0; features * keys.len()];
        keys.iter().enumerate().for_each(|(j, &(feature, _))| select[feature * keys.len() + j] = 1);
        let name = |what: &str| format!("{v} \"{}\" {what}", node.name);
        let select = cx.raw_weight(name("selection"), select);
        let bounds = cx.raw_weight(name("bounds"), keys.iter().map(|k| k.1).collect());
        let mut entries = Vec::new();
        let mut values = Vec::new();
        for (leaf, path) in paths.iter().enumerate() {
            for &(target, w) in &path.weights {
                entries.push((leaf as u32, target as u32));
                values.push(fixed(w * self.per_tree(), f));
            }
        }
        let values = cx.raw_weight(name("leaf values"), values);
        let base = cx.raw_weight(name("base values"), self.base_values.iter().map(|&b| fixed(b, f)).collect());
        let paths = paths.iter().map(|p| p.literals.iter().map(|l| (l.comparison as u32, l.want)).collect()).collect();
        let forest = ForestPlan {
            features,
            comparisons: keys.len(),
            select,
            bounds,
            paths,
            entries,
            values,
            targets: self.n_targets,
            base,
        };
        let out = cx.new_reg();
        cx.step(v, StepOp::Forest { x, forest, out });
        Ok(Lowered::Computed(out))
    }
    /// A forest truncates no product, so its inputs can keep 32 fractional bits: f32
    /// features one ulp from a threshold (as trained thresholds often are) still
    /// compare the right way, which 18 bits cannot resolve.
    fn min_frac_bits(&self) -> u32 {
        FOREST_FRAC_BITS
    }
}

const AGGREGATES: [&str; 2] = ["sum", "average"];
const MODES: [(BranchMode, &str); 6] = [
    (BranchMode::Leq, "<="),
    (BranchMode::Lt, "<"),
    (BranchMode::Gte, ">="),
    (BranchMode::Gt, ">"),
    (BranchMode::Eq, "=="),
    (BranchMode::Neq, "!="),
];

impl TreeNode {
    /// `x[feature] <= threshold ? true_child : false_child`, or `leaf [target: weight, ...]`.
    fn print(&self, w: &mut Printer) {
        match self {
            TreeNode::Branch { feature, threshold, mode, true_child, false_child } => {
                let (_, sym) = MODES.iter().find(|(m, _)| m == mode).expect("every mode has a symbol");
                w.text(&format!("x[{feature}] {sym} "));
                w.f64(*threshold);
                w.text(&format!(" ? {true_child} : {false_child}"));
            }
            TreeNode::Leaf { weights } => {
                w.text("leaf ");
                w.list(weights, |w, (t, v)| {
                    w.text(&format!("{t}: "));
                    w.f64(*v);
                });
            }
        }
    }

    fn parse(p: &mut Parser) -> Result<TreeNode, ParseError> {
        if p.is_keyword("leaf") {
            p.keyword("leaf")?;
            let weights = p.list(|p| {
                let target = p.usize()?;
                p.expect(":")?;
                Ok((target, p.f64()?))
            })?;
            return Ok(TreeNode::Leaf { weights });
        }
        if !p.is_keyword("x") {
            return Err(p.expected("a branch `x[feature] <= threshold ? node : node` or a `leaf [...]`"));
        }
        p.keyword("x")?;
        p.expect("[")?;
        let feature = p.usize()?;
        p.expect("]")?;
        let Some(&(mode, _)) = MODES.iter().find(|(_, sym)| p.eat(sym)) else {
            return Err(p.expected("a comparison (`<=`, `<`, `>=`, `>`, `==`, `!=`)"));
        };
        let threshold = p.f64()?;
        p.expect("?")?;
        let true_child = p.u32()?;
        p.expect(":")?;
        Ok(TreeNode::Branch { feature, threshold, mode, true_child, false_child: p.u32()? })
    }
}

impl TreeEnsemble {
    /// Reads `{targets, aggregate, base_values, trees}`.
    pub(crate) fn parse_attrs(p: &mut Parser) -> Result<Self, ParseError> {
        let n_targets = p.attr("targets", Parser::usize)?;
        let aggregate = [Aggregate::Sum, Aggregate::Average][p.attr("aggregate", |p| p.one_of(&AGGREGATES))?];
        let base_values = p.attr("base_values", |p| p.list(Parser::f64))?;
        let trees = p.attr("trees", |p| p.list(|p| Ok(Tree { nodes: p.list(TreeNode::parse)? })))?;
        Ok(TreeEnsemble { trees, n_targets, base_values, aggregate })
    }
}
