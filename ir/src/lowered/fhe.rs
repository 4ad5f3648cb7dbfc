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

pub mod noise;

/// A classic KS-PBS parameter set: a tfhe-rs catalog entry, or one searched for the
/// circuit's tables ([`ParamSet::searched`]), with what the circuit needs to know about it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParamSet {
    /// The tfhe-rs constant's name (`V1_6_PARAM_MESSAGE_1_CARRY_3_KS_PBS_GAUSSIAN_2M128`),
    /// or a searched set's, which spells its numbers ([`ParamSet::searched`]).
    pub name: String,
    /// Message bits of the set (a searched set: the widest table it serves).
    pub message_bits: u32,
    /// Carry bits of the set: message + carry is the precision it is tuned for.
    pub carry_bits: u32,
    /// The weight 2-norm over bootstrap outputs the set is tuned to absorb at full precision.
    pub norm_budget: f64,
    /// tfhe-rs's "algorithmic cost" of one keyswitch + bootstrap (relative; a searched
    /// set: [`noise::cost`], the same measure).
    pub cost: u32,
    /// log2 of the failure probability of one bootstrap (a searched set: the bound it meets).
    pub log2_p_fail: i32,
    /// Security level in bits (IND-CPA, lattice estimator).
    pub security_bits: u32,
    /// The numbers the keys and ciphertexts are made from.
    pub lattice: Lattice,
    /// Searched (served by the noise model) rather than tfhe-rs's (served by its norm budget).
    pub searched: bool,
}

/// The numbers of a KS-PBS parameter set: LWE dimension `n`, GLWE dimension `k` and
/// polynomial size `N`, the decompositions of the bootstrapping key (PBS) and the
/// keyswitching key (KS), and the Gaussian noise of the small (LWE) and big (GLWE)
/// keys' encryptions, as fractions of the torus. The modulus is the native 2^64.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Lattice {
    /// `n`, the small key's dimension.
    pub lwe_dimension: u32,
    /// `k`.
    pub glwe_dimension: u32,
    /// `N`.
    pub polynomial_size: u32,
    /// `ℓ_pbs`.
    pub pbs_level: u32,
    /// `log2 B_pbs`.
    pub pbs_base_log: u32,
    /// `ℓ_ks`.
    pub ks_level: u32,
    /// `log2 B_ks`.
    pub ks_base_log: u32,
    /// σ of encryptions under the small key (the keyswitching key's).
    pub lwe_std: f64,
    /// σ of encryptions under the GLWE key (the bootstrapping key's, fresh inputs').
    pub glwe_std: f64,
}

impl Lattice {
    /// Checks every number is in the range the runtime (and tfhe-rs, which asserts)
    /// handles: a crafted artifact must fail here, not in key generation.
    pub fn check(&self) -> Result<(), String> {
        let l = self;
        let decomposition = |level: u32, base_log: u32| level >= 1 && base_log >= 1 && level * base_log <= 64;
        let std = |s: f64| s.is_finite() && s > 0.0 && s < 0.5;
        let checks = [
            ((450..=4096).contains(&l.lwe_dimension), "LWE dimension outside 450..=4096"),
            ((1..=8).contains(&l.glwe_dimension), "GLWE dimension outside 1..=8"),
            (
                l.polynomial_size.is_power_of_two() && (256..=65536).contains(&l.polynomial_size),
                "polynomial size not a power of 2 in 2^8..=2^16",
            ),
            (l.glwe_dimension * l.polynomial_size <= 1 << 17, "GLWE dimension × polynomial size beyond 2^17"),
            (l.pbs_level <= 64 && decomposition(l.pbs_level, l.pbs_base_log), "PBS decomposition beyond 64 bits"),
            (l.ks_level <= 64 && decomposition(l.ks_level, l.ks_base_log), "KS decomposition beyond 64 bits"),
            (std(l.lwe_std) && std(l.glwe_std), "noise not a positive fraction of the torus"),
        ];
        match checks.iter().find(|(ok, _)| !ok) {
            Some((_, why)) => Err(format!("parameter set: {why}")),
            None => Ok(()),
        }
    }

