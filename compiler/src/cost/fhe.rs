//! Predicted time of one TFHE inference: the client encrypts every input value and
//! sends the ciphertexts, the server runs each layer's bootstraps in waves of `cores`
//! (a layer's bootstraps are independent; layers are not) and the levelled
//! multiply-accumulates spread over the cores, the client receives and decrypts the
//! outputs. Key generation is a one-off and not counted.

use super::machine::{FheSetCosts, MachineCosts};
use super::{Network, Prediction};
use secc_ir::lowered::fhe::Circuit;
use secc_ir::{Graph, ValueId};

/// Bootstraps of each layer (each `lut` node), in evaluation order, with its partition.
pub fn bootstrap_layers(graph: &Graph, circuit: &Circuit) -> Vec<(usize, usize)> {
    let layers = graph.nodes.iter().zip(&circuit.luts).enumerate().filter(|(_, (_, plan))| plan.is_some());
    layers.map(|(i, (node, _))| (node.ty.shape.numel(), circuit.partition_of(i))).collect()
}

/// Bootstraps per inference on each key partition's set.
pub fn bootstraps_per_partition(graph: &Graph, circuit: &Circuit) -> Vec<usize> {
    let mut per = vec![0usize; circuit.params.len()];
    for (count, p) in bootstrap_layers(graph, circuit) {
        per[p] += count;
    }
    per
}

/// Elements the client encrypts and decrypts.
pub fn client_values(graph: &Graph, circuit: &Circuit) -> (usize, usize) {
    let count = |values: &[u32]| values.iter().map(|&v| graph.ty(ValueId(v)).shape.numel()).sum();
    (count(&circuit.inputs), count(&circuit.outputs))
}

/// Predicts one inference of `graph` (quantized) under `circuit` on `network`.
pub fn predict_fhe(graph: &Graph, circuit: &Circuit, costs: &MachineCosts, network: Network) -> Prediction {
    let sets: Vec<(FheSetCosts, bool)> = circuit.params.iter().map(|s| costs.fhe_set(&s.name, s.cost)).collect();
    // The client's side runs on the partition of its encryptions.
    let client = circuit.inputs.first().map_or(0, |&v| circuit.partition_of(v as usize));
    let set = &sets[client].0;
    let (inputs, outputs) = client_values(graph, circuit);
    let layers = bootstrap_layers(graph, circuit);
    let bootstraps: f64 = layers.iter().map(|&(n, p)| n.div_ceil(costs.cores) as f64 * sets[p].0.pbs_wave_ms).sum();
    let mut p = Prediction::of(vec![
        ("encrypt", (set.inference_us + inputs as f64 * set.encrypt_us) / 1e3),
        ("bootstraps", bootstraps),
        ("levelled", circuit.stats.levelled_macs as f64 * set.mac_ns / 1e6 / costs.cores as f64),
        ("decrypt", outputs as f64 * set.decrypt_us / 1e3),
        ("network", network.rtt_ms + network.transfer_ms((inputs + outputs) as u64 * set.ciphertext_bytes)),
    ]);
    let uncalibrated: Vec<&str> = circuit
        .params
        .iter()
        .zip(&sets)
        .filter(|(_, (_, scaled))| *scaled)
        .map(|(s, _)| short_set_name(&s.name))
        .collect();
    if !uncalibrated.is_empty() {
        p.caveat = Some(format!("{} not calibrated: scaled by catalog cost", uncalibrated.join(", ")));
    }
    p
}

/// `MESSAGE_1_CARRY_4` out of `V1_6_PARAM_MESSAGE_1_CARRY_4_KS_PBS_GAUSSIAN_2M128`.
pub fn short_set_name(name: &str) -> &str {
    let s = name.trim_start_matches("V1_6_PARAM_");
    s.find("_KS_PBS").map_or(s, |i| &s[..i])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cost::machine::MpcCosts;
    use secc_ir::lowered::fhe::{catalog, CircuitStats, FheLut};
    use secc_ir::ops::{Dequantize, Input, Lut, Quantize};
    use secc_ir::{Op, Quant, Shape, TensorType};

    /// x[1,5] → quantize → lut → dequantize: 5 inputs, 5 bootstraps, 5 outputs.
    fn lut_graph() -> (Graph, Circuit) {
        let mut g = Graph::new("t");
        let x = g.push(Op::Input(Input { index: 0, ty: TensorType::f32(Shape(vec![1, 5])) }), vec![], "x").unwrap();
        let quant = Quant::per_tensor(0.1, 0);
        let q = g.push(Op::Quantize(Quantize { quant: quant.clone(), lo: -8, hi: 7 }), vec![x], "q").unwrap();
        let lut =
            Lut { shift: 0, base: -8, tables: vec![(0..16).collect()], table_of: vec![], quant: Some(quant.clone()) };
        let l = g.push(Op::Lut(lut), vec![q], "l").unwrap();
        let d = g.push(Op::Dequantize(Dequantize { quant }), vec![l], "d").unwrap();
        g.outputs.push(d);
        let params = catalog(-128).into_iter().find(|p| p.name.contains("MESSAGE_2_CARRY_2_")).unwrap();
        let mut luts = vec![None; 4];
        luts[2] = Some(FheLut { precision: 4, offset: 0, norm: 1.0 });
        let stats = CircuitStats { pbs: 5, widest_table: None, max_norm: None, levelled_macs: 1000 };
        let circuit = Circuit {
            graph_digest: [0; 32],
            params: vec![params],
            partition: Vec::new(),
            log_delta: vec![None; 4],
            luts,
            linear: vec![None; 4],
            inputs: vec![q.0],
            outputs: vec![l.0],
            stats,
        };
        (g, circuit)
    }

    fn costs(name: &str) -> MachineCosts {
        MachineCosts {
            machine: "test".into(),
            measured: "never".into(),
            cores: 2,
            fhe: vec![FheSetCosts {
                name: name.into(),
                catalog_cost: 110,
                pbs_wave_ms: 10.0,
                mac_ns: 100.0,
                inference_us: 30.0,
                encrypt_us: 20.0,
                decrypt_us: 2.0,
                ciphertext_bytes: 1000,
            }],
            mpc: MpcCosts { round_us: 30.0, byte_ns: 3.0, mac_ns: 1.0 },
        }
    }

    #[test]
    fn bootstraps_run_in_waves_of_cores_and_the_network_carries_every_ciphertext() {
        let (g, c) = lut_graph();
        assert_eq!(bootstrap_layers(&g, &c), vec![(5, 0)]);
        assert_eq!(client_values(&g, &c), (5, 5));
        let k = costs(&c.params[0].name);
        let p = predict_fhe(&g, &c, &k, Network::LOOPBACK);
        // 30 µs + 5 × 20 µs + 3 waves × 10 ms + 1000 × 100 ns / 2 + 5 × 2 µs
        assert!((p.total_ms - (0.13 + 30.0 + 0.05 + 0.01)).abs() < 1e-9, "{p}");
        assert!(p.caveat.is_none());
        let lan = predict_fhe(&g, &c, &k, Network::LAN);
        // + 0.2 ms RTT + 10 ciphertexts of 1000 bytes at 125 MB/s
        assert!((lan.total_ms - p.total_ms - (0.2 + 0.08)).abs() < 1e-9, "{lan}");
        let other = predict_fhe(&g, &c, &costs("ANOTHER_SET"), Network::LOOPBACK);
        assert!(other.caveat.unwrap().contains("MESSAGE_2_CARRY_2 not calibrated"));
    }
}
