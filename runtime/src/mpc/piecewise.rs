//! A univariate function as a piecewise polynomial (aby3.md §7): batched comparisons
//! with the public breakpoints give one indicator bit per piece; each piece's
//! polynomial is evaluated on its own normalised variable `t = scale·x + offset`
//! (so powers stay in [−1, 1]) from powers computed level by level; the pieces are
//! selected by bit injection. Out-of-piece garbage is multiplied by an exact 0.

use super::bit::mul_bit;
use super::boolean::{msb, not};
use super::linear::mul;
use super::party::Party;
use super::share::Shares;
use super::trunc::trunc;
use super::MpcError;
use secc_ir::lowered::fixed::encode_fixed;
use secc_ir::lowered::mpc::Piecewise;

/// `round(v · 2^bits)` in the ring.
pub fn encode(v: f64, bits: u32) -> u64 {
    encode_fixed(v, bits) as u64
}

/// `[f(x)]` for the approximation `f`, `x` at scale `2^frac_bits`.
pub fn piecewise(p: &mut Party, x: &Shares, f: &Piecewise, frac_bits: u32) -> Result<Shares, MpcError> {
    let id = p.id();
    let n = x.len();
    let add = |a: u64, b: u64| a.wrapping_add(b);
    // [x ≥ bp_j] for every breakpoint, all in one MSB batch.
    let diffs: Vec<Shares> = f.breakpoints.iter().map(|&bp| x.add_public(id, &[encode(-bp, frac_bits)], add)).collect();
    let below = msb(p, &Shares::concat(&diffs.iter().collect::<Vec<_>>()))?;
    let at_least = |j: usize| not(id, &below.slice(j * n..(j + 1) * n));
    let nb = f.breakpoints.len();
    let mut indicators = vec![below.slice(0..n)];
    for j in 1..nb {
        indicators.push(at_least(j - 1).zip(&at_least(j), |a, b| a ^ b));
    }
    indicators.push(at_least(nb - 1));

    // Normalised variables of the pieces that have one, then their powers.
    let normalised: Vec<usize> =
        (0..f.pieces.len()).filter(|&k| f.pieces[k].scale != 1.0 || f.pieces[k].offset != 0.0).collect();
    let mut powers: Vec<Shares> = Vec::new();
    if !normalised.is_empty() {
        let raw: Vec<Shares> = normalised
            .iter()
            .map(|&k| {
                let pc = &f.pieces[k];
                x.mul_public(&[encode(pc.scale, frac_bits)]).add_public(id, &[encode(pc.offset, 2 * frac_bits)], add)
            })
            .collect();
        powers.push(trunc(p, &Shares::concat(&raw.iter().collect::<Vec<_>>()), frac_bits)?);
        for per in f.power_levels() {
            let have = powers.len();
            let lhs = Shares::concat(&powers[..per].iter().collect::<Vec<_>>());
            let rhs = Shares::concat(&vec![&powers[have - 1]; per]);
            let wide = mul(p, &lhs, &rhs)?;
            let prod = trunc(p, &wide, frac_bits)?;
            let m = powers[0].len();
            powers.extend((0..per).map(|i| prod.slice(i * m..(i + 1) * m)));
        }
    }
    // Each piece's polynomial at scale 2^2f, then one truncation for all.
    let combos: Vec<Shares> = f
        .pieces
        .iter()
        .enumerate()
        .map(|(k, pc)| {
            let c0 = encode(pc.coeffs[0], 2 * frac_bits);
            let mut acc = Shares { s0: vec![0; n], s1: vec![0; n] };
            match normalised.iter().position(|&q| q == k) {
                Some(slot) => {
                    for (j, &c) in pc.coeffs.iter().enumerate().skip(1) {
                        let t_j = powers[j - 1].slice(slot * n..(slot + 1) * n);
                        acc = acc.add(&t_j.mul_public(&[encode(c, frac_bits)]));
                    }
                }
                None => {
                    if let Some(&c1) = pc.coeffs.get(1) {
                        acc = x.mul_public(&[encode(c1, frac_bits)]);
                    }
                }
            }
            acc.add_public(id, &[c0], add)
        })
        .collect();
    let values = trunc(p, &Shares::concat(&combos.iter().collect::<Vec<_>>()), frac_bits)?;
    let selected = mul_bit(p, &Shares::concat(&indicators.iter().collect::<Vec<_>>()), &values)?;
    let mut y = selected.slice(0..n);
    for k in 1..f.pieces.len() {
        y = y.add(&selected.slice(k * n..(k + 1) * n));
    }
    Ok(y)
}
