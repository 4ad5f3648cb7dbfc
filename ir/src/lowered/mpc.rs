//! The SMPC protocol plan: the float IR lowered to a straight-line program of
//! 3-party protocols on replicated shares over Z_2^64 (fixed point, `frac_bits`
//! fractional bits), with the rounds and bytes every step costs each party.
//!
//! A plan is plain data: the compiler writes it (`secc_compiler::lower::mpc`), the
//! runtime (`secc_runtime::mpc`) runs it in each party, and `secc inspect` prints its
//! costs. The costs here are the runtime's exact message schedule (the MPC tests
//! check that the bytes the parties really send equal them), so this module is the
//! one place that states who sends what to whom in each protocol.
//!
//! Only the model owner's plan holds the weights ([`Plan::weight_values`]); the other
//! parties run the same plan with `None` there ([`Plan::weightless`]).

use super::verify::{verify_plan, PlanError, MAX_PLAN_BYTES};
pub use crate::ops::ConvGeometry;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Number of parties.
pub const PARTIES: usize = 3;
/// Bytes of one ring element on the wire.
pub const WORD: u64 = 8;
/// File magic of a serialized plan.
pub const PLAN_MAGIC: &[u8; 8] = b"SECCMPC2";

/// A register: one secret-shared vector.
pub type Reg = usize;

/// Who plays which part. Party ids are 0, 1, 2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Roles {
    /// Shares the input.
    pub data_owner: usize,
    /// Shares the weights; the only party whose plan holds them.
    pub model_owner: usize,
    /// The only party that learns the output.
    pub receiver: usize,
}

impl Default for Roles {
    /// The data owner gets the result; the model owner is another party.
    fn default() -> Self {
        Roles { data_owner: 0, model_owner: 1, receiver: 0 }
    }
}

/// A tensor the model owner shares: a weight matrix or a bias.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WeightSpec {
    /// The IR constant it comes from (`%N` and its ONNX name).
    pub name: String,
    /// Number of elements.
    pub len: usize,
}

/// A compiled protocol plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Model name.
    pub name: String,
    /// [`crate::Graph::digest`] of the float graph it was lowered from: the three
    /// parties' plans of one model carry the same.
    pub graph_digest: [u8; 32],
    /// Fractional bits of the fixed-point encoding `x̃ = round(x · 2^f)`.
    pub frac_bits: u32,
    /// Roles of the parties.
    pub roles: Roles,
    /// Shape of one input sample.
    pub input_shape: Vec<usize>,
    /// Shape of one output.
    pub output_shape: Vec<usize>,
    /// The weights the model owner shares, in order.
    pub weights: Vec<WeightSpec>,
    /// The encoded weights (`W·2^f`, biases `b·2^2f`), in [`Plan::weights`] order;
    /// `None` in every plan but the model owner's.
    pub weight_values: Option<Vec<Vec<i64>>>,
    /// Number of registers.
    pub regs: usize,
    /// The steps, in execution order.
    pub steps: Vec<Step>,
    /// The receiver's part: a float graph of the revealed output (of
    /// [`Plan::output_shape`]) to the model's, run in the clear after the reveal. The
    /// model's final softmax, sigmoid or normalizer: it takes no weights, and what it is
    /// given says no more than what it returns (a softmax determines its logits up to a
    /// shift), as the TFHE client's final activation. `None`: the revealed output is the
    /// model's.
    pub finish: Option<crate::Graph>,
}

impl Plan {
    /// The same plan without the weights: what the other parties run.
    pub fn weightless(&self) -> Plan {
        Plan { weight_values: None, ..self.clone() }
    }

    /// The model's outputs from the revealed ones (samples laid end to end, each of
    /// [`Plan::output_shape`]): [`Plan::finish`] run on each sample.
    pub fn finish_outputs(&self, revealed: Vec<f64>) -> Vec<f64> {
        let Some(g) = &self.finish else { return revealed };
        let shape = ndarray::IxDyn(&self.output_shape);
        revealed
            .chunks(self.output_shape.iter().product())
            .flat_map(|x| {
                let x = ndarray::ArrayD::from_shape_vec(shape.clone(), x.iter().map(|&v| v as f32).collect())
                    .expect("verified: the output shape");
                let y = crate::interp::run_graph(g, &[crate::Tensor::F32(x)]).expect("verified finish graph");
                y.iter().flat_map(crate::Tensor::to_f64_vec).collect::<Vec<_>>()
            })
            .collect()
    }

