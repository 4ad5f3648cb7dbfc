//! Probabilistic truncation TruncAPr2 (Guo et al., eprint 2025/200, Alg. 4; SPU's
//! default), as aby3.md §4 specifies it, with roles A = P0, B = P1, helper H = P2.
//!
//! Error bound: for `|x| < 2^62` the result is `⌊x / 2^d⌋` or `⌊x / 2^d⌋ + 1` (one
//! unit in the last place, near-unbiased), with no wrap-around failure, unlike ABY3's
//! local truncation which fails with probability about `|x| / 2^64` per element.

use super::party::Party;
use super::share::Shares;
use super::MpcError;

const TWO62: u64 = 1 << 62;
const TWO63: u64 = 1 << 63;

/// `[x / 2^d]` for `1 ≤ d ≤ 32`: 2 rounds.
pub fn trunc(p: &mut Party, x: &Shares, d: u32) -> Result<Shares, MpcError> {
    assert!((1..=32).contains(&d), "truncation by {d} bits");
    let op = p.begin();
    let n = x.len();
    let lift = |w: u32| (w as u64) << (64 - d);
    // Pair randomness: (ρ, c_A, y_0) from k_0 (A and H), (σ, c_B, y_2) from k_2 (B and H).
    let small = |v: Vec<u64>| v.into_iter().map(|w| w as u32).collect::<Vec<u32>>();
    match p.id() {
        0 => {
            let (rho, c_a, y0) =
                (small(p.prg.words(0, op, 0, n)), small(p.prg.words(0, op, 1, n)), p.prg.words(0, op, 2, n));
            let u: Vec<u64> = x.s0.iter().zip(&x.s1).map(|(a, b)| a.wrapping_add(*b)).collect();
            let m_a: Vec<u32> = u.iter().map(|&u| (u.wrapping_sub(TWO62) >= TWO63) as u32).collect();
            let e = m_a.iter().zip(&rho).map(|(m, r)| m.wrapping_add(*r) as u64).collect();
            let got = p.net.round([vec![], e, vec![]], [0, n, 0])?;
            let t_a: Vec<u64> = (0..n)
                .map(|i| {
                    let s_a = m_a[i].wrapping_mul(got[1][i] as u32).wrapping_add(c_a[i]);
                    let w_a = s_a.wrapping_add(1).wrapping_sub((u[i] < TWO62) as u32);
                    (u[i] >> d).wrapping_sub(lift(w_a)).wrapping_add(1)
                })
                .collect();
            let masked: Vec<u64> = t_a.iter().zip(&y0).map(|(t, y)| t.wrapping_sub(*y)).collect();
            let got = p.net.round([vec![], masked.clone(), vec![]], [0, n, 0])?;
            let y1 = masked.iter().zip(&got[1]).map(|(a, b)| a.wrapping_add(*b)).collect();
            Ok(Shares { s0: y0, s1: y1 })
        }
        1 => {
            let (sigma, c_b, y2) =
                (small(p.prg.words(2, op, 3, n)), small(p.prg.words(2, op, 4, n)), p.prg.words(2, op, 5, n));
            let v = &x.s1;
            let m_b: Vec<u32> = v.iter().map(|&v| (v >= TWO63) as u32).collect();
            let g = m_b.iter().zip(&sigma).map(|(m, s)| m.wrapping_add(*s) as u64).collect();
            let got = p.net.round([g, vec![], vec![]], [n, 0, n])?;
            let t_b: Vec<u64> = (0..n)
                .map(|i| {
                    let s_b =
                        c_b[i].wrapping_add(got[2][i] as u32).wrapping_sub(sigma[i].wrapping_mul(got[0][i] as u32));
                    (v[i] >> d).wrapping_sub(lift(s_b))
                })
                .collect();
            let masked: Vec<u64> = t_b.iter().zip(&y2).map(|(t, y)| t.wrapping_sub(*y)).collect();
            let got = p.net.round([masked.clone(), vec![], vec![]], [n, 0, 0])?;
            let y1 = masked.iter().zip(&got[0]).map(|(a, b)| a.wrapping_add(*b)).collect();
            Ok(Shares { s0: y1, s1: y2 })
        }
        _ => {
            let (rho, c_a, y0) =
                (small(p.prg.words(0, op, 0, n)), small(p.prg.words(0, op, 1, n)), p.prg.words(0, op, 2, n));
            let (sigma, c_b, y2) =
                (small(p.prg.words(2, op, 3, n)), small(p.prg.words(2, op, 4, n)), p.prg.words(2, op, 5, n));
            let delta = (0..n)
                .map(|i| rho[i].wrapping_mul(sigma[i]).wrapping_sub(c_a[i]).wrapping_sub(c_b[i]) as u64)
                .collect();
            p.net.round([vec![], delta, vec![]], [0; 3])?;
            p.net.round(Default::default(), [0; 3])?;
            Ok(Shares { s0: y2, s1: y0 })
        }
    }
}
