//! `precision`: the quantizer's widths chosen by what they cost in accuracy.
//!
//! One global default (5-bit tables, 4-bit tree features, weight 2-norm cap 31) is the
//! cheapest TFHE setting, and it loses more than a point of accuracy on some models (a
//! GELU net, a deep CNN, small nets from torch). Labels are not part of a calibration
//! set, so the budget is held against the float model itself: on the calibration
//! samples, the outputs must keep within a fraction of relative mean squared error
//! (a quarter of it for a single number, a regressor's: that bounds the change in R²)
//! and, for outputs of several elements (a classifier's
//! scores), pick the float model's argmax on all but that fraction of samples. Argmax
//! agreement alone is not enough: tables fitted to the calibration set can agree on
//! every calibration sample and still flip 4% of test samples (a torch MLP at 5-bit
//! tables); the squared error of the scores sees how close they came. The widths grow one step at a time, each step a dearer bootstrap, and
//! the first setting within budget wins.

use super::calibrate::Calibration;
use super::quantize::{quantize, QuantConfig};
use crate::CompileError;
use secc_ir::interp::run_graph;
use secc_ir::{Graph, Tensor};
use std::fmt;

/// How far the simulation may stray from the float model on the calibration samples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Budget {
    /// Largest fraction of samples whose argmax may differ, and largest mean squared
    /// error relative to the float outputs' variance (1 point, R² 0.01: 0.01).
    pub fraction: f64,
}

impl Default for Budget {
    fn default() -> Self {
        Budget { fraction: 0.01 }
    }
}

/// How closely a quantized graph follows the float one on some samples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fidelity {
    /// Fraction of samples on which every output of several elements has the float
    /// output's argmax; `None` when every output is a single number.
    pub agreement: Option<f64>,
    /// The largest, over outputs, of the mean squared error over the float output's
    /// variance.
    pub relative_mse: f64,
}

impl Fidelity {
    /// Whether it is within `budget`.
    pub fn within(&self, budget: Budget) -> bool {
        match self.agreement {
            Some(a) => a >= 1.0 - budget.fraction && self.relative_mse <= budget.fraction,
            // R² moves by the squared error plus its covariance with the model's own
            // error, which the calibration set does not measure: a quarter of the budget
            // kept a forest within 0.01 on test rows where the whole budget let it drift
            // by 0.014.
            None => self.relative_mse <= budget.fraction / 4.0,
        }
    }
}

impl fmt::Display for Fidelity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(a) = self.agreement {
            write!(f, "same argmax on {:.1}% of samples, ", 100.0 * a)?;
        }
        write!(f, "relative MSE {:.2e}", self.relative_mse)
    }
}

/// The settings tried, cheapest first: two more weight bits (levelled ops only, so
/// nearly free under TFHE), then each step a bit more for tables and tree features (up
/// to the activation width: a dearer bootstrap) and twice the weight-norm cap.
fn ladder(base: QuantConfig) -> impl Iterator<Item = QuantConfig> {
    (0..5).map(move |step: u32| {
        let (w, k) = (if step > 0 { 2 } else { 0 }, step.saturating_sub(1));
        QuantConfig {
            table_bits: (base.table_bits + k).min(base.bits),
            tree_bits: (base.tree_bits + k).min(base.bits),
            weight_bits: base.weight_bits + w,
            max_weight_norm: base.max_weight_norm.map(|n| n * f64::from(1u32 << k)),
            ..base.clone()
        }
    })
}

/// Measures `quantized` against `float` on `samples`.
pub fn fidelity(float: &Graph, quantized: &Graph, samples: &[Vec<Tensor>]) -> Result<Fidelity, CompileError> {
    let run = |g: &Graph, s: &[Tensor]| {
        run_graph(g, s).map_err(|e| CompileError::Analysis(format!("running the calibration samples: {e}")))
    };
    let (mut agree, mut several) = (0usize, false);
    let mut by_output: Vec<(Vec<f64>, Vec<f64>)> = vec![(vec![], vec![]); float.outputs.len()];
    for s in samples {
        let (f, q) = (run(float, s)?, run(quantized, s)?);
        let mut same = true;
        for (o, (f, q)) in f.iter().zip(&q).enumerate() {
            let (f, q) = (f.to_f64_vec(), q.to_f64_vec());
            if f.len() > 1 {
                several = true;
                same &= argmax(&f) == argmax(&q);
            }
            by_output[o].0.extend(f);
            by_output[o].1.extend(q);
        }
        agree += usize::from(same);
    }
    let relative_mse = by_output
        .iter()
        .map(|(f, q)| {
            let mean = f.iter().sum::<f64>() / f.len().max(1) as f64;
            let var: f64 = f.iter().map(|x| (x - mean).powi(2)).sum();
            let err: f64 = f.iter().zip(q).map(|(a, b)| (a - b).powi(2)).sum();
            if err == 0.0 {
                0.0
            } else {
                err / var.max(f64::MIN_POSITIVE)
            }
        })
        .fold(0.0, f64::max);
    let agreement = several.then(|| agree as f64 / samples.len().max(1) as f64);
    Ok(Fidelity { agreement, relative_mse })
}

fn argmax(v: &[f64]) -> usize {
    v.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |(i, _)| i)
}

/// What [`quantize_within`] chose.
#[derive(Clone, Debug)]
pub struct Chosen {
    /// The integer graph.
    pub quantized: Graph,
    /// The settings that made it.
    pub config: QuantConfig,
    /// How closely it follows the float graph on the calibration samples.
    pub fidelity: Fidelity,
    /// Whether it is within the budget (else it is the most faithful setting tried).
    pub within: bool,
}