    /// Costs of one run on `batch` samples, all steps together.
    pub fn total(&self, batch: usize) -> Cost {
        self.steps.iter().fold(Cost::default(), |acc, s| acc.then(&s.cost(self))).scaled(batch)
    }

    /// Serializes the plan: magic, then bincode.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = PLAN_MAGIC.to_vec();
        out.extend(bincode::serialize(self).expect("plans serialize"));
        out
    }

    /// Reads a plan written by [`Plan::to_bytes`] and verifies it ([`verify_plan`]): a
    /// plan comes from another party, and a party runs only what it has checked.
    pub fn from_bytes(bytes: &[u8]) -> Result<Plan, PlanFileError> {
        use bincode::Options;
        let body = bytes.strip_prefix(PLAN_MAGIC.as_slice()).ok_or(PlanFileError::Foreign)?;
        let plan: Plan = bincode::DefaultOptions::new()
            .with_fixint_encoding()
            .with_limit(MAX_PLAN_BYTES)
            .deserialize(body)
            .map_err(|e| PlanFileError::Corrupt(e.to_string()))?;
        verify_plan(&plan)?;
        Ok(plan)
    }
}

/// Why a plan file cannot be run.
#[derive(Debug, thiserror::Error)]
pub enum PlanFileError {
    /// Not a plan at all.
    #[error("not a secc MPC plan (no SECCMPC2 header)")]
    Foreign,
    /// Undecodable, or over [`MAX_PLAN_BYTES`].
    #[error("corrupt MPC plan: {0}")]
    Corrupt(String),
    /// Decoded, but breaks an invariant the parties rely on.
    #[error("invalid MPC plan: {0}")]
    Invalid(#[from] PlanError),
}

/// One step: a protocol applied to registers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// The IR value it computes (`%N "onnx name"`), for messages and `secc inspect`.
    pub label: String,
    /// The protocol.
    pub op: StepOp,
}

impl Step {
    /// What the step costs each party.
    pub fn cost(&self, plan: &Plan) -> Cost {
        self.op.cost(plan)
    }
}

/// Which input elements (by index into one sample) each output element reads, for pooling.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PoolTaps {
    /// Elements of one input sample.
    pub input_len: usize,
    /// For each output element, the input elements of its window (in-image taps only).
    pub taps: Vec<Vec<usize>>,
}

impl PoolTaps {
    /// The pairs compared at each level of the max tournament: level `l` pairs up the
    /// surviving candidates of every window two by two (an odd one out waits).
    pub fn tournament_pairs(&self) -> Vec<usize> {
        pairing_levels(self.taps.iter().map(Vec::len).collect())
    }
}

/// One polynomial piece of a [`Piecewise`] function, on the interval `[lo, hi)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Piece {
    /// Left end (−∞ for the first tail).
    pub lo: f64,
    /// Right end (+∞ for the last tail).
    pub hi: f64,
    /// Affine normalisation `t = scale·x + offset` (scale 1, offset 0: `t = x`).
    pub scale: f64,
    /// See `scale`.
    pub offset: f64,
    /// Coefficients of `p(t) = Σ c_j t^j`, lowest first.
    pub coeffs: Vec<f64>,
}

/// A univariate function as polynomial pieces selected by comparisons with public
/// breakpoints: `y = Σ_k [x ∈ piece k] · p_k(t_k(x))`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Piecewise {
    /// What it approximates (the IR chain), for `secc inspect`.
    pub function: String,
    /// Breakpoints in increasing order; piece `k` lies between breakpoints `k−1` and `k`.
    pub breakpoints: Vec<f64>,
    /// `breakpoints.len() + 1` pieces: a linear tail, the fitted pieces, a linear tail.
    pub pieces: Vec<Piece>,
    /// Largest fit error measured on the fitted range, fixed-point rounding included.
    pub max_error: f64,
}

