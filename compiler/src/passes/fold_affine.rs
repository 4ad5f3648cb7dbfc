//! `fold_affine`: `linear → add c / sub c / mul c / div c` with a constant `c` that is
//! uniform within each output channel becomes one linear op with adjusted weights and
//! bias (Gemm's `C`, MatMul + Add bias, BatchNormalization after Conv). Only when the
//! linear op's result has no other user.
//!
//! Forward too: such ops with a constant per input feature (its last axis) that feed
//! only a matmul fold into its rows and bias (`W' = diag(s)·W`, `b' = b + tᵀ·W` for
//! `x·s + t`): a normalisation of the model's input, a BatchNormalization after a
//! ReLU. Otherwise the quantizer would make them a table per feature, read at
//! `table_bits`. Not into a convolution, whose zero padding the shift would move.

use super::Rebuild;
use crate::CompileError;
use ndarray::{ArrayD, Axis, IxDyn};
use secc_ir::ops::{BinaryKind, QuantizeRule};
use secc_ir::{Graph, Op, Tensor, ValueId};

/// Absorbs per-channel affine constants into the preceding conv / matmul.
pub fn fold_affine(graph: &Graph) -> Result<Graph, CompileError> {
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
        let mut x = node.inputs[0];
        if matches!(node.op, Op::MatMul(_)) && w_axis == 1 {
            if let Some((x0, s, t)) = feature_affine(graph, &users, &absorbed_into, x, w.shape()[0]) {
                for (n, col) in w.axis_iter(Axis(1)).enumerate() {
                    b[n] += col.iter().zip(&t).map(|(w, t)| w * t).sum::<f32>();
                }
                for (k, mut row) in w.axis_iter_mut(Axis(0)).enumerate() {
                    row.mapv_inplace(|v| v * s[k]);
                }
                (x, changed) = (x0, true);
            }
        }
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

/// The per-feature affine map `x0 ⊙ s + t` that the chain of single-user affine ops
/// ending at `v` (a matmul's input with `k` features) applies to the value `x0` it
/// starts from, when there is one.
fn feature_affine(
    graph: &Graph,
    users: &[Vec<ValueId>],
    absorbed_into: &[Option<ValueId>],
    v: ValueId,
    k: usize,
) -> Option<(ValueId, Vec<f32>, Vec<f32>)> {
    let mut steps = Vec::new();
    let mut cur = v;
    loop {
        let node = graph.node(cur);
        let (Op::Binary(op), [a, b], 1, None) =
            (&node.op, &node.inputs[..], users[cur.index()].len(), absorbed_into[cur.index()])
        else {
            break;
        };
        let (x, c, x_first) = match (graph.const_value(*a), graph.const_value(*b)) {
            (None, Some(c)) => (*a, c, true),
            (Some(c), None) => (*b, c, false),
            _ => break,
        };
        let affine = matches!(op.kind, BinaryKind::Add | BinaryKind::Sub | BinaryKind::Mul)
            || (op.kind == BinaryKind::Div && x_first);
        let Some(c) = c.as_f32().and_then(|c| per_feature(c, k)) else { break };
        if !affine || graph.ty(x).shape != node.ty.shape {
            break;
        }
        steps.push((op.kind, x_first, c));
        cur = x;
    }
    if steps.is_empty() {
        return None;
    }
    let (mut s, mut t) = (vec![1f32; k], vec![0f32; k]);
    for (kind, x_first, c) in steps.into_iter().rev() {
        for ((s, t), c) in s.iter_mut().zip(&mut t).zip(c) {
            match (kind, x_first) {
                (BinaryKind::Add, _) => *t += c,
                (BinaryKind::Sub, true) => *t -= c,
                (BinaryKind::Sub, false) => (*s, *t) = (-*s, c - *t),
                (BinaryKind::Mul, _) => (*s, *t) = (*s * c, *t * c),
                (BinaryKind::Div, _) => (*s, *t) = (*s / c, *t / c),
                _ => unreachable!("only affine steps are collected"),
            }
        }
    }
    Some((cur, s, t))
}

/// `c` as one value per feature of a last axis of `k`, when it varies along that axis
/// only.
fn per_feature(c: &ArrayD<f32>, k: usize) -> Option<Vec<f32>> {
    let (last, rest) = c.shape().split_last().map_or((1, &[][..]), |(l, r)| (*l, r));
    if rest.iter().any(|&d| d != 1) || (last != 1 && last != k) {
        return None;
    }
    let flat: Vec<f32> = c.iter().copied().collect();
    Some((0..k).map(|i| flat[if last == 1 { 0 } else { i }]).collect())
}
