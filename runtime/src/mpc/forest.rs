//! A tree ensemble on shares ([`ForestPlan`]): one resharing gathers the compared
//! features, one batched MSB decides every comparison of the forest, the leaves' path
//! literals are ANDed on boolean shares level by level (all leaves together), and one
//! bit injection per (leaf, target) turns the path bit into the shared leaf value.
//! What each party learns: nothing but its shares; the plan shows the trees' shapes.

use super::bit::mul_bit;
use super::boolean::{and, msb, not};
use super::linear::matmul;
use super::party::Party;
use super::pool::reduce_pairwise;
use super::share::Shares;
use super::MpcError;
use secc_ir::lowered::mpc::ForestPlan;

/// The ensemble's scores (`targets` per sample, at `2^f`) for `batch` samples of `x`;
/// `weights` are the shared weights the plan's indices point into.
pub fn forest(
    p: &mut Party,
    x: &Shares,
    weights: &[Shares],
    plan: &ForestPlan,
    batch: usize,
) -> Result<Shares, MpcError> {
    let id = p.id();
    let j = plan.comparisons;
    let gathered = matmul(p, x, &weights[plan.select], batch, plan.features, j)?;
    let d = gathered.sub(&weights[plan.bounds].broadcast(batch * j, |e| e % j));
    // c = [x_f < τ] in bit 0; its negation for literals wanting 0.
    let c = msb(p, &d)?;
    let not_c = not(id, &c);
    // Literal bits, then a constant 1 for leaves every sample reaches.
    let mut literals = Vec::new();
    let mut groups = Vec::new();
    let always = batch * plan.paths.iter().map(Vec::len).sum::<usize>();
    for n in 0..batch {
        for path in &plan.paths {
            let start = literals.len();
            literals.extend(path.iter().map(|&(cmp, want)| (n * j + cmp as usize, want)));
            groups.push(if path.is_empty() { vec![always] } else { (start..literals.len()).collect() });
        }
    }
    let pick = |s: &[u64], t: &[u64]| literals.iter().map(|&(e, want)| if want { s[e] } else { t[e] }).collect();
    let one = not(id, &Shares { s0: vec![0], s1: vec![0] });
    let bits = Shares::concat(&[&Shares { s0: pick(&c.s0, &not_c.s0), s1: pick(&c.s1, &not_c.s1) }, &one]);
    let reached = reduce_pairwise(p, bits, groups, and)?;
    // One injection per (sample, leaf, target).
    let leaves = plan.paths.len();
    let e_count = plan.entries.len();
    let index: Vec<usize> =
        (0..batch).flat_map(|n| plan.entries.iter().map(move |&(leaf, _)| n * leaves + leaf as usize)).collect();
    let values = weights[plan.values].broadcast(batch * e_count, |e| e % e_count);
    let contributions = mul_bit(p, &reached.gather(&index), &values)?;
    let t = plan.targets;
    let mut out = weights[plan.base].broadcast(batch * t, |e| e % t);
    for n in 0..batch {
        for (k, &(_, target)) in plan.entries.iter().enumerate() {
            let (o, e) = (n * t + target as usize, n * e_count + k);
            out.s0[o] = out.s0[o].wrapping_add(contributions.s0[e]);
            out.s1[o] = out.s1[o].wrapping_add(contributions.s1[e]);
        }
    }
    Ok(out)
}