    /// `k·N`: the dimension of the big LWE key the GLWE key flattens to.
    pub fn big_dimension(&self) -> u32 {
        self.glwe_dimension * self.polynomial_size
    }

    /// Whether both keys' noise is at or above the 128-bit curve's floor for their dimension.
    pub fn secure(&self) -> bool {
        let floor = |dimension: u32| noise::secure_std(dimension).unwrap_or(f64::INFINITY);
        self.lwe_std >= floor(self.lwe_dimension) && self.glwe_std >= floor(self.glwe_dimension * self.polynomial_size)
    }
}

impl ParamSet {
    /// Total bits (message + carry) the set is tuned for.
    pub fn bits(&self) -> u32 {
        self.message_bits + self.carry_bits
    }

    /// Whether a table reading `precision` bits of an input whose noise is `norm` times
    /// a bootstrap output's stays within the set's failure probability. A catalog set
    /// goes by tfhe-rs's norm budget: reading fewer bits than the set's total leaves
    /// `2^(bits − precision)` times the noise room. A searched set goes by the noise model.
    pub fn serves(&self, precision: u32, norm: f64) -> bool {
        if precision > self.bits() {
            return false;
        }
        if self.searched {
            let own = noise::bootstrap_variance(&self.lattice);
            self.reads(precision, norm, own, self.lattice.big_dimension())
        } else {
            norm <= self.norm_budget * 2f64.powi((self.bits() - precision) as i32)
        }
    }

    /// Whether a table reading `precision` bits of an input whose noise is `norm` times
    /// `unit` (a variance), keyswitched from a big key of dimension `big`, stays within
    /// the set's failure probability by the noise model.
    pub fn reads(&self, precision: u32, norm: f64, unit: f64, big: u32) -> bool {
        precision <= self.bits()
            && noise::input_variance_from(&self.lattice, norm, unit, big)
                <= noise::max_input_variance(precision, self.log2_p_fail as f64)
    }

    /// The searched set of `lattice` (its dimensions and decompositions; the noise is the
    /// 128-bit curve's floor) for tables of up to `bits` bits at failure probability
    /// `2^log2_p_fail`. `None` when the dimensions are off the curve or out of range, or
    /// a fresh encryption is noisier than the lowering assumes.
    pub fn searched(lattice: Lattice, bits: u32, log2_p_fail: i32) -> Option<ParamSet> {
        let lattice = Lattice {
            lwe_std: noise::secure_std(lattice.lwe_dimension)?,
            glwe_std: noise::secure_std(lattice.glwe_dimension.checked_mul(lattice.polynomial_size)?)?,
            ..lattice
        };
        lattice.check().ok()?;
        if !noise::fresh_within_bound(&lattice) {
            return None;
        }
        let l = &lattice;
        let name = format!(
            "SECC_{bits}B_N{}_K{}_n{}_PBS{}X{}_KS{}X{}_2M{}",
            l.polynomial_size,
            l.glwe_dimension,
            l.lwe_dimension,
            l.pbs_level,
            l.pbs_base_log,
            l.ks_level,
            l.ks_base_log,
            log2_p_fail.unsigned_abs()
        );
        let norm_budget = noise::norm_budget(l, bits, log2_p_fail as f64);
        Some(ParamSet {
            name,
            message_bits: bits,
            carry_bits: 0,
            norm_budget,
            cost: noise::cost(l).round() as u32,
            log2_p_fail,
            security_bits: 128,
            lattice,
            searched: true,
        })
    }
}

