//! `fold_affine`: `linear → add c / sub c / mul c / div c` with a constant `c` that is
//! uniform within each output channel becomes one linear op with adjusted weights and
//! bias (Gemm's `C`, MatMul + Add bias, BatchNormalization after Conv). Only when the
//! linear op's result has no other user.
//!
//! The same ops with a constant per feature *before* a matmul or a tree ensemble
//! (a scikit-learn `StandardScaler` or ONNX-ML `Scaler` ahead of the model) fold into
//! the matmul's weights and bias, or into the ensemble's thresholds (`x·c ≤ t` is
//! `x ≤ t/c` for `c > 0`, the comparison reversed for `c < 0`), when nothing else
//! reads them: the ensemble then reads the model input, as its quantization wants,
//! and no backend computes a per-feature scaling (otherwise the quantizer would
//! make them a table per feature, read at `table_bits`). Not into a convolution, whose
//! zero padding the shift would move.

use super::Rebuild;
use crate::CompileError;
use ndarray::{Array1, ArrayD, Axis, IxDyn};
use secc_ir::ops::{BinaryKind, BranchMode, QuantizeRule, TreeEnsemble, TreeNode};
use secc_ir::{Graph, Op, Tensor, ValueId};
use std::collections::HashMap;

/// Absorbs per-channel affine constants into the conv / matmul before them, and
/// per-feature ones into the matmul / tree ensemble after them.
pub fn fold_affine(graph: &Graph) -> Result<Graph, CompileError> {
    fold_outputs(&fold_inputs(graph)?)
}

/// A per-feature step `x ∘ c`, `c` one value per feature.
type Step = (BinaryKind, Vec<f32>);

/// Folds the per-feature affine ops before each matmul and tree ensemble into it.
fn fold_inputs(graph: &Graph) -> Result<Graph, CompileError> {
    let users = graph.users();
    // Each absorbing node's new input and the steps between (nearest first).
    let mut chains: HashMap<usize, (ValueId, Vec<Step>)> = HashMap::new();
    let mut folded = vec![false; graph.nodes.len()];
    for (i, node) in graph.nodes.iter().enumerate() {
        let trees = match &node.op {
            Op::MatMul(_) => false,
            Op::TreeEnsemble(_) => true,
            _ => continue,
        };
        let mut x = node.inputs[0];
        let mut steps = Vec::new();
        loop {
            let p = graph.node(x);
            let shape = &p.ty.shape.0;
            if users[x.index()].len() != 1 || shape.len() != 2 || !p.ty.is_float() {
                break;
            }
            let Some(src) = p.inputs.iter().copied().find(|&v| graph.const_value(v).is_none()) else { break };
            let Some(step) = affine_step(graph, x, src, shape, 1) else { break };
            // A threshold cannot absorb a scaling by 0 (the branch becomes constant).
            if trees && matches!(step.0, BinaryKind::Mul | BinaryKind::Div) && step.1.contains(&0.0) {
                break;
            }
            steps.push(step);
            folded[x.index()] = true;
            x = src;
        }
        if !steps.is_empty() {
            chains.insert(i, (x, steps));
        }
    }
    let mut r = Rebuild::new(graph);
    for (i, node) in graph.nodes.iter().enumerate() {
        if folded[i] {
            continue;
        }
        let Some((x, steps)) = chains.get(&i) else {
            let inputs = node.inputs.iter().map(|&v| r.get(v)).collect();
            r.map[i] = Some(r.new.push(node.op.clone(), inputs, node.name.clone())?);
            continue;
        };
        let x = r.get(*x);
        r.map[i] = Some(match &node.op {
            Op::TreeEnsemble(e) => {
                let e = steps.iter().fold(e.clone(), |e, step| thresholds_before(e, step));
                r.new.push(Op::TreeEnsemble(e), vec![x], node.name.clone())?
            }
            op => {
                let w =
                    graph.const_value(node.inputs[1]).and_then(Tensor::as_f32).expect("matmul weights are constant");
                let columns = w.shape()[1];
                let b = node.inputs.get(2).and_then(|&v| graph.const_value(v)).and_then(Tensor::as_f32);
                let b = b.map_or(Array1::zeros(columns), |b| b.iter().copied().collect());
                let w = w.clone().into_dimensionality().expect("matmul weights are [K, N]");
                let (w, b) = steps.iter().fold((w, b), |(w, b), step| weights_before(w, b, step));
                let w = r.new.push_const(Tensor::F32(w.into_dyn()), None, graph.node(node.inputs[1]).name.clone());
                let b = r.new.push_const(Tensor::F32(b.into_dyn()), None, format!("{}.bias", node.name));
                r.new.push(op.clone(), vec![x, w, b], node.name.clone())?
            }
        });
    }
    Ok(r.finish(graph))
}

