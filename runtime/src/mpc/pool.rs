//! Pooling on shares: max pooling as a tournament whose every level is one batched
//! `max` over all windows of all samples; average pooling as local window sums
//! times a public fixed-point reciprocal, then one truncation.

use super::party::Party;
use super::relu::max;
use super::share::Shares;
use super::trunc::trunc;
use super::MpcError;
use secc_ir::lowered::mpc::PoolTaps;

/// Max over each window, for `batch` samples.
pub fn max_pool(p: &mut Party, x: &Shares, taps: &PoolTaps, batch: usize) -> Result<Shares, MpcError> {
    // The candidates of every output element of every sample, as indices into `x`.
    let mut alive: Vec<Vec<usize>> = (0..batch)
        .flat_map(|s| taps.taps.iter().map(move |t| t.iter().map(|i| s * taps.input_len + i).collect()))
        .collect();
    let mut values = x.clone();
    while alive.iter().any(|c| c.len() > 1) {
        let (mut left, mut right) = (Vec::new(), Vec::new());
        for c in &alive {
            for pair in c.chunks_exact(2) {
                left.push(pair[0]);
                right.push(pair[1]);
            }
        }
        let winners = max(p, &values.gather(&left), &values.gather(&right))?;
        // Winners go after the current values; each window keeps its winners in order,
        // then its odd one out.
        let base = values.len();
        values = Shares::concat(&[&values, &winners]);
        let mut k = base;
        for c in &mut alive {
            let mut next: Vec<usize> = (0..c.len() / 2).map(|i| k + i).collect();
            k += c.len() / 2;
            if c.len() % 2 == 1 {
                next.push(*c.last().expect("odd"));
            }
            *c = next;
        }
    }
    let firsts: Vec<usize> = alive.iter().map(|c| c[0]).collect();
    Ok(values.gather(&firsts))
}

/// Mean over each window (`divisors[e]` taps for output `e`), for `batch` samples.
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
    let recip: Vec<u64> = divisors.iter().map(|&d| ((1u64 << frac_bits) as f64 / d as f64).round() as u64).collect();
    trunc(p, &sums.mul_public(&recip), frac_bits)
}
