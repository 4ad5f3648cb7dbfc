//! `fold_affine`: `linear → add c / sub c / mul c / div c` with a constant `c` that is
//! uniform within each output channel becomes one linear op with adjusted weights and
//! bias (Gemm's `C`, MatMul + Add bias, BatchNormalization after Conv). Only when the
//! linear op's result has no other user.

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
        let mut cur = ValueId(i as u32);
        let mut changed = false;
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
        let x = r.get(node.inputs[0]);
        let mut inputs = vec![x, r.get(node.inputs[1])];
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
