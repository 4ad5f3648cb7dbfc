//! The noise, failure probability, security and cost of a classic KS-PBS parameter set
//! (binary keys, Gaussian noise, 64-bit torus, FFT blind rotation, centred modulus
//! switch), as tfhe-rs 1.8's generated noise formulas
//! (`core_crypto::commons::noise_formulas`) and Concrete's optimizer state them, with
//! the key noise as a free parameter instead of the 132-bit floor those bake in.
//! Variances are fractions of the torus squared.

use super::Lattice;

/// `log2 q` of the native torus.
const LOG2_Q: f64 = 64.0;
/// Mantissa bits of the FFT's `f64`s: products beyond it round.
const FFT_MANTISSA: f64 = 53.0;

/// Concrete's lattice-estimator fit for 128-bit security with binary keys and
/// `q = 2^64`: the smallest secure noise of an LWE dimension is
/// `log2 σ = SLOPE · n + BIAS` (σ a fraction of the torus), valid from
/// `MIN_DIMENSION` on. zama-ai/concrete, concrete-security-curves-rust/src/curves.gen.rs
/// at 4dd2597623a04d3180c39205785886f062d24ca5.
const CURVE_128: (f64, f64, u32) = (-0.026405028765226296, 2.482642269104389, 450);

/// The smallest Gaussian standard deviation (a fraction of the torus) that keeps an LWE
/// key of `dimension` at 128-bit security; `None` below the curve's range. Concrete also
/// keeps σ above the 2 lowest bits of the modulus.
pub fn secure_std(dimension: u32) -> Option<f64> {
    let (slope, bias, min) = CURVE_128;
    (dimension >= min).then(|| (slope * dimension as f64 + bias).max(2.0 - LOG2_Q).exp2())
}

fn q2() -> f64 {
    (-2.0 * LOG2_Q).exp2()
}

/// The variance of a gadget decomposition's digits times the key noise, and its rounding,
/// shared by the bootstrap's external products and the keyswitch.
fn digit_variance(base_log: u32) -> f64 {
    let b = (base_log as f64).exp2();
    b * b / 12.0 + 1.0 / 6.0
}

fn truncation(base_log: u32, level: u32) -> f64 {
    (-2.0 * (base_log * level) as f64).exp2()
}

/// The noise of a bootstrap's output (after sample extraction): `n` external products,
/// each adding the key noise through `ℓ·(k+1)·N` decomposed digits, the decomposition's
/// truncation through the GLWE key, and the FFT's rounding.
pub fn bootstrap_variance(l: &Lattice) -> f64 {
    let (n, k, big_n, level) =
        (l.lwe_dimension as f64, l.glwe_dimension as f64, l.polynomial_size as f64, l.pbs_level as f64);
    let log2_b = l.pbs_base_log as f64;
    let fft = 0.00705
        * (2.0 * (LOG2_Q - FFT_MANTISSA).max(0.0) + 2.0 * log2_b - 2.0 * LOG2_Q).exp2()
        * level.powf(1.01827)
        * k.powf(1.22003)
        * big_n.powf(2.22003)
        * (k + 1.0).powf(1.01827);
    let key = level * big_n * l.glwe_std.powi(2) * digit_variance(l.pbs_base_log) * (k + 1.0);
    let t = truncation(l.pbs_base_log, l.pbs_level);
    let rounding = -q2() / 24.0 + 0.5 * k * big_n * (q2() / 48.0 + t / 24.0) + t / 24.0;
    n * (fft + key + rounding)
}

/// The noise a keyswitch from the `k·N` GLWE key to the `n` LWE key adds.
pub fn keyswitch_variance(l: &Lattice) -> f64 {
    keyswitch_variance_from(l, l.big_dimension())
}