/// The catalog: `(message bits, carry bits, 2-norm budget, algorithmic cost, [n, k, N,
/// ℓ_pbs, log2 B_pbs, ℓ_ks, log2 B_ks], σ_lwe, σ_glwe)` of tfhe-rs 1.8's `v1_6` classic
/// Gaussian KS-PBS sets, as their doc comments and constants state, by p_fail.
pub fn catalog(log2_p_fail: i32) -> Vec<ParamSet> {
    type Row = (u32, u32, f64, u32, [u32; 7], f64, f64);
    let (rows, suffix): (&[Row], &str) = match log2_p_fail {
        -64 => (
            &[
                (1, 1, 3.0, 60, [781, 4, 512, 1, 23, 3, 4], 8.868480365938865e-6, 2.845267479601915e-15),
                (2, 2, 5.0, 106, [833, 1, 2048, 1, 23, 5, 3], 3.6158408373309336e-6, 2.845267479601915e-15),
                (3, 3, 9.0, 833, [977, 1, 8192, 2, 15, 6, 3], 3.0144389706858286e-7, 2.168404344971009e-19),
                (4, 4, 17.0, 5893, [1110, 1, 32768, 3, 11, 11, 2], 3.038278019865525e-8, 2.168404344971009e-19),
            ],
            "2M64",
        ),
        -40 => (
            &[
                (1, 1, 3.0, 44, [750, 3, 512, 1, 17, 3, 4], 1.5140301927925663e-5, 1.9524392655548086e-11),
                (2, 2, 5.0, 101, [796, 1, 2048, 1, 23, 5, 3], 6.8462551852215656e-6, 2.845267479601915e-15),
                (3, 3, 9.0, 788, [925, 1, 8192, 2, 15, 6, 3], 7.393437385253331e-7, 2.168404344971009e-19),
                (4, 4, 17.0, 4095, [1096, 1, 32768, 2, 15, 5, 4], 3.8683927681857106e-8, 2.168404344971009e-19),
            ],
            "2M40",
        ),
        _ => (
            &[
                (1, 0, 1.0, 40, [747, 6, 256, 1, 17, 3, 4], 1.5944604865450687e-5, 1.9524392655548086e-11),
                (1, 1, 3.0, 64, [837, 4, 512, 1, 23, 3, 5], 3.3747142481837397e-6, 2.845267479601915e-15),
                (1, 2, 7.0, 79, [885, 2, 1024, 1, 23, 3, 5], 1.4742441118914234e-6, 2.845267479601915e-15),
                (1, 3, 15.0, 119, [904, 1, 2048, 1, 23, 6, 3], 1.0621869847945622e-6, 2.845267479601915e-15),
                (1, 4, 31.0, 373, [930, 1, 4096, 2, 15, 6, 3], 6.782362904013915e-7, 2.168404344971009e-19),
                (1, 5, 63.0, 878, [1011, 1, 8192, 2, 15, 7, 3], 1.6766481861068427e-7, 2.168404344971009e-19),
                (1, 6, 127.0, 2675, [1060, 1, 16384, 3, 11, 11, 2], 7.199150706330062e-8, 2.168404344971009e-19),
                (1, 7, 255.0, 14472, [1104, 1, 65536, 4, 9, 7, 3], 3.369659065698222e-8, 2.168404344971009e-19),
                (2, 0, 1.0, 49, [846, 3, 512, 1, 17, 3, 5], 2.889344520786227e-6, 1.9524392655548086e-11),
                (2, 1, 2.0, 79, [884, 2, 1024, 1, 23, 3, 5], 1.4999005934396873e-6, 2.845267479601915e-15),
                (2, 2, 5.0, 110, [866, 1, 2048, 1, 23, 5, 3], 2.046151696979124e-6, 2.845267479601915e-15),
                (2, 3, 10.0, 373, [930, 1, 4096, 2, 15, 6, 3], 6.782362904013915e-7, 2.168404344971009e-19),
                (2, 4, 21.0, 875, [1007, 1, 8192, 2, 15, 7, 3], 1.796446316728823e-7, 2.168404344971009e-19),
                (2, 5, 42.0, 2662, [1055, 1, 16384, 3, 11, 11, 2], 7.84777675974155e-8, 2.168404344971009e-19),
                (2, 6, 85.0, 11765, [1108, 1, 65536, 3, 11, 7, 3], 3.144949396867639e-8, 2.168404344971009e-19),
                (3, 0, 1.0, 79, [884, 2, 1024, 1, 23, 3, 5], 1.4999005934396873e-6, 2.845267479601915e-15),
                (3, 1, 2.0, 110, [863, 1, 2048, 1, 23, 5, 3], 2.154850045818961e-6, 2.845267479601915e-15),
                (3, 2, 4.0, 281, [928, 1, 4096, 1, 23, 9, 2], 7.020485941329387e-7, 2.168404344971009e-19),
                (3, 3, 9.0, 874, [1006, 1, 8192, 2, 15, 7, 3], 1.8277101294215978e-7, 2.168404344971009e-19),
                (3, 4, 18.0, 2104, [1070, 1, 16384, 2, 15, 11, 2], 6.058296361594748e-8, 2.168404344971009e-19),
                (3, 5, 36.0, 11669, [1099, 1, 65536, 3, 11, 7, 3], 3.673257191405497e-8, 2.168404344971009e-19),
                (4, 0, 1.0, 110, [863, 1, 2048, 1, 23, 5, 3], 2.154850045818961e-6, 2.845267479601915e-15),
                (4, 1, 2.0, 260, [935, 1, 4096, 1, 23, 6, 3], 6.221794297398788e-7, 2.168404344971009e-19),
                (4, 2, 4.0, 874, [1006, 1, 8192, 2, 15, 7, 3], 1.8277101294215978e-7, 2.168404344971009e-19),
                (4, 3, 8.0, 2079, [1057, 1, 16384, 2, 15, 11, 2], 7.581593413770833e-8, 2.168404344971009e-19),
                (4, 4, 17.0, 11659, [1098, 1, 65536, 3, 11, 7, 3], 3.73718341270979e-8, 2.168404344971009e-19),
                (5, 0, 1.0, 259, [931, 1, 4096, 1, 23, 6, 3], 6.666347503085657e-7, 2.168404344971009e-19),
                (5, 1, 2.0, 874, [1006, 1, 8192, 2, 15, 7, 3], 1.8277101294215978e-7, 2.168404344971009e-19),
                (5, 2, 4.0, 2075, [1055, 1, 16384, 2, 15, 11, 2], 7.84777675974155e-8, 2.168404344971009e-19),
                (5, 3, 8.0, 9046, [1113, 1, 65536, 2, 15, 7, 3], 2.8850164020946995e-8, 2.168404344971009e-19),
                (6, 0, 1.0, 874, [1006, 1, 8192, 2, 15, 7, 3], 1.8277101294215978e-7, 2.168404344971009e-19),
                (6, 1, 2.0, 2075, [1055, 1, 16384, 2, 15, 11, 2], 7.84777675974155e-8, 2.168404344971009e-19),
                (6, 2, 4.0, 8949, [1101, 1, 65536, 2, 15, 7, 3], 3.5486665054375844e-8, 2.168404344971009e-19),
                (7, 0, 1.0, 2075, [1055, 1, 16384, 2, 15, 11, 2], 7.84777675974155e-8, 2.168404344971009e-19),
                (7, 1, 2.0, 8932, [1099, 1, 65536, 2, 15, 7, 3], 3.673257191405497e-8, 2.168404344971009e-19),
                (8, 0, 1.0, 8924, [1098, 1, 65536, 2, 15, 7, 3], 3.73718341270979e-8, 2.168404344971009e-19),
            ],
            "2M128",
        ),
    };
    let p_fail = if suffix == "2M128" { -128 } else { log2_p_fail };
    rows.iter()
        .map(
            |&(
                m,
                c,
                norm_budget,
                cost,
                [n, k, big_n, pbs_level, pbs_base_log, ks_level, ks_base_log],
                lwe_std,
                glwe_std,
            )| {
                ParamSet {
                    name: format!("V1_6_PARAM_MESSAGE_{m}_CARRY_{c}_KS_PBS_GAUSSIAN_{suffix}"),
                    message_bits: m,
                    carry_bits: c,
                    norm_budget,
                    cost,
                    log2_p_fail: p_fail,
                    security_bits: 128,
                    lattice: Lattice {
                        lwe_dimension: n,
                        glwe_dimension: k,
                        polynomial_size: big_n,
                        pbs_level,
                        pbs_base_log,
                        ks_level,
                        ks_base_log,
                        lwe_std,
                        glwe_std,
                    },
                    searched: false,
                }
            },
        )
        .collect()
}

