//! Parameter sets beyond tfhe-rs's catalog: the cheapest KS-PBS set (by
//! [`noise::cost`]) whose noise, by [`noise`]'s model, serves every table of a circuit,
//! at the 128-bit curve's noise for its dimensions.
//!
//! The catalog is tuned for shortint's layouts and norm budgets; a circuit whose widest
//! table reads 6 bits of a low-noise input pays there for noise room it does not use.

use secc_ir::lowered::fhe::noise;
use secc_ir::lowered::fhe::{Lattice, ParamSet};

/// Candidate small-key dimensions: from the curve's lower end, in steps of 8.
const LWE_DIMENSIONS: std::ops::RangeInclusive<u32> = 480..=1600;
const LWE_STEP: usize = 8;
/// Deepest decompositions tried: deeper ones cost more than a larger `N` saves.
const MAX_PBS_LEVEL: u32 = 6;
const MAX_KS_LEVEL: u32 = 16;
/// The search leaves this share of the variance bound unused, so that the verifier's
/// exact check of the chosen set never falls on the other side of a rounding.
const MARGIN: f64 = 0.999;

/// The base (log2) of an `level`-level decomposition that adds the least noise, and that
/// noise: a larger base carries more key noise per digit, a smaller one truncates more.
fn best_base(level: u32, variance: impl Fn(u32) -> f64) -> (u32, f64) {
    (1..=64 / level).map(|b| (b, variance(b))).min_by(|a, b| a.1.total_cmp(&b.1)).expect("64 / level ≥ 1")
}

/// What a table's input norm counts in.
#[derive(Clone, Copy, Debug)]
pub enum Unit {
    /// The set's own bootstrap output noise: every table of the circuit on one set.
    Own,
    /// A fixed variance (the circuit's noise unit), each input keyswitched from a big key
    /// of dimension `big` at most: one partition of several, whose own big key may be no
    /// larger, so that its readers' keyswitches stay within their bound.
    Fixed {
        /// The variance a norm of 1 stands for.
        variance: f64,
        /// The largest big-key dimension an input comes from.
        big: u32,
    },
}

