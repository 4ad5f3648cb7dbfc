//! ONNX-ML operators (domain `ai.onnx.ml`), registered in tract's ONNX op table
//! ([`register`]) so they load with the rest of the graph and compose with any op
//! before or after them (a `Scaler` before an ensemble, an `Identity` or a `Softmax`
//! after one).
//!
//! Each builder reads the node's attributes and wires tract ops that [`super::translate`]
//! maps one-to-one onto IR ops: a tree ensemble or a `Normalizer` becomes one [`IrOp`]
//! node carrying secc's own op (`tree_ensemble`, `normalize`, translated as is; its
//! type is the op's own type rule), a linear model an `EinSum` and an `Add` (`matmul`
//! + `add`, which `fold_affine` merges), a `Scaler` a `Sub` and a `Mul`. The
//! `post_transform` is wired as the ops it names after the scores (`sigmoid`,
//! `softmax`), so the IR states exactly what the model computes and each backend
//! decides where it runs (a final one runs on the receiving side). A classifier's
//! label output is wired as an argmax for tract's analysis only: the output selection
//! ([`super::outputs`]) never computes it.
//!
//! Why secc's own builders rather than tract's: tract parses no `TreeEnsembleRegressor`
//! or `Scaler`, its tree ensemble is its own data structure (secc's must reach the IR
//! as is, with its checks), and its linear and tree classifiers do not return
//! onnxruntime's scores for binary classifiers (see [`binary_scores`]: tract writes
//! `[−s, s]` where onnxruntime writes `[1 − s, s]`) and wire a `Concat` that the IR
//! does not need: a binary classifier's two columns are one linear map of its score,
//! folded into the model's own weights or leaves here. Both linear models share one
//! builder so they cannot drift apart.
//!
//! Refused by name: `post_transform` PROBIT and SOFTMAX_ZERO, aggregates MIN and MAX,
//! and two-label tree classifiers whose leaves write both columns (onnxruntime's
//! result then depends on which columns each sample's leaves wrote).

use secc_ir::ops::{Aggregate, BranchMode, Norm, Normalize, Tree, TreeEnsemble, TreeNode};
use secc_ir::OpSpec;
use std::collections::{BTreeMap, HashMap};
use tract_onnx::model::{OnnxOpRegister, ParsingContext};
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_core::ops::change_axes::wire_with_rank_broadcast;
use tract_onnx::tract_core::ops::einsum::EinSum;
use tract_onnx::tract_core::ops::nn::{Reduce, Reducer, Softmax};
use tract_onnx::tract_hir::internal::*;

/// Adds secc's ONNX-ML builders to tract's op table.
pub(super) fn register(reg: &mut OnnxOpRegister) {
    reg.insert("LinearClassifier", linear_classifier);
    reg.insert("LinearRegressor", linear_regressor);
    reg.insert("Normalizer", normalizer);
    reg.insert("Scaler", scaler);
    reg.insert("TreeEnsembleClassifier", tree_classifier);
    reg.insert("TreeEnsembleRegressor", tree_regressor);
}

type Built = TractResult<(Box<dyn InferenceOp>, Vec<String>)>;

/// What follows the raw scores: ONNX-ML's `post_transform`, those secc computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Post {
    None,
    Logistic,
    Softmax,
}

fn post_transform(node: &NodeProto) -> TractResult<Post> {
    match node.get_attr_opt::<&str>("post_transform")?.unwrap_or("NONE") {
        "NONE" => Ok(Post::None),
        "LOGISTIC" => Ok(Post::Logistic),
        "SOFTMAX" => Ok(Post::Softmax),
        other => bail!("post_transform {other} is not supported (NONE, LOGISTIC, SOFTMAX)"),
    }
}

/// The scores of a two-label classifier that computes one score `s` per sample, as
/// onnxruntime writes them: `[σ(−s), σ(s)]` under LOGISTIC (it computes `1 − σ(s)`,
/// the same within an ulp), otherwise `[1 − s, s]` when every weight is non-negative
/// (a forest's probability; a linear classifier always) and `[−s, s]` when some is
/// negative (boosted margins); SOFTMAX is not applied. Returned as the `c` of the
/// columns `(c − s, s)` before the transform, and the transform kept.
fn binary_scores(post: Post, non_negative: bool) -> (f64, Post) {
    match post {
        Post::Logistic => (0.0, Post::Logistic),
        _ if non_negative => (1.0, Post::None),
        _ => (0.0, Post::None),
    }
}

