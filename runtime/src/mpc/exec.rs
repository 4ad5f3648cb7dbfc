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
use std::borrow::Cow;

/// Runs `plan` on `batch` samples. The data owner passes the samples (flattened, one
/// after the other); the receiver gets the outputs back (flattened likewise).
pub fn run_plan(p: &mut Party, plan: &Plan, input: Option<&[f32]>, batch: usize) -> Result<Option<Vec<f64>>, MpcError> {
    let mut output = None;
    run_steps(p, plan, Inputs::Owned(input), batch, |p, x| {
        output = reveal(p, plan.roles.receiver, x)?
            .map(|v| plan.finish_outputs(v.into_iter().map(|w| decode_fixed(w as i64, plan.frac_bits)).collect()));
        Ok(())
    })?;
    Ok(output)
}

/// Shares the model owner's weights alone, for a session that runs the plan on many
/// inputs ([`run_plan_on_shares`]): the weights are shared once, not once per run.
pub fn share_weights(p: &mut Party, plan: &Plan) -> Result<Vec<Shares>, MpcError> {
    let w = weight_words(p.id(), plan)?;
    share(p, &weight_secrets(plan, w.as_deref()), false)
}

/// Runs `plan` on `batch` samples whose shares this party already holds (an outside
/// client shared them), with `weights` from [`share_weights`]. Returns this party's
/// shares of each output instead of revealing them: the client alone reconstructs.
pub fn run_plan_on_shares(
    p: &mut Party,
    plan: &Plan,
    input: Shares,
    weights: &[Shares],
    batch: usize,
) -> Result<Vec<Shares>, MpcError> {
    let mut outputs = Vec::new();
    run_steps(p, plan, Inputs::Shared { input, weights }, batch, |_, x| {
        outputs.push(x.clone());
        Ok(())
    })?;
    Ok(outputs)
}

/// Where the input and weight shares of a run come from.
enum Inputs<'a> {
    /// Shared in the plan's first round: the samples at the data owner, the weights
    /// at the model owner.
    Owned(Option<&'a [f32]>),
    /// Already shared.
    Shared { input: Shares, weights: &'a [Shares] },
}

/// The model owner's weights as ring words (`None` at the other parties).
fn weight_words(id: usize, plan: &Plan) -> Result<Option<Vec<Vec<u64>>>, MpcError> {
    if id != plan.roles.model_owner {
        return Ok(None);
    }
    let values = plan
        .weight_values
        .as_ref()
        .ok_or_else(|| MpcError::Setup(format!("party {id} is the model owner but its plan has no weights")))?;
    Ok(Some(values.iter().map(|w| w.iter().map(|&v| v as u64).collect()).collect()))
}

fn weight_secrets<'a>(plan: &Plan, words: Option<&'a [Vec<u64>]>) -> Vec<Secret<'a>> {
    plan.weights
        .iter()
        .enumerate()
        .map(|(i, spec)| Secret { owner: plan.roles.model_owner, words: words.map(|w| &w[i][..]), len: spec.len })
        .collect()
}

/// Runs the steps of `plan`, handing the shares of each revealed value to `output`.
fn run_steps(
    p: &mut Party,
    plan: &Plan,
    mut inputs: Inputs,
    batch: usize,
    mut output: impl FnMut(&mut Party, &Shares) -> Result<(), MpcError>,
) -> Result<(), MpcError> {
    let id = p.id();
    let f = plan.frac_bits;
    let mut regs: Vec<Option<Shares>> = vec![None; plan.regs];
    let mut weights: Cow<[Shares]> = Cow::Borrowed(&[]);
    let get = |regs: &[Option<Shares>], r: usize| regs[r].clone().expect("plans define registers before use");
    for step in &plan.steps {
        let value = match &step.op {
            StepOp::Share { out, len } => match &mut inputs {
                Inputs::Owned(input) => {
                    let x: Option<Vec<u64>> = match input {
                        Some(v) if id == plan.roles.data_owner => {
                            Some(v.iter().map(|&x| encode(x as f64, f)).collect())
                        }
                        _ => None,
                    };
                    let w = weight_words(id, plan)?;
                    let mut secrets =
                        vec![Secret { owner: plan.roles.data_owner, words: x.as_deref(), len: batch * len }];
                    secrets.extend(weight_secrets(plan, w.as_deref()));
                    let mut shares = share(p, &secrets, false)?;
                    weights = Cow::Owned(shares.split_off(1));
                    Some((*out, shares.remove(0)))
                }
                Inputs::Shared { input, weights: w } => {
                    if input.len() != batch * len {
                        return Err(MpcError::Setup(format!(
                            "{} input shares for {batch} samples of {len} values",
                            input.len()
                        )));
                    }
                    weights = Cow::Borrowed(*w);
                    Some((*out, std::mem::take(input)))
                }
            },
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
                output(p, &get(&regs, *x))?;
                None
            }
        };
        if let Some((r, v)) = value {
            regs[r] = Some(v);
        }
    }
    Ok(())
}
