//! Runs a plan in one party: the steps in order, every step on the whole batch.

use super::forest::forest;
use super::linear::{conv, matmul, matmul_shares, mul};
use super::party::Party;
use super::piecewise::{encode, piecewise};
use super::pool::{avg_pool, gather, max_pool};
use super::relu::relu;
use super::share::{reveal, share, Secret, Shares};
use super::trunc::trunc;
use super::MpcError;
use secc_ir::lowered::fixed::decode_fixed;
use secc_ir::lowered::mpc::{PairOp, Plan, StepOp};

/// Runs `plan` on `batch` samples. The data owner passes the samples (flattened, one
/// after the other); the receiver gets the outputs back (flattened likewise).
pub fn run_plan(p: &mut Party, plan: &Plan, input: Option<&[f32]>, batch: usize) -> Result<Option<Vec<f64>>, MpcError> {
    let id = p.id();
    let f = plan.frac_bits;
    let mut regs: Vec<Option<Shares>> = vec![None; plan.regs];
    let mut weights: Vec<Shares> = Vec::new();
    let mut output = None;
    let get = |regs: &[Option<Shares>], r: usize| regs[r].clone().expect("plans define registers before use");
    for step in &plan.steps {
        let value = match &step.op {
            StepOp::Share { out, len } => {
                let x: Option<Vec<u64>> = match input {
                    Some(v) if id == plan.roles.data_owner => Some(v.iter().map(|&x| encode(x as f64, f)).collect()),
                    _ => None,
                };
                let w: Option<Vec<Vec<u64>>> = if id == plan.roles.model_owner {
                    let values = plan.weight_values.as_ref().ok_or_else(|| {
                        MpcError::Setup(format!("party {id} is the model owner but its plan has no weights"))
                    })?;
                    Some(values.iter().map(|w| w.iter().map(|&v| v as u64).collect()).collect())
                } else {
                    None
                };
                let mut secrets = vec![Secret { owner: plan.roles.data_owner, words: x.as_deref(), len: batch * len }];
                for (i, spec) in plan.weights.iter().enumerate() {
                    secrets.push(Secret {
                        owner: plan.roles.model_owner,
                        words: w.as_ref().map(|w| &w[i][..]),
                        len: spec.len,
                    });
                }
                let mut shares = share(p, &secrets, false)?;
                weights = shares.split_off(1);
                Some((*out, shares.remove(0)))
            }
            StepOp::MatMul { x, w, b, m, k, n, out } => {
                let y = matmul(p, &get(&regs, *x), &weights[*w], batch * m, *k, *n)?;
                let y = match b {
                    Some(b) => y.zip(&weights[*b].broadcast(y.len(), |e| e % n), u64::wrapping_add),
                    None => y,
                };
                Some((*out, y))
            }
            StepOp::Conv { x, w, b, geometry, out } => {
                let y = conv(p, &get(&regs, *x), &weights[*w], geometry)?;
                let [_, o, oh, ow] = geometry.output;
                let y = match b {
                    Some(b) => y.zip(&weights[*b].broadcast(y.len(), |e| (e / (oh * ow)) % o), u64::wrapping_add),
                    None => y,
                };
                Some((*out, y))
            }
            StepOp::Trunc { x, bits, out, .. } => Some((*out, trunc(p, &get(&regs, *x), *bits)?)),
            StepOp::Relu { x, out, .. } => Some((*out, relu(p, &get(&regs, *x))?)),
            StepOp::MaxPool { x, taps, out } => Some((*out, max_pool(p, &get(&regs, *x), taps, batch)?)),
            StepOp::AvgPool { x, taps, divisors, out } => {
                Some((*out, avg_pool(p, &get(&regs, *x), taps, divisors, f, batch)?))
            }
            StepOp::Gather { xs, w, index, out } => {
                let xs: Vec<Shares> = xs.iter().map(|&x| get(&regs, x)).collect();
                Some((*out, gather(&xs, w.map(|w| &weights[w]), index, batch)))
            }
            StepOp::Piecewise { x, function, out, .. } => Some((*out, piecewise(p, &get(&regs, *x), function, f)?)),
            StepOp::Forest { x, forest: plan, out } => Some((*out, forest(p, &get(&regs, *x), &weights, plan, batch)?)),
            StepOp::Pair { a, b, op, shapes, out } => {
                let len: usize = shapes.out.iter().product();
                let spread = |x: &Shares, shape: &[usize]| {
                    let each: usize = shape.iter().product();
                    x.broadcast(batch * len, |e| e / len * each + shapes.index(shape, e % len))
                };
                let (x, y) = (spread(&get(&regs, *a), &shapes.a), spread(&get(&regs, *b), &shapes.b));
                Some((
                    *out,
                    match op {
                        PairOp::Add => x.add(&y),
                        PairOp::Sub => x.sub(&y),
                        PairOp::Mul => mul(p, &x, &y)?,
                    },
                ))
            }
            StepOp::MatMulShares { a, b, batch: pairs, m, k, n, transpose_b, out } => {
                let (x, y) = (get(&regs, *a), get(&regs, *b));
                Some((*out, matmul_shares(p, &x, &y, batch * pairs, (*m, *k, *n), *transpose_b)?))
            }
            StepOp::Reveal { x, .. } => {
                output = reveal(p, plan.roles.receiver, &get(&regs, *x))?.map(|v| {
                    plan.finish_outputs(v.into_iter().map(|w| decode_fixed(w as i64, f)).collect(), batch)
                });
                None
            }
        };
        if let Some((r, v)) = value {
            regs[r] = Some(v);
        }
    }
    Ok(output)
}
