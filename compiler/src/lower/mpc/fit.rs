//! Fitting a univariate function on its calibrated range as a piecewise polynomial
//! for the MPC backend: pieces of degree `d` by Chebyshev interpolation, each in its
//! own normalised variable `t ∈ [−1, 1]`, plus linear tails (the tangent at each end
//! of the range) beyond it. The cheapest `(d, K)` with `K` equal pieces whose error
//! meets the tolerance wins: fewer rounds first (`⌈log2 d⌉`), then fewer
//! multiplications. When none does, the pieces that miss are halved (a function
//! steep at one end, such as √x near 0) up to [`MAX_PIECES`]; when that fails too,
//! the chain is refused.
//!
//! Every error is measured, not estimated: on a dense grid of each piece
//! ([`DENSE`] points), plus the fixed-point rounding of the evaluation and the
//! input's own encoding error times the function's steepest slope. The stated
//! `max_error` is that measurement; the SMPC tests hold the protocol to it.
//!
//! A piecewise-linear chain needs no fit: [`exact`] gives its own pieces.

use secc_ir::lowered::mpc::{Piece, Piecewise};
use secc_ir::ops::Pwl;

const DEGREES: std::ops::RangeInclusive<usize> = 1..=8;
const PIECES: [usize; 6] = [1, 2, 3, 4, 6, 8];
/// Grid points per piece on which the error is measured.
const DENSE: usize = 256;
/// The most pieces refinement makes (all compared in one MSB batch: bytes, not rounds).
pub const MAX_PIECES: usize = 64;

/// A function evaluated on many points at once.
pub type Batch<'a> = &'a dyn Fn(&[f64]) -> Vec<f64>;

/// Fits `f` on `[lo, hi]` for `frac_bits` fixed point within `tol` absolute error,
/// or says why it cannot.
pub fn fit(f: Batch, name: &str, lo: f64, hi: f64, frac_bits: u32, tol: f64) -> Result<Piecewise, String> {
    let ulp = 1.0 / (1u64 << frac_bits) as f64;
    let mut candidates: Vec<(usize, usize)> = DEGREES.flat_map(|d| PIECES.map(|k| (d, k))).collect();
    candidates.sort_by_key(|&(d, k)| (usize::BITS - (d - 1).leading_zeros(), k * d, d));
    let uniform = |k: usize| (0..=k).map(|i| lo + (hi - lo) * i as f64 / k as f64).collect::<Vec<_>>();
    let mut best = f64::INFINITY;
    for (d, k) in candidates {
        let pw = fit_with(f, name, &uniform(k), d, ulp)?;
        if pw.max_error <= tol {
            return Ok(pw);
        }
        best = best.min(pw.max_error);
    }
    // Refinement: halve the pieces that miss, at the degrees of two and three levels.
    for d in [4, 8] {
        let mut bounds = uniform(*PIECES.last().expect("listed"));
        loop {
            let errors = piece_errors(f, &bounds, d, ulp)?;
            let worst = (0..errors.len()).max_by(|&a, &b| errors[a].total_cmp(&errors[b])).expect("pieces");
            if errors[worst] <= tol {
                return fit_with(f, name, &bounds, d, ulp);
            }
            best = best.min(errors[worst]);
            let (a, b) = (bounds[worst], bounds[worst + 1]);
            if bounds.len() > MAX_PIECES || b - a < 64.0 * ulp {
                break;
            }
            bounds.insert(worst + 1, (a + b) / 2.0);
        }
    }
    Err(format!(
        "no piecewise polynomial of degree ≤ 8 in ≤ {MAX_PIECES} pieces fits it on [{lo:.4}, {hi:.4}] within {tol:.2e} \
         (best {best:.2e})"
    ))
}

/// The error of each piece between consecutive `bounds` fitted at degree `d`.
fn piece_errors(f: Batch, bounds: &[f64], d: usize, ulp: f64) -> Result<Vec<f64>, String> {
    bounds.windows(2).map(|w| fit_piece(f, w[0], w[1], d, ulp).map(|(_, e)| e)).collect()
}