/// The cheapest catalog set at `2^log2_p_fail` that serves every `(precision, norm)`
/// table demand.
pub fn catalog_choice(demands: &[(u32, f64)], log2_p_fail: i32) -> Option<ParamSet> {
    catalog(log2_p_fail).into_iter().filter(|s| demands.iter().all(|&(p, n)| s.serves(p, n))).min_by_key(|s| s.cost)
}

/// The largest noise, as a variance, a value the client decrypts at `2^log_delta` may
/// carry: decryption rounds at half of `Δ`, as a table reads its boxes, so it is exact
/// within the same failure probability.
pub fn decryption_bound(log_delta: u32, log2_p_fail: i32) -> f64 {
    noise::max_input_variance(63 - log_delta.min(63), log2_p_fail as f64)
}

/// The bootstrap output noise tfhe-rs's catalog leaves for these table demands: its
/// choice's, or the widest catalog set's when none serves them.
pub fn output_noise_bound(demands: &[(u32, f64)], log2_p_fail: i32) -> f64 {
    let reference =
        catalog_choice(demands, log2_p_fail).or_else(|| catalog(log2_p_fail).into_iter().max_by_key(|s| s.bits()));
    reference.map_or(0.0, |s| noise::bootstrap_variance(&s.lattice))
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
    /// The parameter set of each key partition (Concrete's multi-parameter circuits):
    /// values summed by levelled ops share a partition, so its keys; a table keyswitches
    /// its input from the input's partition's big key to its own partition's small key
    /// and bootstraps on its own partition's set.
    pub params: Vec<ParamSet>,
    /// The partition of every encrypted value; empty when there is one partition.
    pub partition: Vec<Option<u32>>,
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

impl Circuit {
    /// The partition of encrypted value `v` (0 in a one-partition circuit).
    pub fn partition_of(&self, v: usize) -> usize {
        self.partition.get(v).copied().flatten().unwrap_or(0) as usize
    }

    /// The noise unit: the variance of the noisiest bootstrap output of a partition
    /// with tables. Table input norms count in its standard deviations.
    pub fn noise_unit(&self) -> f64 {
        let mut unit = 0f64;
        for (i, _) in self.luts.iter().enumerate().filter(|(_, l)| l.is_some()) {
            unit = unit.max(noise::bootstrap_variance(&self.params[self.partition_of(i)].lattice));
        }
        unit
    }

    /// Whether table `plan`, on partition `own`'s set, reads an input from partition
    /// `from` within the failure probability. One partition goes by [`ParamSet::serves`]
    /// (a catalog set by its norm budget); partitions by the noise model, each set's
    /// own keyswitch from the input's big key, norms in `unit`s ([`Circuit::noise_unit`]).
    pub fn serves(&self, plan: &FheLut, own: usize, from: usize, unit: f64) -> bool {
        let (Some(set), Some(input)) = (self.params.get(own), self.params.get(from)) else { return false };
        if self.params.len() == 1 {
            return set.serves(plan.precision, plan.norm);
        }
        set.searched && set.reads(plan.precision, plan.norm, unit, input.lattice.big_dimension())
    }

    /// The first value the client encrypts under a partition whose fresh noise is more
    /// than the [`noise::FRESH_VARIANCE`] of `unit` a partitioned circuit counts it as
    /// (one set keeps it by construction: [`ParamSet::searched`], the catalog's test).
    pub fn noisy_encryption(&self, unit: f64) -> Option<u32> {
        let noisy =
            |v: u32| self.params[self.partition_of(v as usize)].lattice.glwe_std.powi(2) > noise::FRESH_VARIANCE * unit;
        self.inputs.iter().copied().find(|&v| noisy(v))
    }

    /// The keys the circuit needs: `graph` is the quantized graph it was lowered from.
    pub fn key_layout(&self, graph: &crate::Graph) -> KeyLayout {
        let mut keyswitches = Vec::new();
        for (i, _) in self.luts.iter().enumerate().filter(|(_, l)| l.is_some()) {
            let from = graph.node(crate::ValueId(i as u32)).inputs[0].index();
            let pair = (self.partition_of(from) as u32, self.partition_of(i) as u32);
            if !keyswitches.contains(&pair) {
                keyswitches.push(pair);
            }
        }
        keyswitches.sort_unstable();
        match self.params.as_slice() {
            // One set keeps its one key pair whether or not the circuit bootstraps.
            [one] => KeyLayout::single(one.clone()),
            _ => KeyLayout { sets: self.params.clone(), keyswitches },
        }
    }
}

/// The keys of a circuit: a small LWE key and a GLWE key per partition, a keyswitching
/// key from one partition's big key to another's small key for each pair a table
/// reads across, and a bootstrapping key for each partition a table bootstraps on
/// (every keyswitch's target).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyLayout {
    /// Each partition's set.
    pub sets: Vec<ParamSet>,
    /// `(from, to)` partition pairs, sorted.
    pub keyswitches: Vec<(u32, u32)>,
}