impl Piecewise {
    /// Highest polynomial degree over the pieces (at least 1).
    pub fn degree(&self) -> usize {
        self.pieces.iter().map(|p| p.coeffs.len().saturating_sub(1)).max().unwrap_or(1).max(1)
    }

    /// Pieces with a normalisation (`t ≠ x`), which need their own truncation.
    pub fn normalised(&self) -> usize {
        self.pieces.iter().filter(|p| p.scale != 1.0 || p.offset != 0.0).count()
    }

    /// The levels of the power computation: level `l` computes `t^(2^(l−1)+1) ..= t^(2^l)`
    /// (at most the degree) from the powers already known; returns how many per level.
    pub fn power_levels(&self) -> Vec<usize> {
        let d = self.degree();
        let mut have = 1;
        let mut levels = Vec::new();
        while have < d {
            let next = (2 * have).min(d);
            levels.push(next - have);
            have = next;
        }
        levels
    }
}

/// A tree ensemble on shares. The model owner shares the feature selection, the
/// bounds and the leaf values; the plan itself shows only the trees' shapes.
///
/// 1. `g = x · S` gathers each comparison's feature (one resharing), `d = g − τ`.
/// 2. One batched MSB of every comparison of the forest: `c_j = [x_f < τ_j]`.
/// 3. Path selection on boolean shares: each leaf ANDs its literals (`c` or `¬c`)
///    in a balanced tree, all leaves of all trees together per level.
/// 4. One bit injection per (leaf, target) multiplies the path bit by the shared leaf
///    value; sums per target plus the base values are local.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ForestPlan {
    /// Features per sample.
    pub features: usize,
    /// Distinct comparisons.
    pub comparisons: usize,
    /// Weight index of the `[features, comparisons]` 0/1 selection (encoded at `2^0`).
    pub select: usize,
    /// Weight index of the bounds `τ` (at `2^f`).
    pub bounds: usize,
    /// Each leaf's literals: (comparison, the value `c` must have).
    pub paths: Vec<Vec<(u32, bool)>>,
    /// The leaf values' (leaf, target) pairs, in the order of weight `values`.
    pub entries: Vec<(u32, u32)>,
    /// Weight index of the leaf values (at `2^f`, already divided for `AVERAGE`).
    pub values: usize,
    /// Outputs per sample.
    pub targets: usize,
    /// Weight index of the base values (at `2^f`).
    pub base: usize,
}

impl ForestPlan {
    /// ANDs per level of the path selection: level `l` pairs up each leaf's remaining
    /// literals two by two (an odd one out waits).
    pub fn and_levels(&self) -> Vec<usize> {
        pairing_levels(self.paths.iter().map(Vec::len).collect())
    }
}

/// Reducing groups of `alive` items pairwise, level by level: how many pairs each level has.
fn pairing_levels(mut alive: Vec<usize>) -> Vec<usize> {
    let mut levels = Vec::new();
    while alive.iter().any(|&a| a > 1) {
        levels.push(alive.iter().map(|a| a / 2).sum());
        alive.iter_mut().for_each(|a| *a = a.div_ceil(2));
    }
    levels
}

/// An elementwise function of two shared registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PairOp {
    /// `a + b`: local, at the operands' scale.
    Add,
    /// `a − b`: local, at the operands' scale.
    Sub,
    /// `a · b`: the cross terms and one resharing round, at the sum of the scales.
    Mul,
}

/// NumPy broadcasting of two operands to one output, per sample. The three shapes
/// have one rank (the lowering pads the shorter with leading 1s); an operand's axis
/// is the output's or 1.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Broadcast {
    /// The first operand's shape.
    pub a: Vec<usize>,
    /// The second operand's shape.
    pub b: Vec<usize>,
    /// The output's shape.
    pub out: Vec<usize>,
}

impl Broadcast {
    /// The flat index into an operand of `shape` that output element `e` reads.
    pub fn index(&self, shape: &[usize], e: usize) -> usize {
        let (mut rest, mut index, mut stride) = (e, 0, 1);
        for (&o, &d) in self.out.iter().zip(shape).rev() {
            if d != 1 {
                index += (rest % o) * stride;
            }
            rest /= o;
            stride *= d;
        }
        index
    }
}