/// `f32` inputs of rank 2: ONNX-ML also takes integers and a single row `[C]`.
fn wire_input(prefix: &str, model: &mut TypedModel, x: OutletId) -> TractResult<OutletId> {
    let mut x = x;
    if model.outlet_fact(x)?.rank() == 1 {
        x = model.wire_node(format!("{prefix}.add_batch_axis"), AxisOp::Add(0), &[x])?[0];
    }
    to_f32(prefix, model, x)
}

/// `x` as f32: ONNX-ML ops also take integers.
fn to_f32(prefix: &str, model: &mut TypedModel, x: OutletId) -> TractResult<OutletId> {
    if model.outlet_fact(x)?.datum_type == f32::datum_type() {
        return Ok(x);
    }
    Ok(model.wire_node(format!("{prefix}.to_f32"), tract_core::ops::cast::cast(f32::datum_type()), &[x])?[0])
}

/// One input, one f32 output of its shape (`Scaler`, `Normalizer`).
fn same_shape_rules<'r, 'p: 'r>(
    s: &mut Solver<'r>,
    inputs: &'p [TensorProxy],
    outputs: &'p [TensorProxy],
) -> InferenceResult {
    check_input_arity(inputs, 1)?;
    check_output_arity(outputs, 1)?;
    s.equals(&outputs[0].datum_type, DatumType::F32)?;
    s.equals(&inputs[0].shape, &outputs[0].shape)
}

/// Wires the post transform and, for a classifier, the label (the scores' argmax,
/// for tract's analysis only: secc never computes labels, the receiver does).
fn wire_outputs(
    prefix: &str,
    model: &mut TypedModel,
    scores: OutletId,
    post: Post,
    classifier: bool,
) -> TractResult<TVec<OutletId>> {
    let scores = match post {
        Post::None => scores,
        Post::Logistic => model.wire_node(format!("{prefix}.logistic"), tract_core::ops::nn::sigmoid(), &[scores])?[0],
        Post::Softmax => {
            let softmax = Softmax { axes: tvec!(1), ..Softmax::default() };
            model.wire_node(format!("{prefix}.softmax"), softmax, &[scores])?[0]
        }
    };
    if !classifier {
        return Ok(tvec!(scores));
    }
    let argmax = Reduce::new(tvec!(1), Reducer::ArgMax(false));
    let winner = model.wire_node(format!("{prefix}.argmax"), argmax, &[scores])?;
    let label = model.wire_node(format!("{prefix}.label"), AxisOp::Rm(1), &winner)?[0];
    Ok(tvec!(label, scores))
}

fn scores_rules<'r, 'p: 'r>(
    s: &mut Solver<'r>,
    inputs: &'p [TensorProxy],
    outputs: &'p [TensorProxy],
    classifier: bool,
    columns: usize,
) -> InferenceResult {
    check_input_arity(inputs, 1)?;
    check_output_arity(outputs, 1 + classifier as usize)?;
    let scores = &outputs[classifier as usize];
    s.equals(&scores.datum_type, DatumType::F32)?;
    s.equals(&scores.rank, 2)?;
    s.equals(&scores.shape[1], columns.to_dim())?;
    s.given(&inputs[0].rank, move |s, rank| {
        if rank == 2 {
            s.equals(&outputs[classifier as usize].shape[0], &inputs[0].shape[0])?;
        }
        Ok(())
    })?;
    if classifier {
        s.equals(&outputs[0].datum_type, DatumType::I64)?;
        s.equals(&outputs[0].rank, 1)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Tree ensembles
// ---------------------------------------------------------------------------

/// An IR op in tract's typed graph (a tree ensemble, a normalizer): secc's own op,
/// translated as is. Its type is the op's own type rule, its value the op's `eval`.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct IrOp(pub secc_ir::Op);

// tract compares ops to merge equal nodes: a NaN threshold only keeps two copies apart.
impl Eq for IrOp {}

impl Op for IrOp {
    fn name(&self) -> StaticName {
        self.0.mnemonic().into()
    }
    op_as_typed_op!();
}

impl EvalOp for IrOp {
    op_out_of_plan!();
    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let x = args_1!(inputs).cast_to::<f32>()?.to_plain_array_view::<f32>()?.to_owned();
        let y = self.0.eval(&[&secc_ir::Tensor::F32(x)]);
        let y = y.as_f32().expect("a float op computes floats").clone();
        Ok(tvec!(tract_onnx::prelude::Tensor::from(y).into_tvalue()))
    }
}

impl TypedOp for IrOp {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let shape = inputs[0]
            .shape
            .as_concrete()
            .ok_or_else(|| format_err!("{}: input shape is not static", self.0.mnemonic()))?;
        let ty = secc_ir::TensorType::f32(secc_ir::Shape(shape.to_vec()));
        let out = self.0.infer(&[secc_ir::ops::Operand { ty: &ty, value: None }]).map_err(|m| format_err!("{m}"))?;
        Ok(tvec!(f32::fact(&out.shape.0)))
    }
    as_op!();
}