/// `(x ∘ c) · W + b` as `x · W' + b'`.
fn weights_before(
    mut w: ndarray::Array2<f32>,
    mut b: Array1<f32>,
    (kind, c): &Step,
) -> (ndarray::Array2<f32>, Array1<f32>) {
    let shift = |b: &mut Array1<f32>, sign: f64| {
        for (m, b) in b.iter_mut().enumerate() {
            let s: f64 = c.iter().enumerate().map(|(k, &c)| c as f64 * w[[k, m]] as f64).sum();
            *b = (*b as f64 + sign * s) as f32;
        }
    };
    match kind {
        BinaryKind::Add => shift(&mut b, 1.0),
        BinaryKind::Sub => shift(&mut b, -1.0),
        BinaryKind::Mul => w.axis_iter_mut(Axis(0)).zip(c).for_each(|(mut row, &c)| row.mapv_inplace(|v| v * c)),
        BinaryKind::Div => w.axis_iter_mut(Axis(0)).zip(c).for_each(|(mut row, &c)| row.mapv_inplace(|v| v / c)),
        _ => unreachable!("affine_step returns affine kinds"),
    }
    (w, b)
}

/// The ensemble reading `x` instead of `x ∘ c`: each threshold moved, and the
/// comparison reversed where `c < 0` scales it.
fn thresholds_before(mut e: TreeEnsemble, (kind, c): &Step) -> TreeEnsemble {
    for node in e.trees.iter_mut().flat_map(|t| t.nodes.iter_mut()) {
        let TreeNode::Branch { feature, threshold, mode, .. } = node else { continue };
        let c = c[*feature] as f64;
        *threshold = match kind {
            BinaryKind::Add => *threshold - c,
            BinaryKind::Sub => *threshold + c,
            BinaryKind::Mul => *threshold / c,
            BinaryKind::Div => *threshold * c,
            _ => unreachable!("affine_step returns affine kinds"),
        };
        if matches!(kind, BinaryKind::Mul | BinaryKind::Div) && c < 0.0 {
            *mode = match *mode {
                BranchMode::Leq => BranchMode::Gte,
                BranchMode::Lt => BranchMode::Gt,
                BranchMode::Gte => BranchMode::Leq,
                BranchMode::Gt => BranchMode::Lt,
                m @ (BranchMode::Eq | BranchMode::Neq) => m,
            };
        }
    }
    e
}

