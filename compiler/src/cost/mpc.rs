//! Predicted time of one run of an SMPC plan: the stack's own cost of every round and
//! every byte and the local multiply-accumulates (measured on loopback, where the link
//! itself is free), plus what a real network adds: its round-trip time per round and
//! the busiest party's bytes over its bandwidth. Connection set-up is not counted.

use super::machine::MachineCosts;
use super::{Network, Prediction};
use secc_ir::lowered::mpc::{Plan, StepOp};

/// Multiply-accumulates of one sample's linear steps (a weight or a second shared
/// operand times a shared input).
pub fn plan_macs(plan: &Plan) -> u64 {
    plan.steps
        .iter()
        .map(|s| match &s.op {
            StepOp::MatMul { m, k, n, .. } => (m * k * n) as u64,
            StepOp::MatMulShares { batch, m, k, n, .. } => (batch * m * k * n) as u64,
            StepOp::Conv { geometry: g, .. } => {
                let per_output: usize = g.kernel[1..].iter().product();
                (g.output.iter().product::<usize>() * per_output) as u64
            }
            _ => 0,
        })
        .sum()
}

/// Predicts one run of `plan` on `batch` samples on `network`.
pub fn predict_mpc(plan: &Plan, batch: usize, costs: &MachineCosts, network: Network) -> Prediction {
    let cost = plan.total(batch);
    let rounds = cost.rounds as f64;
    let all_bytes: u64 = cost.bytes.iter().sum();
    let busiest = cost.bytes.iter().copied().max().unwrap_or(0);
    let c = &costs.mpc;
    Prediction::of(vec![
        ("rounds", rounds * c.round_us / 1e3),
        ("bytes", all_bytes as f64 * c.byte_ns / 1e6),
        ("compute", (plan_macs(plan) * batch as u64) as f64 * c.mac_ns / 1e6),
        ("latency", rounds * network.rtt_ms),
        ("transfer", network.transfer_ms(busiest)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cost::machine::MpcCosts;
    use secc_ir::lowered::mpc::{Roles, Step, WeightSpec};

    /// share x[1,4] and W[4,3] → matmul → trunc → reveal.
    fn plan() -> Plan {
        let step = |op| Step { label: String::new(), op };
        Plan {
            name: "t".into(),
            graph_digest: [0; 32],
            frac_bits: 18,
            roles: Roles::default(),
            input_shape: vec![1, 4],
            output_shape: vec![1, 3],
            weights: vec![WeightSpec { name: "w".into(), len: 12 }],
            weight_values: None,
            regs: 3,
            steps: vec![
                step(StepOp::Share { out: 0, len: 4 }),
                step(StepOp::MatMul { x: 0, w: 0, b: None, m: 1, k: 4, n: 3, out: 1 }),
                step(StepOp::Trunc { x: 1, len: 3, bits: 18, out: 2 }),
                step(StepOp::Reveal { x: 2, len: 3 }),
            ],
            finish: None,
        }
    }

    #[test]
    fn rounds_bytes_and_macs_add_up_and_the_network_adds_latency_and_transfer() {
        let p = plan();
        assert_eq!(plan_macs(&p), 12);
        let cost = p.total(1);
        // share, matmul, trunc (2), reveal; P0 sends the input (32 B), P1 the weights (96 B)
        assert_eq!(cost.rounds, 5);
        assert_eq!(cost.bytes, [32 + 24 + 24 + 24, 96 + 24 + 24 + 24 + 24, 24 + 24]);
        let mut costs = crate::cost::machine::MachineCosts::builtin();
        costs.mpc = MpcCosts { round_us: 30.0, byte_ns: 2.0, mac_ns: 1.0 };
        let local = predict_mpc(&p, 1, &costs, Network::LOOPBACK);
        let bytes = (104 + 192 + 48) as f64;
        assert!((local.total_ms - (5.0 * 0.03 + bytes * 2e-6 + 12e-6)).abs() < 1e-12, "{local}");
        let wan = predict_mpc(&p, 1, &costs, Network::WAN);
        assert!((wan.total_ms - local.total_ms - (5.0 * 40.0 + 192.0 / 12.5e6 * 1e3)).abs() < 1e-9, "{wan}");
    }
}