/// `TreeEnsembleRegressor` / `TreeEnsembleClassifier`: the ensemble and its post transform.
#[derive(Clone, Debug)]
struct TreeModel {
    trees: TreeEnsemble,
    post: Post,
    classifier: bool,
}

impl Expansion for TreeModel {
    fn name(&self) -> StaticName {
        if self.classifier { "TreeEnsembleClassifier" } else { "TreeEnsembleRegressor" }.into()
    }
    fn nboutputs(&self) -> TractResult<usize> {
        Ok(1 + self.classifier as usize)
    }
    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        scores_rules(s, inputs, outputs, self.classifier, self.trees.n_targets)
    }
    fn wire(&self, prefix: &str, model: &mut TypedModel, inputs: &[OutletId]) -> TractResult<TVec<OutletId>> {
        let x = wire_input(prefix, model, inputs[0])?;
        let scores = model.wire_node(prefix, IrOp(secc_ir::Op::TreeEnsemble(self.trees.clone())), &[x])?[0];
        wire_outputs(prefix, model, scores, self.post, self.classifier)
    }
}

fn tree_regressor(_ctx: &ParsingContext, node: &NodeProto) -> Built {
    let e = read_ensemble(node, "target").map_err(|m| format_err!("{m}"))?;
    let n = node.get_attr_opt::<i64>("n_targets")?.unwrap_or(1);
    node.expect(n >= 1, "n_targets is at least 1")?;
    let trees = e.into_ensemble(n as usize, None)?;
    Ok((expand(TreeModel { trees, post: post_transform(node)?, classifier: false }), vec![]))
}

fn class_count(node: &NodeProto) -> TractResult<usize> {
    let ints = node.get_attr_opt_slice::<i64>("classlabels_int64s")?.map(<[i64]>::len);
    let ints = ints.or(node.get_attr_opt_slice::<i64>("classlabels_ints")?.map(<[i64]>::len));
    let strings = node.get_attr_opt_vec::<String>("classlabels_strings")?.map(|s| s.len());
    ints.or(strings)
        .filter(|&n| n > 0)
        .ok_or_else(|| format_err!("missing attribute classlabels_int64s (or classlabels_strings)"))
}

