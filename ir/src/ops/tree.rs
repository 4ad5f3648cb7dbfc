//! `tree_ensemble %x`: a sum of decision trees (ONNX-ML `TreeEnsembleRegressor`).
//!
//! For each sample row `x[n, :]` every tree is walked from node 0: a branch sends the
//! sample to `true_child` when `x[feature] <mode> threshold` holds, else `false_child`;
//! the leaf reached adds its weights to the targets. `y[n, t] = base[t] + agg(sum)`,
//! where `agg` divides by the tree count for `AVERAGE`.
//!
//! Integer form (quantized IR): `x` holds quantized features, thresholds and leaf
//! weights are integers (exactly representable in the f64 fields), aggregation is a
//! plain sum and the output range is the sum over trees of each tree's leaf range.

use super::{expect_arity, OpClass, OpSpec, Operand};
use crate::tensor::Tensor;
use crate::types::{Quant, Shape, TensorType};
use ndarray::{ArrayD, IxDyn};
use serde::{Deserialize, Serialize};
use std::fmt;

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

/// What is applied to the aggregated scores.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum PostTransform {
    /// Nothing (regression).
    None,
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
    /// For the integer form: what the integer outputs stand for.
    pub quant: Option<Quant>,
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
        let shape = Shape(vec![n, self.n_targets]);
        if x.is_float() {
            return Ok(TensorType::f32(shape));
        }
        if self.aggregate != Aggregate::Sum {
            return Err("integer tree ensembles aggregate by sum".into());
        }
        let (mut lo, mut hi) = (i64::MAX, i64::MIN);
        for t in 0..self.n_targets {
            let (mut l, mut h) = (self.base_values[t], self.base_values[t]);
            for tree in &self.trees {
                let leaf_values = tree.nodes.iter().filter_map(|node| match node {
                    TreeNode::Leaf { weights } => Some(weights.iter().filter(|w| w.0 == t).map(|w| w.1).sum::<f64>()),
                    TreeNode::Branch { .. } => None,
                });
                l += leaf_values.clone().fold(f64::INFINITY, f64::min);
                h += leaf_values.fold(f64::NEG_INFINITY, f64::max);
            }
            lo = lo.min(l as i64);
            hi = hi.max(h as i64);
        }
        Ok(TensorType::int(shape, lo, hi, self.quant.clone()))
    }
    fn eval(&self, inputs: &[&Tensor]) -> Tensor {
        let rows = inputs[0].shape().0[0];
        let shape = IxDyn(&[rows, self.n_targets]);
        match inputs[0] {
            Tensor::F32(x) => {
                let scale = match self.aggregate {
                    Aggregate::Sum => 1.0,
                    Aggregate::Average => 1.0 / self.trees.len() as f64,
                };
                let y = self.sums(rows, |n, f| x[[n, f]] as f64);
                let y = y.iter().enumerate().map(|(i, s)| (s * scale + self.base_values[i % self.n_targets]) as f32);
                Tensor::F32(ArrayD::from_shape_vec(shape, y.collect()).expect("shape"))
            }
            Tensor::I64(x) => {
                let y = self.sums(rows, |n, f| x[[n, f]] as f64);
                let y = y.iter().enumerate().map(|(i, s)| (s + self.base_values[i % self.n_targets]) as i64);
                Tensor::I64(ArrayD::from_shape_vec(shape, y.collect()).expect("shape"))
            }
        }
    }
    fn write_attrs(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nodes: usize = self.trees.iter().map(|t| t.nodes.len()).sum();
        let leaves = nodes - self.branches().count();
        // Depth recursion needs a well-formed tree; unverified graphs print 0.
        let depth = if self.check().is_ok() { self.trees.iter().map(tree_depth).max().unwrap_or(0) } else { 0 };
        write!(
            f,
            "trees={}, nodes={nodes}, leaves={leaves}, depth={depth}, targets={}, aggregate={:?}",
            self.trees.len(),
            self.n_targets,
            self.aggregate
        )?;
        if let Some(q) = &self.quant {
            write!(f, ", out={q}")?;
        }
        Ok(())
    }
}

fn tree_depth(tree: &Tree) -> usize {
    fn depth(tree: &Tree, i: usize) -> usize {
        match &tree.nodes[i] {
            TreeNode::Branch { true_child, false_child, .. } => {
                1 + depth(tree, *true_child as usize).max(depth(tree, *false_child as usize))
            }
            TreeNode::Leaf { .. } => 0,
        }
    }
    depth(tree, 0)
}