/// Absorbs per-channel affine constants into the preceding conv / matmul.
fn fold_outputs(graph: &Graph) -> Result<Graph, CompileError> {
    let users = graph.users();
    let mut r = Rebuild::new(graph);
    let mut absorbed_into: Vec<Option<ValueId>> = vec![None; graph.nodes.len()];
    for (i, node) in graph.nodes.iter().enumerate() {
        if let Some(lin) = absorbed_into[i] {
            r.map[i] = r.map[lin.index()];
            continue;
        }
        let (Some(ch), true) = (node.op.weight_channels(node.ty.shape.rank()), node.ty.is_float()) else {
            let inputs = node.inputs.iter().map(|&v| r.get(v)).collect();
            r.map[i] = Some(r.new.push(node.op.clone(), inputs, node.name.clone())?);
            continue;
        };
        let (axis, w_axis) = (ch.output, ch.weights);
        let w = graph.const_value(node.inputs[1]).and_then(Tensor::as_f32).expect("linear weights are constant");
        let channels = node.ty.shape.0[axis];
        let mut w = w.clone();
        let mut b = match node.inputs.get(2).and_then(|&v| graph.const_value(v)).and_then(Tensor::as_f32) {
            Some(b) => b.iter().copied().collect::<Vec<f32>>(),
            None => vec![0.0; channels],
        };
        let mut changed = false;
        let x = node.inputs[0];
        let mut cur = ValueId(i as u32);
        while let [user] = users[cur.index()].as_slice() {
            let Some((kind, c)) = affine_step(graph, *user, cur, &node.ty.shape.0, axis) else { break };
            match kind {
                BinaryKind::Add => b.iter_mut().zip(&c).for_each(|(b, c)| *b += c),
                BinaryKind::Sub => b.iter_mut().zip(&c).for_each(|(b, c)| *b -= c),
                BinaryKind::Mul | BinaryKind::Div => {
                    let f: Vec<f32> = c.iter().map(|&c| if kind == BinaryKind::Mul { c } else { 1.0 / c }).collect();
                    b.iter_mut().zip(&f).for_each(|(b, f)| *b *= f);
                    for (ch, mut lane) in w.axis_iter_mut(Axis(w_axis)).enumerate() {
                        lane.mapv_inplace(|x| x * f[ch]);
                    }
                }
                _ => unreachable!("affine_step returns affine kinds"),
            }
            absorbed_into[user.index()] = Some(ValueId(i as u32));
            cur = *user;
            changed = true;
        }
        let mut inputs = vec![r.get(x), r.get(node.inputs[1])];
        if changed {
            inputs[1] = r.new.push_const(Tensor::F32(w), None, graph.node(node.inputs[1]).name.clone());
            let bias = ArrayD::from_shape_vec(IxDyn(&[channels]), b).expect("one bias per channel");
            inputs.push(r.new.push_const(Tensor::F32(bias), None, format!("{}.bias", node.name)));
        } else if let Some(&bv) = node.inputs.get(2) {
            inputs.push(r.get(bv));
        }
        r.map[i] = Some(r.new.push(node.op.clone(), inputs, node.name.clone())?);
    }
    Ok(r.finish(graph))
}

/// If `user` applies `x ∘ c` to `x = cur` with a constant `c` uniform per channel,
/// returns the kind and `c` per channel.
fn affine_step(
    graph: &Graph,
    user: ValueId,
    cur: ValueId,
    shape: &[usize],
    axis: usize,
) -> Option<(BinaryKind, Vec<f32>)> {
    let node = graph.node(user);
    let Op::Binary(op) = &node.op else { return None };
    let [a, b] = node.inputs[..] else { return None };
    let (c, cur_first) = if a == cur {
        (b, true)
    } else if b == cur {
        (a, false)
    } else {
        return None;
    };
    let ok = match op.kind {
        BinaryKind::Add | BinaryKind::Mul => true,
        BinaryKind::Sub | BinaryKind::Div => cur_first,
        _ => false,
    };
    let c = graph.const_value(c)?.as_f32()?;
    if !ok || node.ty.shape.0 != shape || c.ndim() > shape.len() {
        return None;
    }
    // Right-align c against the output shape: it may vary along `axis` only.
    let offset = shape.len() - c.ndim();
    let varies_elsewhere = c.shape().iter().enumerate().any(|(i, &d)| d != 1 && i + offset != axis);
    if varies_elsewhere {
        return None;
    }
    let channels = shape[axis];
    let per_channel = (0..channels)
        .map(|ch| {
            let mut ix = vec![0; c.ndim()];
            if axis >= offset && c.shape()[axis - offset] != 1 {
                ix[axis - offset] = ch;
            }
            c[IxDyn(&ix)]
        })
        .collect();
    Some((op.kind, per_channel))
}