fn tree_classifier(_ctx: &ParsingContext, node: &NodeProto) -> Built {
    let e = read_ensemble(node, "class").map_err(|m| format_err!("{m}"))?;
    let classes = class_count(node)?;
    let mut post = post_transform(node)?;
    let one_column = classes == 2 && e.leaves.iter().all(|&(_, _, t, _)| t == 0);
    let trees = if one_column {
        // One score per sample: onnxruntime's two columns are a linear map of it.
        let base = match e.base_values.as_deref() {
            None | Some([]) => 0.0,
            Some(&[b]) => b,
            Some(_) => bail!("two base values for one score column (onnxruntime then reports the second as is)"),
        };
        let non_negative = e.leaves.iter().all(|l| l.3 >= 0.0);
        let (c, kept) = binary_scores(post, non_negative);
        post = kept;
        let leaves = e.leaves.iter().flat_map(|&(t, n, _, w)| [(t, n, 0, -w), (t, n, 1, w)]).collect();
        let base = vec![c - base, base];
        TreeData { leaves, base_values: Some(base), ..e }.into_ensemble(2, Some(2))?
    } else {
        if classes == 2 {
            bail!(
                "a two-label classifier whose leaves write both score columns is not supported \
                 (onnxruntime's result then depends on which columns each sample's leaves wrote)"
            );
        }
        e.into_ensemble(classes, None)?
    };
    Ok((expand(TreeModel { trees, post, classifier: true }), vec![]))
}

/// The attributes of either ensemble, before the targets are fixed.
struct TreeData {
    /// Each tree's id and its (node id, node) pairs, root first.
    trees: Vec<(i64, Vec<(i64, TreeNode)>)>,
    /// (tree, node, target, weight) of each leaf weight.
    leaves: Vec<(i64, i64, usize, f64)>,
    base_values: Option<Vec<f64>>,
    aggregate: Aggregate,
}

impl TreeData {
    /// The ensemble with `n_targets` targets (`base_len`: the base values it must have,
    /// when the file's do not count).
    fn into_ensemble(self, n_targets: usize, base_len: Option<usize>) -> TractResult<TreeEnsemble> {
        let mut leaf_weights: HashMap<(i64, i64), Vec<(usize, f64)>> = HashMap::new();
        for (i, &(tree, node, target, weight)) in self.leaves.iter().enumerate() {
            if target >= n_targets {
                bail!("leaf weight {i} targets {target}, not below {n_targets} targets");
            }
            leaf_weights.entry((tree, node)).or_default().push((target, weight));
        }
        let mut trees = Vec::with_capacity(self.trees.len());
        for (tree, nodes) in self.trees {
            let nodes = nodes
                .into_iter()
                .map(|(id, n)| match n {
                    TreeNode::Leaf { .. } => {
                        TreeNode::Leaf { weights: leaf_weights.remove(&(tree, id)).unwrap_or_default() }
                    }
                    branch => branch,
                })
                .collect();
            trees.push(Tree { nodes });
        }
        if let Some(((t, n), _)) = leaf_weights.iter().next() {
            bail!("leaf weights name tree {t}, node {n}, which is not a leaf");
        }
        let base_values = match self.base_values {
            None => vec![0.0; n_targets],
            Some(b) if b.is_empty() => vec![0.0; n_targets],
            Some(b) => b,
        };
        let expected = base_len.unwrap_or(n_targets);
        if base_values.len() != expected {
            bail!("{} base values for {expected} targets", base_values.len());
        }
        let ensemble = TreeEnsemble { trees, n_targets, base_values, aggregate: self.aggregate };
        ensemble.check().map_err(|m| format_err!("{m}"))?;
        Ok(ensemble)
    }
}

