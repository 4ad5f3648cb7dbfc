//! The TFHE circuit of a quantized graph.
//!
//! Every integer value between the client's `quantize` and `dequantize` is a tensor of
//! LWE ciphertexts, one per element, encoding the integer `m` as `m · 2^log_delta`
//! (mod 2^64). Linear ops are levelled (cleartext multiplies and plaintext adds over
//! the ciphertexts of all their encrypted operands); each `lut` element is one
//! keyswitch + programmable bootstrap whose input is read at
//! `Δ_acc = 2^(63 − precision − shift)`, so the bootstrap reads exactly the table's
//! index bits and the low `shift` bits are rounded away by the modulus switch for free
//! (approximate rounding); the output is re-encoded at whatever `Δ` its consumers need.
//! A value read at several encodings has the finest; a reader needing a coarser one
//! multiplies it by the power of 2 between them (a linear map's weights include the
//! factor; a bootstrap multiplies its input first).

use crate::ops::LinearMap;
use serde::{Deserialize, Serialize};

/// A tfhe-rs parameter set from its published catalog, with what the circuit needs
/// to know about it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParamSet {
    /// The tfhe-rs constant's name (`V1_6_PARAM_MESSAGE_1_CARRY_3_KS_PBS_GAUSSIAN_2M128`).
    pub name: String,
    /// Message bits of the set.
    pub message_bits: u32,
    /// Carry bits of the set: message + carry is the precision it is tuned for.
    pub carry_bits: u32,
    /// The weight 2-norm over bootstrap outputs the set is tuned to absorb at full precision.
    pub norm_budget: f64,
    /// tfhe-rs's "algorithmic cost" of one keyswitch + bootstrap (relative).
    pub cost: u32,
    /// log2 of the failure probability of one bootstrap.
    pub log2_p_fail: i32,
    /// Security level in bits (IND-CPA, lattice estimator).
    pub security_bits: u32,
}

impl ParamSet {
    /// Total bits (message + carry) the set is tuned for.
    pub fn bits(&self) -> u32 {
        self.message_bits + self.carry_bits
    }

    /// Whether a table reading `precision` bits of an input whose noise is `norm` times
    /// a bootstrap output's stays within the set's failure probability. Reading fewer
    /// bits than the set's total leaves `2^(bits − precision)` times the noise room.
    pub fn serves(&self, precision: u32, norm: f64) -> bool {
        precision <= self.bits() && norm <= self.norm_budget * 2f64.powi((self.bits() - precision) as i32)
    }
}

/// The catalog: `(message bits, carry bits, 2-norm budget, algorithmic cost)` of tfhe-rs
/// 1.8's `v1_6` classic Gaussian KS-PBS sets, as their doc comments state, by p_fail.
pub fn catalog(log2_p_fail: i32) -> Vec<ParamSet> {
    let (rows, suffix): (&[(u32, u32, f64, u32)], &str) = match log2_p_fail {
        -64 => (&[(1, 1, 3.0, 60), (2, 2, 5.0, 106), (3, 3, 9.0, 833), (4, 4, 17.0, 5893)], "2M64"),
        -40 => (&[(1, 1, 3.0, 44), (2, 2, 5.0, 101), (3, 3, 9.0, 788), (4, 4, 17.0, 4095)], "2M40"),
        _ => (
            &[
                (1, 0, 1.0, 40),
                (1, 1, 3.0, 64),
                (1, 2, 7.0, 79),
                (1, 3, 15.0, 119),
                (1, 4, 31.0, 373),
                (1, 5, 63.0, 878),
                (1, 6, 127.0, 2675),
                (1, 7, 255.0, 14472),
                (2, 0, 1.0, 49),
                (2, 1, 2.0, 79),
                (2, 2, 5.0, 110),
                (2, 3, 10.0, 373),
                (2, 4, 21.0, 875),
                (2, 5, 42.0, 2662),
                (2, 6, 85.0, 11765),
                (3, 0, 1.0, 79),
                (3, 1, 2.0, 110),
                (3, 2, 4.0, 281),
                (3, 3, 9.0, 874),
                (3, 4, 18.0, 2104),
                (3, 5, 36.0, 11669),
                (4, 0, 1.0, 110),
                (4, 1, 2.0, 260),
                (4, 2, 4.0, 874),
                (4, 3, 8.0, 2079),
                (4, 4, 17.0, 11659),
                (5, 0, 1.0, 259),
                (5, 1, 2.0, 874),
                (5, 2, 4.0, 2075),
                (5, 3, 8.0, 9046),
                (6, 0, 1.0, 874),
                (6, 1, 2.0, 2075),
                (6, 2, 4.0, 8949),
                (7, 0, 1.0, 2075),
                (7, 1, 2.0, 8932),
                (8, 0, 1.0, 8924),
            ],
            "2M128",
        ),
    };
    let p_fail = if suffix == "2M128" { -128 } else { log2_p_fail };
    rows.iter()
        .map(|&(m, c, norm_budget, cost)| ParamSet {
            name: format!("V1_6_PARAM_MESSAGE_{m}_CARRY_{c}_KS_PBS_GAUSSIAN_{suffix}"),
            message_bits: m,
            carry_bits: c,
            norm_budget,
            cost,
            log2_p_fail: p_fail,
            security_bits: 128,
        })
        .collect()
}