/// The cheapest set serving every `(precision, norm)` demand of a table within
/// `2^log2_p_fail` (see [`ParamSet::serves`]) whose bootstrap output noise is at most
/// `max_output`; `None` when no candidate does.
pub fn search(demands: &[(u32, f64)], unit: Unit, max_output: f64, log2_p_fail: i32) -> Option<ParamSet> {
    let bits = demands.iter().map(|d| d.0).max()?;
    // Per precision, only the noisiest table binds; each bounds the input variance.
    let mut bounds: Vec<(f64, f64)> = Vec::new();
    for p in 1..=bits {
        let worst = demands
            .iter()
            .filter(|d| d.0 == p)
            .map(|d| d.1)
            .fold(None, |m: Option<f64>, n| Some(m.map_or(n, |m| m.max(n))));
        if let Some(norm) = worst {
            bounds.push((norm * norm, MARGIN * noise::max_input_variance(p, log2_p_fail as f64)));
        }
    }
    let mut best: Option<(f64, Lattice)> = None;
    for glwe_dimension in 1..=2u32 {
        for log_n in 10..=16u32 {
            let polynomial_size = 1u32 << log_n;
            let own_big = glwe_dimension * polynomial_size;
            let (fixed, input_big) = match unit {
                Unit::Own => (None, own_big),
                Unit::Fixed { variance, big } if own_big <= big => (Some(variance), big),
                Unit::Fixed { .. } => continue,
            };
            let glwe_std = noise::secure_std(glwe_dimension * polynomial_size)?;
            let base = Lattice {
                lwe_dimension: 1,
                glwe_dimension,
                polynomial_size,
                pbs_level: 1,
                pbs_base_log: 1,
                ks_level: 1,
                ks_base_log: 1,
                lwe_std: 0.5,
                glwe_std,
            };
            // The bootstrap's noise is linear in n: its best base per level is n's too.
            let pbs: Vec<(u32, u32, f64)> = (1..=MAX_PBS_LEVEL)
                .map(|level| {
                    let (b, v) = best_base(level, |b| {
                        noise::bootstrap_variance(&Lattice { pbs_level: level, pbs_base_log: b, ..base })
                    });
                    (level, b, v)
                })
                .collect();
            for lwe_dimension in LWE_DIMENSIONS.step_by(LWE_STEP) {
                let Some(lwe_std) = noise::secure_std(lwe_dimension) else { continue };
                let at_n = Lattice { lwe_dimension, lwe_std, ..base };
                let ms = noise::modulus_switch_variance(&at_n);
                for ks_level in 1..=MAX_KS_LEVEL {
                    let (ks_base_log, ks) = best_base(ks_level, |b| {
                        noise::keyswitch_variance_from(&Lattice { ks_level, ks_base_log: b, ..at_n }, input_big)
                    });
                    for &(pbs_level, pbs_base_log, per_n) in &pbs {
                        let pbs_var = per_n * lwe_dimension as f64;
                        if glwe_std * glwe_std > noise::FRESH_VARIANCE * pbs_var || pbs_var > max_output {
                            continue;
                        }
                        let unit_var = fixed.unwrap_or(pbs_var);
                        if !bounds.iter().all(|&(norm2, max)| norm2 * unit_var + ks + ms <= max) {
                            continue;
                        }
                        let l = Lattice { pbs_level, pbs_base_log, ks_level, ks_base_log, ..at_n };
                        let cost = noise::cost(&l);
                        if best.as_ref().is_none_or(|(c, _)| cost < *c) {
                            best = Some((cost, l));
                        }
                    }
                }
            }
        }
    }
    let set = ParamSet::searched(best?.1, bits, log2_p_fail)?;
    let quiet = noise::bootstrap_variance(&set.lattice) <= max_output;
    let serves = |p: u32, norm: f64| match unit {
        Unit::Own => set.serves(p, norm),
        Unit::Fixed { variance, big } => set.reads(p, norm, variance, big),
    };
    (quiet && demands.iter().all(|&(p, norm)| serves(p, norm))).then_some(set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secc_ir::lowered::fhe::{catalog, catalog_choice};

    /// For the demand each catalog set is tuned for, the search finds a set at most as
    /// costly by the same model (the catalog is a point of its space, up to its noise
    /// being the 128-bit floor rather than tfhe-rs's 132-bit one), serving it exactly.
    #[test]
    fn search_matches_or_beats_the_catalog_on_its_own_demands() {
        for s in catalog(-128).into_iter().filter(|s| (3..=7).contains(&s.bits())) {
            let demand = [(s.bits(), s.norm_budget)];
            let found =
                search(&demand, Unit::Own, f64::INFINITY, -128).unwrap_or_else(|| panic!("nothing serves {}", s.name));
            assert!(found.serves(s.bits(), s.norm_budget) && found.lattice.secure());
            assert!(
                noise::cost(&found.lattice) <= noise::cost(&s.lattice),
                "{}: {} vs {}",
                s.name,
                found.name,
                noise::cost(&s.lattice)
            );
        }
    }

    /// The catalog's choice's output noise: the tests' stand-in for a decryption bound.
    fn quiet_bound(demand: &[(u32, f64)]) -> f64 {
        catalog_choice(demand, -128).map_or(f64::INFINITY, |s| noise::bootstrap_variance(&s.lattice))
    }

    /// A partition of narrow tables, its norms counted in a wide set's output noise and
    /// its inputs keyswitched from that set's big key, gets a set far cheaper than the
    /// wide one, no larger and no noisier.
    #[test]
    fn a_narrow_partition_under_a_wide_unit_is_cheaper() {
        let wide = search(&[(6, 8.0)], Unit::Own, f64::INFINITY, -128).unwrap();
        let variance = noise::bootstrap_variance(&wide.lattice);
        let big = wide.lattice.glwe_dimension * wide.lattice.polynomial_size;
        let narrow = search(&[(4, 8.0)], Unit::Fixed { variance, big }, variance, -128).unwrap();
        assert!(noise::cost(&narrow.lattice) * 2.0 < noise::cost(&wide.lattice), "{} vs {}", narrow.name, wide.name);
        assert!(noise::bootstrap_variance(&narrow.lattice) <= variance);
        assert!(narrow.lattice.glwe_dimension * narrow.lattice.polynomial_size <= big);
        let read = noise::input_variance_from(&narrow.lattice, 8.0, variance, big);
        assert!(read <= noise::max_input_variance(4, -128.0));
        // Nothing serves a table wider than the unit leaves room for.
        assert!(search(&[(6, 8.0)], Unit::Fixed { variance, big: 1024 }, variance, -128).is_none());
    }

    /// A table on a small norm needs less than the catalog's sets of its width, tuned
    /// for large norms: the search's saving grows with the room left unused.
    #[test]
    fn low_noise_tables_get_cheaper_sets() {
        for (demand, saving) in [([(6, 4.0), (3, 20.0)], 1.0), ([(7, 2.0), (4, 8.0)], 1.0), ([(5, 1.0), (2, 4.0)], 1.0)]
        {
            let bound = quiet_bound(&demand);
            let found = search(&demand, Unit::Own, bound, -128).unwrap();
            assert!(demand.iter().all(|&(p, n)| found.serves(p, n)) && !found.serves(demand[0].0 + 1, demand[0].1));
            assert!(noise::bootstrap_variance(&found.lattice) <= bound);
            let serving = catalog(-128).into_iter().filter(|s| demand.iter().all(|&(p, n)| s.serves(p, n)));
            let cheapest = serving.map(|s| noise::cost(&s.lattice)).fold(f64::INFINITY, f64::min);
            println!("{demand:?}: {} at {} vs {cheapest}", found.name, noise::cost(&found.lattice));
            assert!(noise::cost(&found.lattice) * saving < cheapest, "{} vs {cheapest}", found.name);
        }
        assert!(search(&[(14, 1.0)], Unit::Own, f64::INFINITY, -128).is_none());
        // Bounding the outputs' noise buys a quieter set.
        let loud = noise::bootstrap_variance(&search(&[(4, 1.0)], Unit::Own, f64::INFINITY, -128).unwrap().lattice);
        let quiet = search(&[(4, 1.0)], Unit::Own, loud / 16.0, -128).unwrap();
        assert!(noise::bootstrap_variance(&quiet.lattice) <= loud / 16.0);
    }
}