/// Reads the trees of either ensemble; `leaf` names the leaf attributes' prefix
/// (`target` for regressors, `class` for classifiers).
fn read_ensemble(node: &NodeProto, leaf: &str) -> Result<TreeData, String> {
    let ints = |name: &str| -> Result<Vec<i64>, String> {
        node.get_attr_opt_slice::<i64>(name)
            .map_err(|e| format!("{name}: {e}"))?
            .map(<[i64]>::to_vec)
            .ok_or(format!("missing attribute {name}"))
    };
    let floats = |name: &str| -> Result<Vec<f32>, String> {
        node.get_attr_opt_slice::<f32>(name)
            .map_err(|e| format!("{name}: {e}"))?
            .map(<[f32]>::to_vec)
            .ok_or(format!("missing attribute {name}"))
    };
    let tree_ids = ints("nodes_treeids")?;
    let node_ids = ints("nodes_nodeids")?;
    let features = ints("nodes_featureids")?;
    let values = floats("nodes_values")?;
    let modes: Vec<String> = node.get_attr_vec("nodes_modes").map_err(|e| format!("nodes_modes: {e}"))?;
    let trues = ints("nodes_truenodeids")?;
    let falses = ints("nodes_falsenodeids")?;
    let n = tree_ids.len();
    for (name, len) in [
        ("nodes_nodeids", node_ids.len()),
        ("nodes_featureids", features.len()),
        ("nodes_values", values.len()),
        ("nodes_modes", modes.len()),
        ("nodes_truenodeids", trues.len()),
        ("nodes_falsenodeids", falses.len()),
    ] {
        if len != n {
            return Err(format!("{name} has {len} entries, nodes_treeids has {n}"));
        }
    }
    let t_trees = ints(&format!("{leaf}_treeids"))?;
    let t_nodes = ints(&format!("{leaf}_nodeids"))?;
    let t_ids = ints(&format!("{leaf}_ids"))?;
    let t_weights = floats(&format!("{leaf}_weights"))?;
    if [t_nodes.len(), t_ids.len(), t_weights.len()].iter().any(|&l| l != t_trees.len()) {
        return Err(format!("{leaf}_treeids, {leaf}_nodeids, {leaf}_ids and {leaf}_weights differ in length"));
    }
    let mut leaves = Vec::with_capacity(t_trees.len());
    for i in 0..t_trees.len() {
        let target = usize::try_from(t_ids[i]).map_err(|_| format!("{leaf}_ids[{i}] = {}", t_ids[i]))?;
        leaves.push((t_trees[i], t_nodes[i], target, t_weights[i] as f64));
    }
    let base_values = node
        .get_attr_opt_slice::<f32>("base_values")
        .map_err(|e| e.to_string())?
        .map(|b| b.iter().map(|&v| v as f64).collect());
    let aggregate = match node.get_attr_opt::<&str>("aggregate_function").map_err(|e| e.to_string())?.unwrap_or("SUM") {
        "SUM" => Aggregate::Sum,
        "AVERAGE" => Aggregate::Average,
        other => return Err(format!("aggregate_function {other} is not supported (SUM, AVERAGE)")),
    };

    // Node rows grouped by tree, in tree-id order.
    let mut by_tree: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    (0..n).for_each(|i| by_tree.entry(tree_ids[i]).or_default().push(i));
    let mut trees = Vec::new();
    for (tree, rows) in by_tree {
        let local: HashMap<i64, u32> = rows.iter().enumerate().map(|(j, &r)| (node_ids[r], j as u32)).collect();
        if local.len() != rows.len() {
            return Err(format!("tree {tree} repeats a node id"));
        }
        let child = |id: i64, what: &str, r: usize| {
            local
                .get(&id)
                .copied()
                .ok_or_else(|| format!("tree {tree}, node {}: {what} {id} does not exist", node_ids[r]))
        };
        let mut nodes = Vec::with_capacity(rows.len());
        for &r in &rows {
            let id = node_ids[r];
            let mode = match modes[r].as_str() {
                "LEAF" => {
                    nodes.push((id, TreeNode::Leaf { weights: vec![] }));
                    continue;
                }
                "BRANCH_LEQ" => BranchMode::Leq,
                "BRANCH_LT" => BranchMode::Lt,
                "BRANCH_GTE" => BranchMode::Gte,
                "BRANCH_GT" => BranchMode::Gt,
                "BRANCH_EQ" => BranchMode::Eq,
                "BRANCH_NEQ" => BranchMode::Neq,
                other => return Err(format!("tree {tree}, node {}: unknown mode {other}", node_ids[r])),
            };
            if features[r] < 0 {
                return Err(format!("tree {tree}, node {}: feature id {}", node_ids[r], features[r]));
            }
            let branch = TreeNode::Branch {
                feature: features[r] as usize,
                threshold: values[r] as f64,
                mode,
                true_child: child(trues[r], "true child", r)?,
                false_child: child(falses[r], "false child", r)?,
            };
            nodes.push((id, branch));
        }
        root_first(tree, &mut nodes)?;
        trees.push((tree, nodes));
    }
    Ok(TreeData { trees, leaves, base_values, aggregate })
}