/// How one table is bootstrapped.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FheLut {
    /// Bits the bootstrap reads: `2^precision` boxes cover the whole exact input range.
    pub precision: u32,
    /// The shifted input value read as box 0 (one spare box below the range).
    pub offset: i64,
    /// The noise of the input, in bootstrap-output standard deviations (the weights' 2-norm).
    pub norm: f64,
}

/// Per-circuit figures, shown by `secc inspect`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CircuitStats {
    /// Bootstraps per inference.
    pub pbs: usize,
    /// The widest table input, in bits, and the value of its `lut`.
    pub widest_table: Option<(u32, u32)>,
    /// The largest 2-norm feeding a bootstrap, and the value of its `lut`.
    pub max_norm: Option<(f64, u32)>,
    /// Ciphertext multiply-accumulates per inference (levelled work).
    pub levelled_macs: usize,
}

/// A TFHE circuit over a quantized graph (values are indexed by the graph's value
/// numbers): what the client encrypts and decrypts, each encrypted value's encoding, and
/// how the server computes it (a linear map, or a bootstrap per element).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Circuit {
    /// [`crate::Graph::digest`] of the quantized graph it was lowered from.
    pub graph_digest: [u8; 32],
    /// The parameter set every bootstrap uses.
    pub params: ParamSet,
    /// `log2 Δ` of every encrypted value (`None`: not encrypted: constants, client-side values).
    pub log_delta: Vec<Option<u32>>,
    /// The bootstrap plan of every `lut` value.
    pub luts: Vec<Option<FheLut>>,
    /// The affine map of every levelled value (a linear op or a reshape on ciphertexts),
    /// read off its op's own `eval` once, at compile time.
    pub linear: Vec<Option<LinearMap>>,
    /// The values the client quantizes and encrypts (the `quantize` outputs), in order.
    pub inputs: Vec<u32>,
    /// The values the server returns and the client decrypts (what `dequantize` reads), in order.
    pub outputs: Vec<u32>,
    /// Summary figures.
    pub stats: CircuitStats,
}

/// The encrypted operands a levelled value's [`LinearMap`] reads, laid end to end in
/// that order: the value's distinct operands that have an encoding in `log_delta`.
pub fn map_operands(graph: &crate::Graph, v: crate::ValueId, log_delta: &[Option<u32>]) -> Vec<crate::ValueId> {
    let mut operands = Vec::new();
    for &x in &graph.node(v).inputs {
        if log_delta.get(x.index()).copied().flatten().is_some() && !operands.contains(&x) {
            operands.push(x);
        }
    }
    operands
}

/// The client's side of a circuit whose encodings are `log_delta`: the values it
/// encrypts (encrypted outputs of ops the client computes, `quantize`) and those it
/// decrypts (the encrypted operands of ops it finishes, `dequantize`), each once, in
/// graph order.
pub fn client_values(graph: &crate::Graph, log_delta: &[Option<u32>]) -> (Vec<u32>, Vec<u32>) {
    use crate::ops::{FheLowering, FheRule};
    let encrypted = |v: usize| log_delta.get(v).copied().flatten().is_some();
    let (mut inputs, mut outputs) = (Vec::new(), Vec::new());
    for (i, node) in graph.nodes.iter().enumerate() {
        match (node.op.fhe_lowering(), node.inputs.first()) {
            (FheLowering::ClientEncrypts, _) if encrypted(i) => inputs.push(i as u32),
            (FheLowering::ClientDecrypts, Some(x)) if encrypted(x.index()) && !outputs.contains(&x.0) => {
                outputs.push(x.0)
            }
            _ => {}
        }
    }
    (inputs, outputs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serving_trades_precision_for_noise_room() {
        let s = catalog(-128).into_iter().find(|p| p.name.contains("MESSAGE_1_CARRY_3_")).unwrap();
        assert!(s.serves(4, 15.0) && !s.serves(4, 15.1));
        assert!(s.serves(3, 30.0) && !s.serves(5, 1.0));
    }
}
