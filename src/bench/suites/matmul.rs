//! `x · W` with `x[1, n]` encrypted or shared and `W[n, n]` the model's: linear only, so
//! no bootstrap under TFHE and one round (plus truncation) under SMPC.

use super::{linear, Scale, Workload};

/// One row per size `n`.
pub fn workloads(scale: Scale) -> Vec<Workload> {
    let sizes: &[usize] = match scale {
        Scale::Smoke => &[4],
        Scale::Quick => &[4, 16, 64, 256],
        Scale::Full => &[4, 8, 16, 32, 64, 128, 256],
    };
    sizes.iter().map(|&n| workload(n)).collect()
}

/// `x[1, n] · W[n, n]`, weights of scale `1/√n` so outputs stay of order 1.
pub fn workload(n: usize) -> Workload {
    linear("matmul", format!("x·W, n={n}"), n.to_string(), n as u64, n, n, 1.0 / (n as f64).sqrt(), None)
}