/// Moves the root (the node no other node points to) to index 0.
fn root_first(tree: i64, nodes: &mut [(i64, TreeNode)]) -> Result<(), String> {
    let mut pointed = vec![false; nodes.len()];
    for (_, n) in nodes.iter() {
        if let TreeNode::Branch { true_child, false_child, .. } = n {
            pointed[*true_child as usize] = true;
            pointed[*false_child as usize] = true;
        }
    }
    let roots: Vec<usize> = (0..nodes.len()).filter(|&i| !pointed[i]).collect();
    let &[root] = roots.as_slice() else {
        return Err(format!("tree {tree} has {} roots", roots.len()));
    };
    nodes.swap(0, root);
    let fix = |c: &mut u32| {
        *c = if *c as usize == root {
            0
        } else if *c == 0 {
            root as u32
        } else {
            *c
        };
    };
    for (_, n) in nodes.iter_mut() {
        if let TreeNode::Branch { true_child, false_child, .. } = n {
            fix(true_child);
            fix(false_child);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Linear models, Scaler, Normalizer
// ---------------------------------------------------------------------------

/// `LinearRegressor` / `LinearClassifier`: `x · W + b`, then the post transform.
#[derive(Clone, Debug)]
struct LinearModel {
    /// `[features, columns]`.
    weights: Arc<Tensor>,
    /// `[1, columns]`.
    bias: Arc<Tensor>,
    post: Post,
    classifier: bool,
}

impl Expansion for LinearModel {
    fn name(&self) -> StaticName {
        if self.classifier { "LinearClassifier" } else { "LinearRegressor" }.into()
    }
    fn nboutputs(&self) -> TractResult<usize> {
        Ok(1 + self.classifier as usize)
    }
    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        scores_rules(s, inputs, outputs, self.classifier, self.weights.shape()[1])
    }
    fn wire(&self, prefix: &str, model: &mut TypedModel, inputs: &[OutletId]) -> TractResult<TVec<OutletId>> {
        let x = wire_input(prefix, model, inputs[0])?;
        let w = model.add_const(format!("{prefix}.coefficients"), self.weights.clone())?;
        let axes = AxesMapping::for_numpy_matmul(2, false, false, false)?;
        let y = model.wire_node(format!("{prefix}.matmul"), EinSum::new(axes, f32::datum_type()), &[x, w])?[0];
        let b = model.add_const(format!("{prefix}.intercepts"), self.bias.clone())?;
        let y = model.wire_node(format!("{prefix}.add_bias"), tract_core::ops::math::add(), &[y, b])?[0];
        wire_outputs(prefix, model, y, self.post, self.classifier)
    }
}

/// `coefficients` (`columns` rows of `features`) as `[features, columns]` and the
/// intercepts (zeros when absent) as `[1, columns]`.
fn linear_parts(node: &NodeProto, columns: usize) -> TractResult<(Vec<f32>, Vec<f32>, usize)> {
    node.expect(columns >= 1, "at least one model (intercept)")?;
    let w: Vec<f32> = node.get_attr_vec("coefficients")?;
    node.expect(!w.is_empty() && w.len() % columns == 0, "coefficients: one row of features per model")?;
    let b: Vec<f32> = node.get_attr_opt_vec("intercepts")?.unwrap_or_else(|| vec![0.0; columns]);
    node.expect(b.len() == columns, "one intercept per model")?;
    Ok((w, b, columns))
}

fn linear_model(
    w: &[f32],
    b: &[f32],
    columns: usize,
    post: Post,
    classifier: bool,
) -> TractResult<Box<dyn InferenceOp>> {
    let features = w.len() / columns;
    let weights = tensor1(w).into_shape(&[columns, features])?.permute_axes(&[1, 0])?.into_arc_tensor();
    let bias = tensor1(b).into_shape(&[1, columns])?.into_arc_tensor();
    Ok(expand(LinearModel { weights, bias, post, classifier }))
}

fn linear_regressor(_ctx: &ParsingContext, node: &NodeProto) -> Built {
    let targets = node.get_attr_opt::<i64>("targets")?.unwrap_or(1);
    node.expect(targets >= 1, "targets is at least 1")?;
    let (w, b, columns) = linear_parts(node, targets as usize)?;
    Ok((linear_model(&w, &b, columns, post_transform(node)?, false)?, vec![]))
}

fn linear_classifier(_ctx: &ParsingContext, node: &NodeProto) -> Built {
    let classes = class_count(node)?;
    let models = node.get_attr_opt_vec::<f32>("intercepts")?.map_or(classes, |b| b.len());
    let (w, b, columns) = linear_parts(node, models)?;
    let post = post_transform(node)?;
    if classes == 2 && columns == 1 {
        // One score per sample: the two columns are a linear map of it, whatever the
        // signs of the weights.
        let (c, kept) = binary_scores(post, true);
        let w2: Vec<f32> = w.iter().map(|&v| -v).chain(w.iter().copied()).collect();
        let b2 = [(c - b[0] as f64) as f32, b[0]];
        return Ok((linear_model(&w2, &b2, 2, kept, true)?, vec![]));
    }
    node.expect(columns == classes, "one model per class label (or one for two labels)")?;
    Ok((linear_model(&w, &b, columns, post, true)?, vec![]))
}

/// ONNX-ML `Scaler`: `(x − offset) · scale`, each of length 1 or one per feature.
#[derive(Clone, Debug)]
struct Scaler {
    offset: Arc<Tensor>,
    scale: Arc<Tensor>,
}

impl Expansion for Scaler {
    fn name(&self) -> StaticName {
        "Scaler".into()
    }
    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        same_shape_rules(s, inputs, outputs)
    }
    fn wire(&self, prefix: &str, model: &mut TypedModel, inputs: &[OutletId]) -> TractResult<TVec<OutletId>> {
        let x = to_f32(prefix, model, inputs[0])?;
        let offset = model.add_const(format!("{prefix}.offset"), self.offset.clone())?;
        let scale = model.add_const(format!("{prefix}.scale"), self.scale.clone())?;
        let y = wire_with_rank_broadcast(format!("{prefix}.sub"), model, tract_core::ops::math::sub(), &[x, offset])?;
        wire_with_rank_broadcast(format!("{prefix}.mul"), model, tract_core::ops::math::mul(), &[y[0], scale])
    }
}

fn scaler(_ctx: &ParsingContext, node: &NodeProto) -> Built {
    let offset: Vec<f32> = node.get_attr_opt_vec("offset")?.unwrap_or_else(|| vec![0.0]);
    let scale: Vec<f32> = node.get_attr_opt_vec("scale")?.unwrap_or_else(|| vec![1.0]);
    Ok((expand(Scaler { offset: rctensor1(&offset), scale: rctensor1(&scale) }), vec![]))
}

/// ONNX-ML `Normalizer`: one IR `normalize` over the last axis.
#[derive(Clone, Debug)]
struct Normalizer(Norm);

impl Expansion for Normalizer {
    fn name(&self) -> StaticName {
        "Normalizer".into()
    }
    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        same_shape_rules(s, inputs, outputs)
    }
    fn wire(&self, prefix: &str, model: &mut TypedModel, inputs: &[OutletId]) -> TractResult<TVec<OutletId>> {
        let x = to_f32(prefix, model, inputs[0])?;
        model.wire_node(prefix, IrOp(secc_ir::Op::Normalize(Normalize { norm: self.0 })), &[x])
    }
}