/// The piece on `[a, b]` and its measured error: the fit on the dense grid, the
/// fixed-point rounding ([`rounding`]).
fn fit_piece(f: Batch, a: f64, b: f64, d: usize, ulp: f64) -> Result<(Piece, f64), String> {
    let (scale, offset) = (2.0 / (b - a), -(a + b) / (b - a));
    let nodes: Vec<f64> = (0..=d).map(|i| (std::f64::consts::PI * (i as f64 + 0.5) / (d + 1) as f64).cos()).collect();
    let at_nodes = f(&nodes.iter().map(|&t| (t - offset) / scale).collect::<Vec<_>>());
    let coeffs = chebyshev_monomial(&nodes, &at_nodes);
    let grid: Vec<f64> = (0..=DENSE).map(|j| a + (b - a) * j as f64 / DENSE as f64).collect();
    let want = f(&grid);
    if let Some(x) = grid.iter().zip(&want).find(|(_, y)| !y.is_finite()).map(|(x, _)| x) {
        return Err(format!("it is not finite at {x} (inside the calibrated range)"));
    }
    let fit_err =
        grid.iter().zip(&want).map(|(&x, &y)| (eval(&coeffs, scale * x + offset) - y).abs()).fold(0.0, f64::max);
    let slope =
        grid.windows(2).zip(want.windows(2)).map(|(x, y)| ((y[1] - y[0]) / (x[1] - x[0])).abs()).fold(0.0, f64::max);
    Ok((Piece { lo: a, hi: b, scale, offset, coeffs: coeffs.clone() }, fit_err + rounding(&coeffs, a, b, ulp, slope)))
}

/// What fixed point adds to a piece's polynomial on `[a, b]`, in the protocol's order:
/// `t = scale·x + offset` is off by the scale's encoding (half an ulp) times `|x|` plus
/// one truncation; `t^j` (computed by products, each truncated) by `j` times that plus
/// `j − 1` truncations; each `c_j t^j` by `|c_j|` times that plus the coefficient's half
/// ulp; the sum by one truncation; and the input's own encoding (half an ulp) moves
/// the result by up to `slope` times it.
fn rounding(coeffs: &[f64], a: f64, b: f64, ulp: f64, slope: f64) -> f64 {
    let dt = 1.0 + a.abs().max(b.abs()) / 2.0;
    let powers: f64 = coeffs.iter().enumerate().skip(1).map(|(j, c)| c.abs() * (j as f64 * dt + (j - 1) as f64)).sum();
    (powers + coeffs.len() as f64 / 2.0 + 1.0 + slope / 2.0) * ulp
}

/// The piecewise polynomial of degree `d` on the pieces between consecutive `bounds`,
/// with tangent tails beyond them.
fn fit_with(f: Batch, name: &str, bounds: &[f64], d: usize, ulp: f64) -> Result<Piecewise, String> {
    let (lo, hi) = (bounds[0], bounds[bounds.len() - 1]);
    // One-sided differences, from inside: the function may not exist beyond the range (√x).
    let h = (hi - lo) * 1e-4;
    let y = f(&[lo, lo + h, hi - h, hi]);
    let (sl, sr) = ((y[1] - y[0]) / h, (y[3] - y[2]) / h);
    let mut pieces =
        vec![Piece { lo: f64::NEG_INFINITY, hi: lo, scale: 1.0, offset: 0.0, coeffs: vec![y[0] - sl * lo, sl] }];
    let mut max_error: f64 = 0.0;
    for w in bounds.windows(2) {
        let (piece, err) = fit_piece(f, w[0], w[1], d, ulp)?;
        max_error = max_error.max(err);
        pieces.push(piece);
    }
    pieces.push(Piece { lo: hi, hi: f64::INFINITY, scale: 1.0, offset: 0.0, coeffs: vec![y[3] - sr * hi, sr] });
    Ok(Piecewise { function: name.to_string(), breakpoints: bounds.to_vec(), pieces, max_error })
}

/// The piecewise-linear `f` as its own pieces (at least one breakpoint, which the
/// protocol needs), with the error fixed point makes on `[lo, hi]`: the slopes'
/// encoding at `2^f` times the largest `|x|`, the input's half ulp times the slope,
/// one truncation.
pub fn exact(f: &Pwl, name: &str, lo: f64, hi: f64, frac_bits: u32) -> Piecewise {
    let scale = (1u64 << frac_bits) as f64;
    let ulp = 1.0 / scale;
    let (kinks, pieces) = if f.kinks.is_empty() {
        (vec![0.0], vec![f.pieces[0], f.pieces[0]])
    } else {
        (f.kinks.clone(), f.pieces.clone())
    };
    let x_max = lo.abs().max(hi.abs());
    let max_error = pieces
        .iter()
        .map(|&(s, c)| {
            let slope_err = (s - (s * scale).round() / scale).abs() * x_max;
            let intercept_err = (c - (c * scale * scale).round() / (scale * scale)).abs();
            slope_err + intercept_err + (2.0 + s.abs() / 2.0) * ulp
        })
        .fold(0.0, f64::max);
    let ends = |k: usize| {
        let lo = if k == 0 { f64::NEG_INFINITY } else { kinks[k - 1] };
        (lo, kinks.get(k).copied().unwrap_or(f64::INFINITY))
    };
    let pieces = pieces
        .iter()
        .enumerate()
        .map(|(k, &(s, c))| Piece { lo: ends(k).0, hi: ends(k).1, scale: 1.0, offset: 0.0, coeffs: vec![c, s] })
        .collect();
    Piecewise { function: name.to_string(), breakpoints: kinks, pieces, max_error }
}