/// A protocol step. Lengths are per sample; a run on a batch of samples runs every
/// step once on all of them, in the same rounds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum StepOp {
    /// The data owner shares the input (`len` elements at `2^f`) into `out`, and the
    /// model owner shares every weight, in one round.
    Share {
        /// Register receiving the input.
        out: Reg,
        /// Elements of one input sample.
        len: usize,
    },
    /// `out = x · W (+ b)` with shared `W[k, n]`, at scale `2^2f` (one resharing round).
    MatMul {
        /// Input register, `m × k` per sample.
        x: Reg,
        /// Weight index.
        w: usize,
        /// Bias index (encoded at `2^2f`).
        b: Option<usize>,
        /// Rows per sample.
        m: usize,
        /// Inner dimension.
        k: usize,
        /// Columns.
        n: usize,
        /// Output register.
        out: Reg,
    },
    /// 2-D convolution with shared weights, at scale `2^2f` (one resharing round).
    Conv {
        /// Input register.
        x: Reg,
        /// Weight index (OIHW).
        w: usize,
        /// Bias index (encoded at `2^2f`).
        b: Option<usize>,
        /// Shapes and attributes.
        geometry: ConvGeometry,
        /// Output register.
        out: Reg,
    },
    /// `out = x / 2^bits` by TruncAPr2 (eprint 2025/200): for `|x| < 2^62` the result is
    /// `⌊x/2^bits⌋` or `⌊x/2^bits⌋ + 1`, never a wrap-around error.
    Trunc {
        /// Input register.
        x: Reg,
        /// Elements per sample.
        len: usize,
        /// Shift.
        bits: u32,
        /// Output register.
        out: Reg,
    },
    /// `out = max(x, 0)`: MSB, then bit injection.
    Relu {
        /// Input register.
        x: Reg,
        /// Elements per sample.
        len: usize,
        /// Output register.
        out: Reg,
    },
    /// Max over windows, by a tournament of batched comparisons.
    MaxPool {
        /// Input register.
        x: Reg,
        /// The windows.
        taps: PoolTaps,
        /// Output register.
        out: Reg,
    },
    /// Window sums times public fixed-point reciprocals, then a truncation.
    AvgPool {
        /// Input register.
        x: Reg,
        /// The windows.
        taps: PoolTaps,
        /// The divisor of each output element.
        divisors: Vec<usize>,
        /// Output register.
        out: Reg,
    },
    /// A univariate function (an activation chain) as a piecewise polynomial.
    Piecewise {
        /// Input register.
        x: Reg,
        /// Elements per sample.
        len: usize,
        /// The approximation.
        function: Piecewise,
        /// Output register.
        out: Reg,
    },
    /// A tree ensemble: `out` holds `targets` scores per sample (at `2^f`).
    Forest {
        /// Input register (`features` per sample).
        x: Reg,
        /// The ensemble.
        forest: ForestPlan,
        /// Output register.
        out: Reg,
    },
    /// An elementwise function of two shared registers, broadcast.
    Pair {
        /// First operand.
        a: Reg,
        /// Second operand.
        b: Reg,
        /// Which function.
        op: PairOp,
        /// The operands' and the output's shapes.
        shapes: Broadcast,
        /// Output register.
        out: Reg,
    },
    /// `out[i] = a[i] · b[i]` for each of `batch` pairs of shared matrices `a[i]` (`m × k`)
    /// and `b[i]` (`k × n`, or `n × k` when `transpose_b`), at the sum of their scales
    /// (one resharing round).
    MatMulShares {
        /// Left operand register.
        a: Reg,
        /// Right operand register.
        b: Reg,
        /// Products per sample.
        batch: usize,
        /// Rows of each left matrix.
        m: usize,
        /// Inner dimension.
        k: usize,
        /// Columns of each right matrix.
        n: usize,
        /// Whether each right matrix is stored `n × k`.
        transpose_b: bool,
        /// Output register.
        out: Reg,
    },
    /// The output goes to the receiver only.
    Reveal {
        /// The register revealed.
        x: Reg,
        /// Elements per sample.
        len: usize,
    },
    /// Data movement, local: output element `j` of a sample is element `index[j]` of
    /// the registers' samples laid end to end, or (negative `index[j]`) element
    /// `−1 − index[j]` of weight `w`, the same for every sample.
    Gather {
        /// Input registers.
        xs: Vec<Reg>,
        /// The constants' weight (encoded at `2^f`).
        w: Option<usize>,
        /// The element each output element reads.
        index: Vec<i64>,
        /// Output register.
        out: Reg,
    },
}

