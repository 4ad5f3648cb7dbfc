//! Fitting a univariate function on its calibrated range as a piecewise polynomial
//! for the MPC backend: `K` equal pieces of degree `d` by Chebyshev interpolation,
//! each in its own normalised variable `t ∈ [−1, 1]`, plus linear tails (the tangent
//! at each end of the range) beyond it. The cheapest `(d, K)` whose error bound meets
//! the tolerance wins: fewer rounds first (`⌈log2 d⌉`), then fewer multiplications.

use secc_ir::lowered::mpc::{Piece, Piecewise};

const DEGREES: std::ops::RangeInclusive<usize> = 1..=8;
const PIECES: [usize; 6] = [1, 2, 3, 4, 6, 8];
const GRID: usize = 64;

/// Fits `f` on `[lo, hi]` for `frac_bits` fixed point, aiming at `tol` absolute error.
pub fn fit(f: &dyn Fn(f64) -> f64, name: &str, lo: f64, hi: f64, frac_bits: u32, tol: f64) -> Piecewise {
    let mut candidates: Vec<(usize, usize)> = DEGREES.flat_map(|d| PIECES.map(|k| (d, k))).collect();
    candidates.sort_by_key(|&(d, k)| (usize::BITS - (d - 1).leading_zeros(), k * d, d));
    let ulp = 1.0 / (1u64 << frac_bits) as f64;
    let mut best: Option<Piecewise> = None;
    for (d, k) in candidates {
        let pw = fit_with(f, name, lo, hi, d, k, ulp);
        if pw.max_error <= tol {
            return pw;
        }
        if best.as_ref().is_none_or(|b| pw.max_error < b.max_error) {
            best = Some(pw);
        }
    }
    best.expect("at least one candidate")
}

fn fit_with(f: &dyn Fn(f64) -> f64, name: &str, lo: f64, hi: f64, d: usize, k: usize, ulp: f64) -> Piecewise {
    let width = (hi - lo) / k as f64;
    let tangent = |x: f64| {
        let h = (hi - lo) * 1e-4;
        let slope = (f(x + h) - f(x - h)) / (2.0 * h);
        (slope, f(x) - slope * x)
    };
    let (sl, il) = tangent(lo);
    let (sr, ir) = tangent(hi);
    let mut pieces = vec![Piece { lo: f64::NEG_INFINITY, hi: lo, scale: 1.0, offset: 0.0, coeffs: vec![il, sl] }];
    let mut max_error: f64 = 0.0;
    for i in 0..k {
        let (a, b) = (lo + i as f64 * width, lo + (i + 1) as f64 * width);
        let (scale, offset) = (2.0 / (b - a), -(a + b) / (b - a));
        let g = |t: f64| f((t - offset) / scale);
        let coeffs = chebyshev_monomial(&g, d);
        let fit_err = (0..=GRID)
            .map(|j| {
                let t = -1.0 + 2.0 * j as f64 / GRID as f64;
                (eval(&coeffs, t) - g(t)).abs()
            })
            .fold(0.0, f64::max);
        // Fixed point: each power and the final sum are off by at most an ulp or two,
        // amplified by the coefficients.
        let rounding = (d as f64 + 2.0 + coeffs.iter().map(|c| c.abs()).sum::<f64>() * 2.0) * ulp;
        max_error = max_error.max(fit_err + rounding);
        pieces.push(Piece { lo: a, hi: b, scale, offset, coeffs });
    }
    pieces.push(Piece { lo: hi, hi: f64::INFINITY, scale: 1.0, offset: 0.0, coeffs: vec![ir, sr] });
    let breakpoints = (0..=k).map(|i| lo + i as f64 * width).collect();
    Piecewise { function: name.to_string(), breakpoints, pieces, max_error }
}

/// Coefficients (lowest first) of the degree-`d` Chebyshev interpolant of `g` on [−1, 1].
fn chebyshev_monomial(g: &dyn Fn(f64) -> f64, d: usize) -> Vec<f64> {
    let n = d + 1;
    let nodes: Vec<f64> = (0..n).map(|i| (std::f64::consts::PI * (i as f64 + 0.5) / n as f64).cos()).collect();
    let values: Vec<f64> = nodes.iter().map(|&t| g(t)).collect();
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
            * nodes.iter().zip(&values).map(|(&t, &v)| v * (j as f64 * t.acos()).cos()).sum::<f64>()
            * if j == 0 { 0.5 } else { 1.0 };
        tp.iter().enumerate().for_each(|(i, c)| coeffs[i] += a * c);
    }
    coeffs
}

/// Points of the dense grid [`dense_error`] checks a fit on.
const DENSE: usize = 4096;

/// The largest error of `pw` against `f` on a dense grid of `[lo, hi]` (every
/// breakpoint included), in exact arithmetic: what the fit itself misses, against
/// which its stated bound (rounding included) is checked.
pub fn dense_error(pw: &Piecewise, f: &dyn Fn(f64) -> f64, lo: f64, hi: f64) -> f64 {
    let value = |x: f64| {
        let p = &pw.pieces[pw.breakpoints.iter().filter(|&&b| x >= b).count()];
        eval(&p.coeffs, p.scale * x + p.offset)
    };
    (0..=DENSE)
        .map(|i| lo + (hi - lo) * i as f64 / DENSE as f64)
        .chain(pw.breakpoints.iter().copied())
        .map(|x| (value(x) - f(x)).abs())
        .fold(0.0, f64::max)
}

fn eval(coeffs: &[f64], t: f64) -> f64 {
    coeffs.iter().rev().fold(0.0, |acc, c| acc * t + c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigmoid_fits_within_tolerance_with_tangent_tails() {
        let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
        let pw = fit(&sig, "sigmoid", -8.0, 8.0, 18, 1e-4);
        assert!(pw.max_error <= 1e-4, "{}", pw.max_error);
        assert_eq!(pw.pieces.len(), pw.breakpoints.len() + 1);
        assert!(pw.degree() <= 8);
    }

    #[test]
    fn the_dense_grid_confirms_the_stated_bound() {
        let pw = fit(&f64::exp, "exp", -12.0, 0.0, 18, 1e-5);
        assert!(dense_error(&pw, &f64::exp, -12.0, 0.0) <= pw.max_error, "{}", pw.max_error);
        let wrong = |x: f64| x.exp() + 1e-3;
        assert!(dense_error(&pw, &wrong, -12.0, 0.0) > pw.max_error);
    }

    #[test]
    fn chebyshev_reproduces_a_polynomial() {
        let c = chebyshev_monomial(&|t| 1.0 - 2.0 * t + 0.5 * t * t * t, 3);
        for (got, want) in c.iter().zip([1.0, -2.0, 0.0, 0.5]) {
            assert!((got - want).abs() < 1e-12);
        }
    }
}
