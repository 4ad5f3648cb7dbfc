//! `tree_ensemble %x`: a sum of decision trees (ONNX-ML `TreeEnsembleRegressor`).
//!
//! For each sample row `x[n, :]` every tree is walked from node 0: a branch sends the
//! sample to `true_child` when `x[feature] <mode> threshold` holds, else `false_child`;
//! the leaf reached adds its weights to the targets. `y[n, t] = base[t] + agg(sum)`,
//! where `agg` divides by the tree count for `AVERAGE`. A classifier's output is its
//! class scores: `post_transform` is recorded, not applied (it is monotone per row,
//! so the label is the scores' argmax; see the ONNX frontend).
//!
//! The op exists in the float IR only: the quantizer rewrites it into comparison
//! tables, a levelled path sum, leaf tables and a levelled sum over trees
//! (`secc_compiler::passes::tree_tables`); the SMPC lowering reads it directly.

use super::{expect_arity, OpClass, OpSpec, Operand};
use crate::tensor::Tensor;
use crate::text::{ParseError, Parser, Printer};
use crate::types::{Shape, TensorType};
use ndarray::{ArrayD, IxDyn};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::hash::Hash;

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

/// What ONNX applies to the aggregated scores (recorded; secc returns the scores).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum PostTransform {
    /// Nothing (regression).
    None,
    /// Softmax over the classes.
    Softmax,
    /// Logistic function per class.
    Logistic,
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
    /// Post transform.
    pub post_transform: PostTransform,
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
    fn class(&self) -> OpClass {
        OpClass::Tree
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
        if self.post_transform != PostTransform::None {
            w.attr("post_transform", |w| w.text(POST_TRANSFORMS[self.post_transform as usize]));
        }
        w.attr("base_values", |w| w.list(&self.base_values, |w, v| w.f64(*v)));
        w.attr("trees", |w| w.list(&self.trees, |w, t| w.list(&t.nodes, |w, n| n.print(w))));
    }
}

const AGGREGATES: [&str; 2] = ["sum", "average"];
const POST_TRANSFORMS: [&str; 3] = ["none", "softmax", "logistic"];
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
    /// Reads `{targets, aggregate, post_transform, base_values, trees}`
    /// (`post_transform` none when absent).
    pub(crate) fn parse_attrs(p: &mut Parser) -> Result<Self, ParseError> {
        let n_targets = p.attr("targets", Parser::usize)?;
        let aggregate = [Aggregate::Sum, Aggregate::Average][p.attr("aggregate", |p| p.one_of(&AGGREGATES))?];
        let post = p.opt_attr("post_transform", |p| p.one_of(&POST_TRANSFORMS))?.unwrap_or(0);
        let post_transform = [PostTransform::None, PostTransform::Softmax, PostTransform::Logistic][post];
        let base_values = p.attr("base_values", |p| p.list(Parser::f64))?;
        let trees = p.attr("trees", |p| p.list(|p| Ok(Tree { nodes: p.list(TreeNode::parse)? })))?;
        Ok(TreeEnsemble { trees, n_targets, base_values, aggregate, post_transform })
    }
}