impl StepOp {
    /// The step's protocol name, for `secc inspect`.
    pub fn mnemonic(&self) -> &'static str {
        match self {
            StepOp::Share { .. } => "share",
            StepOp::MatMul { .. } => "matmul",
            StepOp::Conv { .. } => "conv",
            StepOp::Trunc { .. } => "trunc",
            StepOp::Relu { .. } => "relu",
            StepOp::MaxPool { .. } => "max_pool",
            StepOp::AvgPool { .. } => "avg_pool",
            StepOp::Gather { .. } => "gather",
            StepOp::Piecewise { .. } => "piecewise",
            StepOp::Forest { .. } => "forest",
            StepOp::Pair { op: PairOp::Add, .. } => "add",
            StepOp::Pair { op: PairOp::Sub, .. } => "sub",
            StepOp::Pair { op: PairOp::Mul, .. } => "mul",
            StepOp::MatMulShares { .. } => "matmul_shares",
            StepOp::Reveal { .. } => "reveal",
        }
    }

    /// Rounds and bytes of the step for one sample (weights are shared once per run).
    pub fn cost(&self, plan: &Plan) -> Cost {
        let r = plan.roles;
        match self {
            StepOp::Share { len, .. } => {
                let mut c = Cost::input(r.data_owner, *len);
                c.once[r.model_owner] += WORD * plan.weights.iter().map(|w| w.len as u64).sum::<u64>();
                c
            }
            StepOp::MatMul { m, n, .. } => Cost::rotate(m * n),
            StepOp::Conv { geometry, .. } => Cost::rotate(geometry.output.iter().product()),
            StepOp::Trunc { len, .. } => Cost::trunc(*len),
            StepOp::Relu { len, .. } => Cost::msb(*len).then(&Cost::mul_bit(*len)),
            StepOp::MaxPool { taps, .. } => taps
                .tournament_pairs()
                .into_iter()
                .fold(Cost::default(), |c, pairs| c.then(&Cost::msb(pairs)).then(&Cost::mul_bit(pairs))),
            StepOp::AvgPool { taps, .. } => Cost::trunc(taps.taps.len()),
            StepOp::Gather { .. } => Cost::default(),
            StepOp::Piecewise { len, function, .. } => {
                let pieces = function.pieces.len();
                let mut c = Cost::msb(len * function.breakpoints.len());
                if function.normalised() > 0 {
                    c = c.then(&Cost::trunc(len * function.normalised()));
                }
                for per_piece in function.power_levels() {
                    let n = len * function.normalised() * per_piece;
                    c = c.then(&Cost::rotate(n)).then(&Cost::trunc(n));
                }
                c.then(&Cost::trunc(len * pieces)).then(&Cost::mul_bit(len * pieces))
            }
            StepOp::Forest { forest, .. } => {
                let c = Cost::rotate(forest.comparisons).then(&Cost::msb(forest.comparisons));
                let c = forest.and_levels().into_iter().fold(c, |c, ands| c.then(&Cost::rotate(ands)));
                c.then(&Cost::mul_bit(forest.entries.len()))
            }
            StepOp::Pair { op: PairOp::Add | PairOp::Sub, .. } => Cost::default(),
            StepOp::Pair { op: PairOp::Mul, shapes, .. } => Cost::rotate(shapes.out.iter().product()),
            StepOp::MatMulShares { batch, m, n, .. } => Cost::rotate(batch * m * n),
            StepOp::Reveal { len, .. } => Cost::reveal(r.receiver, *len),
        }
    }
}

/// Rounds and bytes each party sends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cost {
    /// Communication rounds.
    pub rounds: u64,
    /// Bytes each party sends per sample.
    pub bytes: [u64; PARTIES],
    /// Bytes each party sends once per run, whatever the batch (the weights).
    pub once: [u64; PARTIES],
}

