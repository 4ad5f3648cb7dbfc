//! ONNX-ML `TreeEnsembleRegressor` and `TreeEnsembleClassifier` read straight from the
//! protobuf (tract does not load them). The ensemble must be the whole graph: input →
//! trees → output.
//!
//! A classifier's IR output is its class scores, before `post_transform`: the
//! transforms ONNX allows here (SOFTMAX, LOGISTIC) are monotone per row, so the label
//! is the argmax of the scores, taken in the clear by whoever reads them. The
//! classifier's `label` output, if the graph lists it, is dropped.

use super::input_shape;
use crate::error::node_label;
use crate::CompileError;
use secc_ir::ops::{Aggregate, BranchMode, Input, PostTransform, Tree, TreeEnsemble, TreeNode};
use secc_ir::{Graph, Op, Shape, TensorType};
use std::collections::{BTreeMap, HashMap};
use tract_onnx::pb::{GraphProto, NodeProto};

pub(super) fn import_tree_graph(graph: &GraphProto, name: &str) -> Result<Graph, CompileError> {
    let [node] = graph.node.as_slice() else {
        return Err(CompileError::UnsupportedForm {
            op: "TreeEnsemble".into(),
            node: graph.node.iter().enumerate().map(|(i, n)| node_label(n, i)).collect::<Vec<_>>().join(", "),
            message: "a tree ensemble must be the only node of the graph".into(),
        });
    };
    let malformed = |message: String| CompileError::Malformed { node: node_label(node, 0), message };
    let Some(input) = graph.input.first() else {
        return Err(malformed("the graph needs an input".into()));
    };
    let classifier = node.op_type == "TreeEnsembleClassifier";
    // A classifier writes (label, scores); secc returns the scores.
    let scores = node.output.get(usize::from(classifier));
    if !graph.output.iter().any(|o| Some(&o.name) == scores) {
        return Err(malformed(format!(
            "the graph outputs ({}) do not include the ensemble's {} output",
            graph.output.iter().map(|o| o.name.as_str()).collect::<Vec<_>>().join(", "),
            if classifier { "scores" } else { "" }
        )));
    }
    if node.input.first() != Some(&input.name) {
        return Err(malformed("the ensemble must read the graph input".into()));
    }
    let mut shape = input_shape(input)?;
    if shape.len() == 1 {
        shape.insert(0, 1);
    }
    let ensemble = if classifier { read_classifier(node) } else { read_ensemble(node, "target") }.map_err(malformed)?;
    let mut g = Graph::new(name);
    let x = g.push(Op::Input(Input { index: 0, ty: TensorType::f32(Shape(shape)) }), vec![], input.name.clone())?;
    let y = g.push(Op::TreeEnsemble(ensemble), vec![x], node.name.clone())?;
    g.outputs.push(y);
    Ok(g)
}

/// A classifier: `class_*` leaf attributes, one target per class label.
fn read_classifier(node: &NodeProto) -> Result<TreeEnsemble, String> {
    let ensemble = read_ensemble(node, "class")?;
    let mut used = ensemble.trees.iter().flat_map(|t| &t.nodes).filter_map(|n| match n {
        TreeNode::Leaf { weights } => weights.iter().map(|w| w.0).max(),
        TreeNode::Branch { .. } => None,
    });
    // ONNX scores such a model [-s, s] or [1 - p, p] depending on post_transform.
    if ensemble.n_targets == 2 && used.all(|c| c == 0) {
        return Err("binary classifiers with one score column (class_ids all 0) are not supported yet".into());
    }
    Ok(ensemble)
}

