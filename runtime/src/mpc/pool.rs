//! Pooling on shares: max pooling as a tournament whose every level is one batched
//! `max` over all windows of all samples; average pooling as local window sums
//! times a public fixed-point reciprocal, then one truncation.

use super::party::Party;
use super::piecewise::encode;
use super::relu::max;
use super::share::Shares;
use super::trunc::trunc;
use super::MpcError;
use secc_ir::lowered::mpc::PoolTaps;

/// Max over each window, for `batch` samples.
pub fn max_pool(p: &mut Party, x: &Shares, taps: &PoolTaps, batch: usize) -> Result<Shares, MpcError> {
    // The candidates of every output element of every sample, as indices into `x`.
    let alive: Vec<Vec<usize>> = (0..batch)
        .flat_map(|s| taps.taps.iter().map(move |t| t.iter().map(|i| s * taps.input_len + i).collect()))
        .collect();
    reduce_pairwise(p, x.clone(), alive, max)
}

/// Reduces each group of elements of `values` (indices in `groups`, none empty) to one
/// by `op`, pairing the survivors of all groups level by level, so a level of every
/// group costs one call of `op` ([`secc_ir::lowered::mpc::PoolTaps::tournament_pairs`]).
pub fn reduce_pairwise(
    p: &mut Party,
    mut values: Shares,
    mut groups: Vec<Vec<usize>>,
    op: impl Fn(&mut Party, &Shares, &Shares) -> Result<Shares, MpcError>,
) -> Result<Shares, MpcError> {
    while groups.iter().any(|c| c.len() > 1) {
        let (mut left, mut right) = (Vec::new(), Vec::new());
        for c in &groups {
            for pair in c.chunks_exact(2) {
                left.push(pair[0]);
                right.push(pair[1]);
            }
        }
        let winners = op(p, &values.gather(&left), &values.gather(&right))?;
        // Winners go after the current values; each group keeps its winners in order,
        // then its odd one out.
        let base = values.len();
        values = Shares::concat(&[&values, &winners]);
        let mut k = base;
        for c in &mut groups {
            let mut next: Vec<usize> = (0..c.len() / 2).map(|i| k + i).collect();
            k += c.len() / 2;
            if c.len() % 2 == 1 {
                next.push(*c.last().expect("odd"));
            }
            *c = next;
        }
    }
    let firsts: Vec<usize> = groups.iter().map(|c| c[0]).collect();
    Ok(values.gather(&firsts))
}

/// Data movement, local: each sample's output element `j` is element `index[j]` of
/// the sample's elements of `xs` laid end to end, or constant `−1 − index[j]` of `w`.
pub fn gather(xs: &[Shares], w: Option<&Shares>, index: &[i64], batch: usize) -> Shares {
    let lens: Vec<usize> = xs.iter().map(|x| x.len() / batch).collect();
    // Per sample: the operands' slices of that sample, then the constants.
    let pick = |slot: fn(&Shares) -> &Vec<u64>| {
        let mut out = Vec::with_capacity(batch * index.len());
        for b in 0..batch {
            let mut flat: Vec<u64> =
                xs.iter().zip(&lens).flat_map(|(x, &n)| slot(x)[b * n..(b + 1) * n].iter().copied()).collect();
            let base = flat.len();
            flat.extend(w.map_or(&[][..], |w| &slot(w)[..]));
            out.extend(index.iter().map(|&i| if i >= 0 { flat[i as usize] } else { flat[base + (-1 - i) as usize] }));
        }
        out
    };
    Shares { s0: pick(|s| &s.s0), s1: pick(|s| &s.s1) }
}

pub fn avg_pool(
    p: &mut Party,
    x: &Shares,
    taps: &PoolTaps,
    divisors: &[usize],
    frac_bits: u32,
    batch: usize,
) -> Result<Shares, MpcError> {
    let sums = x.map(|s| {
        (0..batch)
            .flat_map(|b| {
                taps.taps.iter().map(move |t| t.iter().fold(0u64, |a, &i| a.wrapping_add(s[b * taps.input_len + i])))
            })
            .collect()
    });
    let recip: Vec<u64> = divisors.iter().map(|&d| encode(1.0 / d as f64, frac_bits)).collect();
    trunc(p, &sums.mul_public(&recip), frac_bits)
}