impl KeyLayout {
    /// The keys of one set: a keyswitching and a bootstrapping key on it.
    pub fn single(set: ParamSet) -> KeyLayout {
        KeyLayout { sets: vec![set], keyswitches: vec![(0, 0)] }
    }

    /// Names the keys: the set's name for one partition (keys made before partitions
    /// read the same), else every set and keyswitch.
    pub fn name(&self) -> String {
        match (self.sets.as_slice(), self.keyswitches.as_slice()) {
            ([one], [] | [(0, 0)]) => one.name.clone(),
            _ => {
                let sets: Vec<&str> = self.sets.iter().map(|s| s.name.as_str()).collect();
                let ks: Vec<String> = self.keyswitches.iter().map(|(a, b)| format!("{a}>{b}")).collect();
                format!("{} / ks {}", sets.join(" + "), ks.join(","))
            }
        }
    }

    /// Whether partition `p` bootstraps (some table keyswitches into it).
    pub fn bootstraps(&self, p: usize) -> bool {
        self.keyswitches.iter().any(|&(_, to)| to as usize == p)
    }

    /// Checks every set and that the keyswitches name partitions of the layout.
    pub fn check(&self) -> Result<(), String> {
        super::verify_sets(&self.sets).map_err(|e| e.to_string())?;
        let n = self.sets.len() as u32;
        if self.keyswitches.iter().any(|&(a, b)| a >= n || b >= n) || !self.keyswitches.is_sorted() {
            return Err("a keyswitch names a partition the layout lacks, or they are out of order".into());
        }
        if self.keyswitches.windows(2).any(|w| w[0] == w[1]) {
            return Err("a keyswitch comes twice".into());
        }
        Ok(())
    }
}

/// Most partitions a circuit may have: each costs the client a key pair and the server
/// a bootstrapping key.
pub const MAX_PARTITIONS: usize = 16;

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