impl Cost {
    fn one_round(bytes: [u64; PARTIES]) -> Cost {
        Cost { rounds: 1, bytes, once: [0; PARTIES] }
    }

    /// Input by party `owner` (aby3.md §1): the owner sends one word per element.
    pub fn input(owner: usize, n: usize) -> Cost {
        let mut b = [0; PARTIES];
        b[owner] = WORD * n as u64;
        Cost::one_round(b)
    }

    /// Reveal to party `to`: its successor sends the missing slot.
    pub fn reveal(to: usize, n: usize) -> Cost {
        Cost::input((to + 1) % PARTIES, n)
    }

    /// One resharing rotation (multiplication, AND): every party sends one word per element.
    pub fn rotate(n: usize) -> Cost {
        Cost::one_round([WORD * n as u64; PARTIES])
    }

    /// TruncAPr2 with roles A = P0, B = P1, H = P2: round 1 `e` (A→B), `g` (B→A),
    /// `δ` (H→B); round 2 the masked halves (A→B, B→A).
    pub fn trunc(n: usize) -> Cost {
        let w = WORD * n as u64;
        Cost::one_round([w, w, w]).then(&Cost::one_round([w, w, 0]))
    }

    /// MSB by a parallel-prefix adder (aby3.md §5, owner P0): P0 inputs `x_0 + x_1` as
    /// a boolean sharing, then one 64-bit AND for the generate bits and six levels of
    /// the carry tree, each level's two ANDs packed into one word.
    pub fn msb(n: usize) -> Cost {
        (0..7).fold(Cost::input(0, n), |c, _| c.then(&Cost::rotate(n)))
    }

    /// Bit injection `b · x` (MulA1B, aby3.md §6): two 3-party OTs in parallel.
    pub fn mul_bit(n: usize) -> Cost {
        let w = WORD * n as u64;
        Cost::one_round([3 * w, w, 2 * w]).then(&Cost::one_round([0, w, w]))
    }

    /// This cost followed by `next`.
    pub fn then(&self, next: &Cost) -> Cost {
        let mut c = *self;
        c.rounds += next.rounds;
        (0..PARTIES).for_each(|i| {
            c.bytes[i] += next.bytes[i];
            c.once[i] += next.once[i];
        });
        c
    }

    /// Bytes for a batch of `batch` samples, folded into [`Cost::bytes`].
    pub fn scaled(&self, batch: usize) -> Cost {
        let mut c = *self;
        (0..PARTIES).for_each(|i| c.bytes[i] = self.bytes[i] * batch as u64 + self.once[i]);
        c.once = [0; PARTIES];
        c
    }
}

impl fmt::Display for Cost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:>3} rounds, bytes sent P0/P1/P2: {}/{}/{}",
            self.rounds, self.bytes[0], self.bytes[1], self.bytes[2]
        )?;
        if self.once.iter().any(|&b| b > 0) {
            write!(f, " (+ {}/{}/{} once)", self.once[0], self.once[1], self.once[2])?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tournament_pairs_count_levels_of_odd_windows() {
        let taps = PoolTaps { input_len: 9, taps: vec![vec![0, 1, 2], vec![3, 4, 5, 6], vec![7]] };
        assert_eq!(taps.tournament_pairs(), vec![3, 2]);
    }

    #[test]
    fn broadcast_reads_size_one_axes_once() {
        let b = Broadcast { a: vec![2, 3], b: vec![2, 1], out: vec![2, 3] };
        assert_eq!((0..6).map(|e| b.index(&b.a, e)).collect::<Vec<_>>(), [0, 1, 2, 3, 4, 5]);
        assert_eq!((0..6).map(|e| b.index(&b.b, e)).collect::<Vec<_>>(), [0, 0, 0, 1, 1, 1]);
        let row = Broadcast { a: vec![1, 3], b: vec![2, 3], out: vec![2, 3] };
        assert_eq!((0..6).map(|e| row.index(&row.a, e)).collect::<Vec<_>>(), [0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn relu_costs_ten_rounds() {
        let c = Cost::msb(1).then(&Cost::mul_bit(1));
        assert_eq!(c.rounds, 10);
        assert_eq!(c.bytes, [88, 72, 80]);
    }
}