/// Coefficients (lowest first) of the interpolant through `values` at the Chebyshev
/// `nodes` of [−1, 1].
fn chebyshev_monomial(nodes: &[f64], values: &[f64]) -> Vec<f64> {
    let n = nodes.len();
    // T_j as monomial coefficient vectors, by T_{j+1} = 2t·T_j − T_{j−1}.
    let mut t_polys: Vec<Vec<f64>> = vec![vec![1.0], vec![0.0, 1.0]];
    while t_polys.len() < n {
        let (p1, p0) = (&t_polys[t_polys.len() - 1], &t_polys[t_polys.len() - 2]);
        let mut next = vec![0.0; p1.len() + 1];
        p1.iter().enumerate().for_each(|(i, c)| next[i + 1] += 2.0 * c);
        p0.iter().enumerate().for_each(|(i, c)| next[i] -= c);
        t_polys.push(next);
    }
    let mut coeffs = vec![0.0; n];
    for (j, tp) in t_polys.iter().take(n).enumerate() {
        let a = 2.0 / n as f64
            * nodes.iter().zip(values).map(|(&t, &v)| v * (j as f64 * t.acos()).cos()).sum::<f64>()
            * if j == 0 { 0.5 } else { 1.0 };
        tp.iter().enumerate().for_each(|(i, c)| coeffs[i] += a * c);
    }
    coeffs
}

fn eval(coeffs: &[f64], t: f64) -> f64 {
    coeffs.iter().rev().fold(0.0, |acc, c| acc * t + c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(f: impl Fn(f64) -> f64) -> impl Fn(&[f64]) -> Vec<f64> {
        move |xs| xs.iter().map(|&x| f(x)).collect()
    }

    #[test]
    fn sigmoid_fits_within_tolerance_with_tangent_tails() {
        let sig = batch(|x: f64| 1.0 / (1.0 + (-x).exp()));
        let pw = fit(&sig, "sigmoid", -8.0, 8.0, 18, 1e-4).unwrap();
        assert!(pw.max_error <= 1e-4, "{}", pw.max_error);
        assert_eq!(pw.pieces.len(), pw.breakpoints.len() + 1);
        assert!(pw.degree() <= 8);
    }

    /// √x is steep near 0 (the range once fitted to a stated error of 0 and returned 0
    /// there): whatever pieces the fit takes, its stated bound holds on a finer grid.
    #[test]
    fn sqrt_near_zero_meets_its_bound_on_a_finer_grid() {
        let sqrt = batch(f64::sqrt);
        let pw = fit(&sqrt, "sqrt", 0.03, 2.8, 18, 1.6e-4).unwrap();
        assert!(pw.max_error > 0.0 && pw.max_error <= 1.6e-4, "{}", pw.max_error);
        for i in 0..=20_000 {
            let x = 0.03 + (2.8 - 0.03) * i as f64 / 20_000.0;
            let k = pw.breakpoints.iter().take_while(|&&b| x >= b).count();
            let p = &pw.pieces[k];
            let y = eval(&p.coeffs, p.scale * x + p.offset);
            assert!((y - x.sqrt()).abs() <= pw.max_error, "{x}: {y} vs {}", x.sqrt());
        }
    }

    #[test]
    fn a_function_that_is_not_finite_on_the_range_is_refused() {
        let recip = batch(|x: f64| 1.0 / x);
        let err = fit(&recip, "reciprocal", -1.0, 1.0, 18, 1e-4).unwrap_err();
        assert!(err.contains("not finite") || err.contains("no piecewise polynomial"), "{err}");
    }

    #[test]
    fn chebyshev_reproduces_a_polynomial() {
        let nodes: Vec<f64> = (0..4).map(|i| (std::f64::consts::PI * (i as f64 + 0.5) / 4.0).cos()).collect();
        let values: Vec<f64> = nodes.iter().map(|&t| 1.0 - 2.0 * t + 0.5 * t * t * t).collect();
        let c = chebyshev_monomial(&nodes, &values);
        for (got, want) in c.iter().zip([1.0, -2.0, 0.0, 0.5]) {
            assert!((got - want).abs() < 1e-12);
        }
    }

    #[test]
    fn exact_pieces_of_clip_keep_the_kinks() {
        let clip = Pwl::identity().then(&Pwl::clamp_at(-1.0, true)).then(&Pwl::clamp_at(2.0, false));
        let pw = exact(&clip, "clip", -3.0, 3.0, 18);
        assert_eq!(pw.breakpoints, [-1.0, 2.0]);
        assert_eq!(pw.pieces[1].coeffs, [0.0, 1.0]);
        assert!(pw.max_error < 1e-5, "{}", pw.max_error);
    }
}
