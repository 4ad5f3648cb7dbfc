//! Linear regression `y = x · w + b` by number of features: under TFHE a levelled sum
//! (no bootstrap), under SMPC a constant number of rounds whatever the features.

use super::{linear, Scale, Workload};

/// One row per number of features.
pub fn workloads(scale: Scale) -> Vec<Workload> {
    let features: &[usize] = match scale {
        Scale::Smoke => &[2],
        Scale::Quick => &[2, 8, 32, 128],
        Scale::Full => &[2, 4, 8, 16, 32, 64, 128],
    };
    features
        .iter()
        .map(|&f| {
            linear(
                "linreg",
                format!("linear regression, {f} features"),
                f.to_string(),
                1000 + f as u64,
                f,
                1,
                2.0,
                Some(0.5),
            )
        })
        .collect()
}