/// The trees of either ensemble; `leaf` names the leaf attributes' prefix (`target`
/// for regressors, `class` for classifiers).
fn read_ensemble(node: &NodeProto, leaf: &str) -> Result<TreeEnsemble, String> {
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
    let n_targets = match leaf {
        "class" => {
            let labels = node.get_attr_opt_slice::<i64>("classlabels_int64s").map_err(|e| e.to_string())?;
            let strings = node.get_attr_opt_vec::<String>("classlabels_strings").map_err(|e| e.to_string())?;
            match labels.map(<[i64]>::len).or(strings.map(|s| s.len())) {
                Some(n) => n as i64,
                None => return Err("missing attribute classlabels_int64s (or classlabels_strings)".into()),
            }
        }
        _ => node.get_attr_opt::<i64>("n_targets").map_err(|e| e.to_string())?.unwrap_or(1),
    };
    if n_targets < 1 {
        return Err(format!("n_targets is {n_targets}"));
    }
    let n_targets = n_targets as usize;
    let base_values = match node.get_attr_opt_slice::<f32>("base_values").map_err(|e| e.to_string())? {
        Some(b) => b.iter().map(|&v| v as f64).collect(),
        None => vec![0.0; n_targets],
    };
    let aggregate = match node.get_attr_opt::<&str>("aggregate_function").map_err(|e| e.to_string())?.unwrap_or("SUM") {
        "SUM" => Aggregate::Sum,
        "AVERAGE" => Aggregate::Average,
        other => return Err(format!("aggregate_function {other} is not supported (SUM, AVERAGE)")),
    };
    let post_transform = match (leaf, node.get_attr_opt::<&str>("post_transform").map_err(|e| e.to_string())?) {
        (_, None | Some("NONE")) => PostTransform::None,
        ("class", Some("SOFTMAX")) => PostTransform::Softmax,
        ("class", Some("LOGISTIC")) => PostTransform::Logistic,
        (_, Some(other)) => {
            return Err(format!(
                "post_transform {other} is not supported ({})",
                if leaf == "class" { "NONE, SOFTMAX, LOGISTIC" } else { "regressors: NONE" }
            ))
        }
    };

    // Leaf weights by (tree, node).
    let mut leaf_weights: HashMap<(i64, i64), Vec<(usize, f64)>> = HashMap::new();
    for i in 0..t_trees.len() {
        if t_ids[i] < 0 || t_ids[i] as usize >= n_targets {
            return Err(format!("{leaf}_ids[{i}] = {} is not below {n_targets} targets", t_ids[i]));
        }
        leaf_weights.entry((t_trees[i], t_nodes[i])).or_default().push((t_ids[i] as usize, t_weights[i] as f64));
    }
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
            let mode = match modes[r].as_str() {
                "LEAF" => {
                    let weights = leaf_weights.remove(&(tree, node_ids[r])).unwrap_or_default();
                    nodes.push(TreeNode::Leaf { weights });
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
            nodes.push(TreeNode::Branch {
                feature: features[r] as usize,
                threshold: values[r] as f64,
                mode,
                true_child: child(trues[r], "true child", r)?,
                false_child: child(falses[r], "false child", r)?,
            });
        }
        // The root is the node no other node points to; put it first.
        let mut pointed = vec![false; nodes.len()];
        for n in &nodes {
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
        for n in &mut nodes {
            if let TreeNode::Branch { true_child, false_child, .. } = n {
                fix(true_child);
                fix(false_child);
            }
        }
        trees.push(Tree { nodes });
    }
    if let Some(((t, n), _)) = leaf_weights.iter().next() {
        return Err(format!("target weights name tree {t}, node {n}, which is not a leaf"));
    }
    let ensemble = TreeEnsemble { trees, n_targets, base_values, aggregate, post_transform };
    ensemble.check()?;
    Ok(ensemble)
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
        AttributeProto {
            name: name.into(),
            r#type: 8,
            strings: v.iter().map(|s| s.as_bytes().to_vec()).collect(),
            ..Default::default()
        }
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

    /// The stump with a tweak applied to its attributes.
    fn stump(tweak: impl Fn(&mut Vec<AttributeProto>)) -> Result<TreeEnsemble, String> {
        let mut attrs = stump_attrs();
        tweak(&mut attrs);
        read_ensemble(&NodeProto { name: "trees".into(), attribute: attrs, ..Default::default() }, "target")
    }

    fn set(attrs: &mut [AttributeProto], name: &str, value: AttributeProto) {
        *attrs.iter_mut().find(|a| a.name == name).unwrap() = value;
    }

    #[test]
    fn a_well_formed_stump_evaluates() {
        use secc_ir::OpSpec;
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
        assert!(err(&|a| set(a, "target_ids", ints("target_ids", &[0, 3]))).contains("is not below 1 targets"));
    }

    /// The stump as a classifier: `class_*` attributes and `labels` class labels.
    fn classifier(labels: &[i64], class_ids: &[i64]) -> Result<TreeEnsemble, String> {
        let mut attrs = stump_attrs();
        for a in &mut attrs {
            a.name = a.name.replace("target_", "class_");
        }
        attrs.retain(|a| a.name != "class_ids");
        attrs.push(ints("class_ids", class_ids));
        if !labels.is_empty() {
            attrs.push(ints("classlabels_int64s", labels));
        }
        read_classifier(&NodeProto { name: "trees".into(), attribute: attrs, ..Default::default() })
    }

    #[test]
    fn classifiers_score_each_class_and_refuse_what_they_cannot() {
        use secc_ir::OpSpec;
        let e = classifier(&[0, 1, 2], &[0, 2]).unwrap();
        let x = secc_ir::Tensor::F32(ndarray::arr2(&[[0.0f32, 0.4], [0.0, 0.6]]).into_dyn());
        assert_eq!(e.eval(&[&x]).to_f64_vec(), vec![10.0, 0.0, 0.0, 0.0, 0.0, 20.0]);
        assert!(classifier(&[], &[0, 1]).unwrap_err().contains("missing attribute classlabels_int64s"));
        assert!(classifier(&[0, 1], &[0, 0]).unwrap_err().contains("one score column"));
        assert!(classifier(&[0, 1], &[0, 2]).unwrap_err().contains("class_ids[1] = 2 is not below 2 targets"));
    }
}