fn normalizer(_ctx: &ParsingContext, node: &NodeProto) -> Built {
    let norm = match node.get_attr_opt::<&str>("norm")?.unwrap_or("MAX") {
        "MAX" => Norm::Max,
        "L1" => Norm::L1,
        "L2" => Norm::L2,
        other => bail!("norm {other} is not one of MAX, L1, L2"),
    };
    Ok((expand(Normalizer(norm)), vec![]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tract_onnx::pb::AttributeProto;

    fn ints(name: &str, v: &[i64]) -> AttributeProto {
        AttributeProto { name: name.into(), r#type: 7, ints: v.to_vec(), ..Default::default() }
    }
    fn floats(name: &str, v: &[f32]) -> AttributeProto {
        AttributeProto { name: name.into(), r#type: 6, floats: v.to_vec(), ..Default::default() }
    }
    fn strings(name: &str, v: &[&str]) -> AttributeProto {
        let strings = v.iter().map(|s| s.as_bytes().to_vec()).collect();
        AttributeProto { name: name.into(), r#type: 8, strings, ..Default::default() }
    }

    /// One stump: x[1] <= 0.5 ? 10 : 20.
    fn stump_attrs() -> Vec<AttributeProto> {
        vec![
            ints("nodes_treeids", &[0, 0, 0]),
            ints("nodes_nodeids", &[0, 1, 2]),
            ints("nodes_featureids", &[1, 0, 0]),
            floats("nodes_values", &[0.5, 0.0, 0.0]),
            strings("nodes_modes", &["BRANCH_LEQ", "LEAF", "LEAF"]),
            ints("nodes_truenodeids", &[1, 0, 0]),
            ints("nodes_falsenodeids", &[2, 0, 0]),
            ints("target_treeids", &[0, 0]),
            ints("target_nodeids", &[1, 2]),
            ints("target_ids", &[0, 0]),
            floats("target_weights", &[10.0, 20.0]),
        ]
    }

    /// The stump with a tweak applied to its attributes, read as a one-target regressor.
    fn stump(tweak: impl Fn(&mut Vec<AttributeProto>)) -> Result<TreeEnsemble, String> {
        let mut attrs = stump_attrs();
        tweak(&mut attrs);
        let node = NodeProto { name: "trees".into(), attribute: attrs, ..Default::default() };
        read_ensemble(&node, "target")?.into_ensemble(1, None).map_err(|e| e.to_string())
    }

    fn set(attrs: &mut [AttributeProto], name: &str, value: AttributeProto) {
        *attrs.iter_mut().find(|a| a.name == name).unwrap() = value;
    }

    #[test]
    fn a_well_formed_stump_evaluates() {
        let e = stump(|_| {}).unwrap();
        let x = secc_ir::Tensor::F32(ndarray::arr2(&[[0.0f32, 0.4], [0.0, 0.6]]).into_dyn());
        assert_eq!(e.eval(&[&x]).to_f64_vec(), vec![10.0, 20.0]);
    }

    #[test]
    fn inconsistent_trees_are_named_errors() {
        let err = |tweak: &dyn Fn(&mut Vec<AttributeProto>)| stump(tweak).unwrap_err();
        assert_eq!(err(&|a| a.retain(|a| a.name != "nodes_values")), "missing attribute nodes_values");
        assert!(err(&|a| set(a, "nodes_truenodeids", ints("nodes_truenodeids", &[7, 0, 0])))
            .contains("tree 0, node 0: true child 7 does not exist"));
        assert!(err(&|a| set(a, "nodes_featureids", ints("nodes_featureids", &[1, 0])))
            .contains("nodes_featureids has 2 entries, nodes_treeids has 3"));
        assert!(err(&|a| set(a, "nodes_modes", strings("nodes_modes", &["BRANCH_FOO", "LEAF", "LEAF"])))
            .contains("unknown mode BRANCH_FOO"));
        assert!(err(&|a| set(a, "target_nodeids", ints("target_nodeids", &[0, 2])))
            .contains("tree 0, node 0, which is not a leaf"));
        assert!(err(&|a| set(a, "nodes_falsenodeids", ints("nodes_falsenodeids", &[1, 0, 0]))).contains("roots"));
        assert!(err(&|a| set(a, "target_ids", ints("target_ids", &[0, 3]))).contains("not below 1 targets"));
    }

    #[test]
    fn one_score_column_becomes_the_two_columns_onnxruntime_writes() {
        // The c of the columns (c − s, s), and the transform kept: probed on onnxruntime 1.32.
        assert_eq!(binary_scores(Post::None, true), (1.0, Post::None));
        assert_eq!(binary_scores(Post::Softmax, true), (1.0, Post::None));
        assert_eq!(binary_scores(Post::None, false), (0.0, Post::None));
        assert_eq!(binary_scores(Post::Softmax, false), (0.0, Post::None));
        assert_eq!(binary_scores(Post::Logistic, true), (0.0, Post::Logistic));
        assert_eq!(binary_scores(Post::Logistic, false), (0.0, Post::Logistic));
    }
}