/// The noise a keyswitch from a big key of dimension `big` (another partition's) to
/// `l`'s small key adds, with `l`'s decomposition.
pub fn keyswitch_variance_from(l: &Lattice, big: u32) -> f64 {
    let big = big as f64;
    let key = l.ks_level as f64 * big * l.lwe_std.powi(2) * digit_variance(l.ks_base_log);
    key + big * (q2() / 48.0 + truncation(l.ks_base_log, l.ks_level) / 24.0)
}

/// The noise the centred modulus switch to `2N` adds: each mask coefficient rounds to a
/// multiple of `1/2N`, against a binary key bit.
pub fn modulus_switch_variance(l: &Lattice) -> f64 {
    let two_n = 2.0 * l.polynomial_size as f64;
    l.lwe_dimension as f64 * (q2() / 24.0 + two_n.powi(-2) / 48.0)
}

/// Variance of a fresh encryption relative to a bootstrap output's, as the lowering
/// counts it: fresh noise is the GLWE noise alone, a bootstrap's sums thousands of
/// key-noise terms. A set serves the lowering's noise figures only where this bounds
/// the real ratio ([`fresh_within_bound`]).
pub const FRESH_VARIANCE: f64 = 1.0 / (1 << 20) as f64;

/// Whether a fresh encryption's noise on `l` is at most [`FRESH_VARIANCE`] of a bootstrap's.
pub fn fresh_within_bound(l: &Lattice) -> bool {
    l.glwe_std.powi(2) <= FRESH_VARIANCE * bootstrap_variance(l)
}

/// The noise the blind rotation reads for an input whose noise is `norm` times a
/// bootstrap output's (the 2-norm of the weights over bootstrap outputs).
pub fn input_variance(l: &Lattice, norm: f64) -> f64 {
    input_variance_from(l, norm, bootstrap_variance(l), l.big_dimension())
}

/// The noise the blind rotation on `l` reads for an input of noise `norm` times `unit`
/// (the noisiest partition's bootstrap output), keyswitched from a big key of dimension
/// `big`.
pub fn input_variance_from(l: &Lattice, norm: f64, unit: f64, big: u32) -> f64 {
    norm * norm * unit + keyswitch_variance_from(l, big) + modulus_switch_variance(l)
}

/// log2 of the probability that a bootstrap reading `precision` bits (below one padding
/// bit) of such an input lands in a neighbouring box: the noise passes half a box,
/// `2^-(precision + 2)` of the torus.
pub fn log2_p_fail(l: &Lattice, precision: u32, norm: f64) -> f64 {
    log2_p_fail_of(precision, input_variance(l, norm))
}

/// [`log2_p_fail`] for an input of noise `variance`.
pub fn log2_p_fail_of(precision: u32, variance: f64) -> f64 {
    log2_erfc(half_box(precision) / (variance.sqrt() * std::f64::consts::SQRT_2))
}

fn half_box(precision: u32) -> f64 {
    (-(precision as f64) - 2.0).exp2()
}