/// Quantizes `float` with the cheapest setting from `base` up that keeps within
/// `budget` on `samples`, or the most faithful one when none does.
pub fn quantize_within(
    float: &Graph,
    calib: &Calibration,
    samples: &[Vec<Tensor>],
    base: &QuantConfig,
    budget: Budget,
) -> Result<Chosen, CompileError> {
    let mut best: Option<Chosen> = None;
    for config in ladder(base.clone()) {
        let quantized = quantize(float, calib, samples, &config)?;
        let fidelity = fidelity(float, &quantized, samples)?;
        let within = fidelity.within(budget);
        let better = best.as_ref().is_none_or(|b| closer(&fidelity, &b.fidelity));
        if within || better {
            best = Some(Chosen { quantized, config, fidelity, within });
        }
        if within {
            break;
        }
    }
    let chosen = best.expect("the ladder has a first step");
    if !chosen.within {
        return Ok(chosen);
    }
    narrow_layers(float, calib, samples, chosen, budget)
}

/// Narrowest table read the narrowing tries: a 4-bit table bootstraps on `N = 2048`.
const MIN_NARROW_BITS: u32 = 4;
/// Layers the narrowing tries, the most bootstraps first: each try quantizes and runs
/// the calibration samples again.
const MAX_NARROW_LAYERS: usize = 4;

/// Narrows the tables of the layers with the most bootstraps, each to the fewest bits
/// (down to [`MIN_NARROW_BITS`]) that keep the calibration samples within `budget`:
/// under TFHE a layer's bootstrap cost falls with its width (key partitions give each
/// layer its own set), and one global width keeps every layer as wide as the most
/// sensitive one needs.
fn narrow_layers(
    float: &Graph,
    calib: &Calibration,
    samples: &[Vec<Tensor>],
    mut chosen: Chosen,
    budget: Budget,
) -> Result<Chosen, CompileError> {
    let floor = (1usize << MIN_NARROW_BITS) - 2;
    let mut layers: Vec<(String, usize)> = Vec::new();
    for node in &chosen.quantized.nodes {
        let secc_ir::Op::Lut(lut) = &node.op else { continue };
        if lut.table_len() <= floor || !float.nodes.iter().any(|n| n.name == node.name) {
            continue;
        }
        match layers.iter_mut().find(|(n, _)| *n == node.name) {
            Some((_, count)) => *count += node.ty.shape.numel(),
            None => layers.push((node.name.clone(), node.ty.shape.numel())),
        }
    }
    layers.sort_by(|a, b| b.1.cmp(&a.1));
    // The calibration samples are few, and what is within the budget on them drifts on
    // others: narrowing may flip no more argmaxes and spend half the squared-error slack
    // the widths left (spending all of it lost 2 points on an int8 QDQ net's test rows).
    let before = chosen.fidelity;
    let slack = |mse: f64| mse <= before.relative_mse + (budget.fraction - before.relative_mse).max(0.0) / 2.0;
    let keeps = |f: &Fidelity| f.within(budget) && f.agreement >= before.agreement && slack(f.relative_mse);
    for (name, _) in layers.into_iter().take(MAX_NARROW_LAYERS) {
        for bits in MIN_NARROW_BITS..chosen.config.table_bits_for(&name) {
            let mut config = chosen.config.clone();
            config.table_bits_of.push((name.clone(), bits));
            let quantized = quantize(float, calib, samples, &config)?;
            let fidelity = fidelity(float, &quantized, samples)?;
            if keeps(&fidelity) {
                chosen = Chosen { quantized, config, fidelity, within: true };
                break;
            }
        }
    }
    Ok(chosen)
}

/// Whether `a` follows the float model more closely than `b`: argmax first.
fn closer(a: &Fidelity, b: &Fidelity) -> bool {
    match (a.agreement, b.agreement) {
        (Some(x), Some(y)) if x != y => x > y,
        _ => a.relative_mse < b.relative_mse,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ladder_widens_up_to_the_activation_bits() {
        let steps: Vec<_> =
            ladder(QuantConfig::default()).map(|c| (c.weight_bits, c.table_bits, c.tree_bits)).collect();
        assert_eq!(steps, [(8, 5, 4), (10, 5, 4), (10, 6, 5), (10, 7, 6), (10, 8, 7)]);
        let narrow: Vec<_> = ladder(QuantConfig::with_bits(6)).map(|c| c.table_bits).collect();
        assert_eq!(narrow, [5, 5, 6, 6, 6]);
        assert_eq!(ladder(QuantConfig::default()).last().unwrap().max_weight_norm, Some(248.0));
    }

    #[test]
    fn the_budget_bounds_both_measures() {
        let b = Budget::default();
        assert!(Fidelity { agreement: Some(0.99), relative_mse: 0.01 }.within(b));
        assert!(Fidelity { agreement: None, relative_mse: 0.0025 }.within(b));
        assert!(!Fidelity { agreement: None, relative_mse: 0.01 }.within(b));
        assert!(!Fidelity { agreement: Some(0.98), relative_mse: 0.0 }.within(b));
        assert!(!Fidelity { agreement: None, relative_mse: 0.02 }.within(b));
        // Argmaxes that agree on the calibration samples are not enough: logits that
        // moved this much flip test samples (a torch MLP: 100% agreement, 4 points lost).
        assert!(!Fidelity { agreement: Some(1.0), relative_mse: 0.05 }.within(b));
    }
}
