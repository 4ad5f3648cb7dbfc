//! Continuous piecewise-linear functions of one variable: what an elementwise chain
//! of ReLU, LeakyRelu, Abs, Neg, HardSigmoid, Clip (max/min with a constant) and
//! affine maps with constants computes. The SMPC backend runs such a chain exactly
//! (one batch of comparisons with the kinks, public slopes, bit injection) instead of
//! fitting a polynomial; [`super::Region`] builds it from each op's own form
//! ([`super::UnaryKind::pwl`], and the binary ops with a constant).

use serde::{Deserialize, Serialize};

/// `f(x) = slope_k · x + intercept_k` on piece `k`: `(−∞, kinks[0])`, `[kinks[0],
/// kinks[1])`, ..., `[kinks[last], ∞)`. Continuous, so the kinks themselves may go
/// either way.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pwl {
    /// Increasing.
    pub kinks: Vec<f64>,
    /// `(slope, intercept)`, one more than the kinks.
    pub pieces: Vec<(f64, f64)>,
}

impl Pwl {
    /// A function from its kinks and pieces (`pieces.len() == kinks.len() + 1`).
    pub fn new(kinks: Vec<f64>, pieces: Vec<(f64, f64)>) -> Pwl {
        assert_eq!(pieces.len(), kinks.len() + 1, "one piece more than kinks");
        Pwl { kinks, pieces }
    }

    /// `x`.
    pub fn identity() -> Pwl {
        Pwl::new(vec![], vec![(1.0, 0.0)])
    }

    /// `a · x + b`.
    pub fn affine(a: f64, b: f64) -> Pwl {
        Pwl::new(vec![], vec![(a, b)])
    }

    /// `max(x, c)` (`max = true`) or `min(x, c)`.
    pub fn clamp_at(c: f64, max: bool) -> Pwl {
        let (below, above) = if max { ((0.0, c), (1.0, 0.0)) } else { ((1.0, 0.0), (0.0, c)) };
        Pwl::new(vec![c], vec![below, above])
    }

    /// The piece that holds `x`.
    pub fn piece_at(&self, x: f64) -> (f64, f64) {
        self.pieces[self.kinks.iter().take_while(|&&k| x >= k).count()]
    }

    /// `f(x)`.
    pub fn eval(&self, x: f64) -> f64 {
        let (s, c) = self.piece_at(x);
        s * x + c
    }

    /// A point inside each piece of a function with these kinks.
    fn interior(kinks: &[f64]) -> Vec<f64> {
        let (Some(first), Some(last)) = (kinks.first(), kinks.last()) else { return vec![0.0] };
        std::iter::once(first - 1.0)
            .chain(kinks.windows(2).map(|w| (w[0] + w[1]) / 2.0))
            .chain(std::iter::once(last + 1.0))
            .collect()
    }

    /// The function with the given kinks that agrees with `f` on each piece, `f`
    /// being linear between them: its pieces are read off `f` at interior points.
    fn from_kinks(mut kinks: Vec<f64>, piece: impl Fn(f64) -> (f64, f64)) -> Pwl {
        kinks.sort_by(f64::total_cmp);
        kinks.dedup();
        let pieces = Pwl::interior(&kinks).into_iter().map(piece).collect();
        Pwl::new(kinks, pieces).simplified()
    }

    /// Drops kinks where the pieces on both sides agree.
    fn simplified(self) -> Pwl {
        let mut kinks = Vec::new();
        let mut pieces = vec![self.pieces[0]];
        for (k, p) in self.kinks.into_iter().zip(self.pieces.into_iter().skip(1)) {
            if pieces.last() != Some(&p) {
                kinks.push(k);
                pieces.push(p);
            }
        }
        Pwl { kinks, pieces }
    }

    /// `g ∘ self`.
    pub fn then(&self, g: &Pwl) -> Pwl {
        let mut kinks = self.kinks.clone();
        // Where self crosses one of g's kinks, the composition bends.
        for (i, &(s, c)) in self.pieces.iter().enumerate() {
            let lo = if i == 0 { f64::NEG_INFINITY } else { self.kinks[i - 1] };
            let hi = self.kinks.get(i).copied().unwrap_or(f64::INFINITY);
            if s != 0.0 {
                kinks.extend(g.kinks.iter().map(|&k| (k - c) / s).filter(|&x| x > lo && x < hi));
            }
        }
        Pwl::from_kinks(kinks, |x| {
            let (s, c) = self.piece_at(x);
            let (gs, gc) = g.piece_at(s * x + c);
            (gs * s, gs * c + gc)
        })
    }

    /// `self + sign · other`.
    pub fn plus(&self, other: &Pwl, sign: f64) -> Pwl {
        Pwl::from_kinks(self.kinks.iter().chain(&other.kinks).copied().collect(), |x| {
            let ((s, c), (t, d)) = (self.piece_at(x), other.piece_at(x));
            (s + sign * t, c + sign * d)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_of_an_affine_map_bends_where_the_map_crosses_the_bounds() {
        // clip(2x + 1, 0, 6): kinks at −0.5 and 2.5.
        let f = Pwl::affine(2.0, 1.0).then(&Pwl::clamp_at(0.0, true)).then(&Pwl::clamp_at(6.0, false));
        assert_eq!(f.kinks, [-0.5, 2.5]);
        for x in [-3.0, -0.5, 0.0, 1.0, 2.5, 7.0] {
            assert_eq!(f.eval(x), (2.0 * x + 1.0f64).clamp(0.0, 6.0), "{x}");
        }
    }

    #[test]
    fn prelu_as_relu_plus_scaled_min_is_one_function() {
        let relu = Pwl::identity().then(&Pwl::clamp_at(0.0, true));
        let neg = Pwl::identity().then(&Pwl::clamp_at(0.0, false)).then(&Pwl::affine(0.25, 0.0));
        let f = relu.plus(&neg, 1.0);
        assert_eq!((f.kinks.as_slice(), f.pieces.as_slice()), (&[0.0][..], &[(0.25, 0.0), (1.0, 0.0)][..]));
        assert_eq!(relu.plus(&relu, -1.0), Pwl::affine(0.0, 0.0));
    }
}