/// The largest input variance a bootstrap reading `precision` bits takes within failure
/// probability `2^log2_p_fail`: [`log2_p_fail`] inverted, so that serving a table is a
/// comparison of variances (the search tries many sets per bound).
pub fn max_input_variance(precision: u32, log2_p_fail: f64) -> f64 {
    // erfc falls monotonically: bisect for x with log2 erfc(x) = log2_p_fail.
    let (mut lo, mut hi) = (0.0f64, 64.0f64);
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if log2_erfc(mid) > log2_p_fail {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (half_box(precision) / (hi * std::f64::consts::SQRT_2)).powi(2)
}

/// `log2 erfc(x)`, past `erfc`'s underflow by its asymptotic series.
fn log2_erfc(x: f64) -> f64 {
    let e = libm::erfc(x);
    if e > 1e-300 {
        e.log2()
    } else {
        // erfc(x) ≈ e^(−x²) / (x√π) · (1 − 1/(2x²))
        (-x * x - (x * std::f64::consts::PI.sqrt()).ln() + (1.0 - 0.5 / (x * x)).ln()) / std::f64::consts::LN_2
    }
}

/// The work of one keyswitch + bootstrap in Concrete's CPU complexity model, in millions
/// of operations (tfhe-rs's "algorithmic cost" is this figure): the keyswitch's
/// `ℓ_ks·kN` multiply-adds of an `(n+1)`-vector, and per key bit an external product:
/// `ℓ(k+1)` forward and `k+1` inverse FFTs of size `N`, `ℓ(k+1)²·N` products and sums.
pub fn cost(l: &Lattice) -> f64 {
    let (n, k1, big_n, level) =
        (l.lwe_dimension as f64, (l.glwe_dimension + 1) as f64, l.polynomial_size as f64, l.pbs_level as f64);
    let ks = 2.0 * l.ks_level as f64 * (l.glwe_dimension as f64 * big_n) * (n + 1.0);
    let fft = big_n * big_n.log2();
    let cmux = fft * k1 * level + fft * k1 + 2.0 * big_n * level * k1 * k1;
    (ks + n * cmux) / 1e6
}

/// The largest input 2-norm a bootstrap reading `precision` bits on `l` takes within
/// failure probability `2^log2_p_fail` (0 when even a bootstrap output's noise fails).
pub fn norm_budget(l: &Lattice, precision: u32, log2_p_fail: f64) -> f64 {
    let room = max_input_variance(precision, log2_p_fail) - keyswitch_variance(l) - modulus_switch_variance(l);
    (room.max(0.0) / bootstrap_variance(l)).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lowered::fhe::catalog;

    fn all() -> Vec<crate::lowered::fhe::ParamSet> {
        [-128, -64, -40].into_iter().flat_map(catalog).collect()
    }

    /// tfhe-rs picked its noise from a 132-bit fit: every catalog key's noise is at or
    /// above the 128-bit curve's floor, and the small keys', where the curve binds,
    /// within 2 bits of it (the fits agree up to the 4 bits of security between them).
    #[test]
    fn the_catalog_is_secure_by_the_curve() {
        for s in all() {
            let l = &s.lattice;
            assert!(l.secure(), "{}", s.name);
            let margin = l.lwe_std.log2() - secure_std(l.lwe_dimension).unwrap().log2();
            assert!((0.0..2.0).contains(&margin), "{}: {margin} bits above the floor", s.name);
            assert!(fresh_within_bound(l), "{}", s.name);
        }
        assert!(secure_std(449).is_none());
        // Large dimensions bottom out at 4 units of the 2^64 modulus.
        assert_eq!(secure_std(4096), Some(2f64.powi(-62)));
    }

    /// The cost model is tfhe-rs's "algorithmic cost": within 25% of every published
    /// figure, so it ranks the catalog as tfhe-rs does.
    #[test]
    fn cost_model_matches_the_catalogs_algorithmic_cost() {
        for s in all() {
            let ratio = cost(&s.lattice) / s.cost as f64;
            assert!((0.8..1.25).contains(&ratio), "{}: model {} vs {}", s.name, cost(&s.lattice), s.cost);
        }
    }

    #[test]
    fn failure_probability_falls_with_room() {
        let s = &catalog(-128)[4];
        let l = &s.lattice;
        let at = |p, norm| log2_p_fail(l, p, norm);
        assert!(at(5, 31.0) < at(5, 40.0) && at(4, 31.0) < at(5, 31.0));
        let budget = norm_budget(l, 5, -128.0);
        assert!((at(5, budget) + 128.0).abs() < 1e-6, "{}", at(5, budget));
        assert!(input_variance(l, budget * 1.001) > max_input_variance(5, -128.0));
        // Far tails come from the asymptotic series, continuous with erfc.
        assert!((log2_erfc(26.5) - libm::erfc(26.5).log2()).abs() < 0.01);
        assert!(log2_erfc(40.0) < log2_erfc(30.0));
    }
}
