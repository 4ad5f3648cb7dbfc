//! The facets of an op that the compiler's passes run: its quantization rule
//! ([`QuantizeRule`], driven by `secc_compiler::passes::quantize`), its TFHE lowering
//! ([`FheRule`], `lower_fhe`) and its SMPC lowering ([`MpcRule`], `lower_mpc`).
//!
//! Each op implements them in its own file. None has a default: a new op does not
//! compile until it says what each pass makes of it, and a refusal with its reason is
//! an answer. The drivers keep what is the same for every op (rebuilding graphs,
//! tabulating chains, fitting polynomials, choosing parameters, encodings, noise) and
//! lend it to the hooks through [`QuantizeCx`] and [`MpcCx`]; the hooks report errors
//! through the context too, so the driver names the pass, the value and its node.

use super::{dispatch, Lut, Op, Pwl, Region};
use crate::lowered::mpc::{Piecewise, Reg, StepOp};
use crate::{Graph, Quant, QuantConfig, Tensor, ValueId};

/// What a rewrite made of a value of the float graph so far.
#[derive(Clone, Debug)]
pub enum Lowered<T> {
    /// A constant: its users read it as weights; it is never computed.
    Const,
    /// Computed into `T`: an integer value of the new graph (the quantizer), a
    /// register (the SMPC lowering).
    Computed(T),
    /// An elementwise chain of one computed value, not materialised yet.
    Chain(Region),
}

/// What the quantizer lends an op's quantization rule. Values are of the float
/// graph (the one being quantized) unless said otherwise.
pub trait QuantizeCx {
    /// The driver's error.
    type Error;
    /// An error about value `v`.
    fn fail(&self, v: ValueId, message: impl Into<String>) -> Self::Error;
    /// The quantizer's settings.
    fn config(&self) -> &QuantConfig;
    /// The range `v` took on the calibration set.
    fn range(&self, v: ValueId) -> Option<(f64, f64)>;
    /// What `v` became (operands come before their users).
    fn state(&self, v: ValueId) -> &Lowered<ValueId>;
    /// The integer value (new graph) standing for `v`, tabulating its chain if needed.
    fn int(&mut self, v: ValueId) -> Result<ValueId, Self::Error>;
    /// [`QuantizeCx::int`], requantized per tensor when it is per channel.
    fn int_per_tensor(&mut self, v: ValueId) -> Result<ValueId, Self::Error>;
    /// The integer value standing for `v`, quantized per tensor to `bits` over the real
    /// interval `range` (so that several values share one quantization): `v`'s chain
    /// tabulated onto it (also when that chain is already tabulated elsewhere: the new
    /// table reads the same accumulator, so a TFHE circuit reads it at one encoding),
    /// or an identity table after `v` unless it already has it.
    fn int_over(&mut self, v: ValueId, range: (f64, f64)) -> Result<ValueId, Self::Error>;
    /// Appends a table of the elementwise float function `f` of the real values integer
    /// `source` (new graph) stands for, quantized to `out` (`(quant, lo, hi)`), indexed
    /// by `index_bits` bits of the source.
    fn push_table(
        &mut self,
        source: ValueId,
        f: &dyn Fn(f32) -> f32,
        out: (Quant, i64, i64),
        index_bits: u32,
        name: String,
    ) -> Result<ValueId, Self::Error>;
    /// The range integer value `v` (new graph) took on the calibration set.
    fn observed(&self, v: ValueId) -> (i64, i64);
    /// The values of `v` (new graph) on each calibration sample.
    fn samples(&self, v: ValueId) -> &[Tensor];
    /// The integer graph built so far.
    fn new_graph(&self) -> &Graph;
    /// The table computing `target` from `region`, its outputs on `grid` (quantization,
    /// smallest and largest integer) instead of requantized over a calibrated range.
    fn tabulate_onto(
        &mut self,
        region: &Region,
        target: ValueId,
        grid: (Quant, i64, i64),
    ) -> Result<ValueId, Self::Error>;
    /// Appends a node to the new graph.
    fn push(&mut self, op: Op, inputs: Vec<ValueId>, name: String) -> Result<ValueId, Self::Error>;
    /// Appends a constant to the new graph.
    fn push_const(&mut self, value: Tensor, quant: Option<Quant>, name: String) -> Result<ValueId, Self::Error>;
}

/// Where an op keeps per-channel weights: the axis of its weights (operand 1) and of
/// its output along which each output channel has its own weights and bias.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Channels {
    /// The weights' axis.
    pub weights: usize,
    /// The output's axis.
    pub output: usize,
}

/// Whether the values of an integer op carry a bootstrap's noise undamped: the
/// quantizer caps the 2-norm of weights applied to them
/// ([`QuantConfig::max_weight_norm`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableNoise {
    /// Its outputs are a table's.
    Table,
    /// It passes its first operand's values on (index remaps, window sums, maxima).
    Forwarded,
    /// None the cap accounts for: fresh encryptions, products with capped weights,
    /// floats.
    Untracked,
}

/// How the quantizer rewrites an op of the float IR into integer ops.
pub trait QuantizeRule {
    /// Rewrites node `v` of the float graph `graph` into the new graph of `cx`.
    fn quantize<C: QuantizeCx>(&self, graph: &Graph, v: ValueId, cx: &mut C) -> Result<Lowered<ValueId>, C::Error>;
    /// What the op's integer outputs carry (see [`TableNoise`]).
    fn table_noise(&self) -> TableNoise;
    /// Where a multiply-accumulate with constant weights keeps its output channels, for
    /// an output of rank `output_rank`; `None` for any other op. The quantizer scales
    /// weights per channel; `fold_affine` folds per-channel affine ops into them.
    fn weight_channels(&self, output_rank: usize) -> Option<Channels>;
}

/// Why an op refuses TFHE when no lowering is written for it yet.
pub(crate) const FHE_NOT_YET: &str = "has no TFHE lowering yet (supported: linear ops, sums, reshapes, tables)";

/// Why an op of the integer IR has no quantization rule.
pub(crate) const ALREADY_QUANTIZED: &str = "the graph is already quantized";

/// Why an op of the integer IR has no SMPC lowering.
pub(crate) const MPC_FLOAT_ONLY: &str = "the mpc backend lowers the float IR, not the quantized one";

/// How the TFHE backend computes an op whose output is an integer: every such value
/// is a ciphertext but constants'. Floats are the client's and never encrypted.
#[derive(Clone, Copy, Debug)]
pub enum FheLowering<'a> {
    /// A constant the server holds in the clear.
    Cleartext,
    /// The client computes it in the clear and encrypts it.
    ClientEncrypts,
    /// The client decrypts the operand and computes the op in the clear.
    ClientDecrypts,
    /// Levelled: the affine map read off the op's own `eval` ([`super::LinearMap`]).
    Levelled,
    /// One programmable bootstrap per element, of this table.
    Bootstrap(&'a Lut),
    /// A float op: never an integer, so never encrypted (the quantizer rewrites it, or
    /// the client runs it after decryption).
    FloatOnly,
    /// No lowering; the message (after the op's mnemonic) says why.
    Refused(&'static str),
}

/// How the TFHE backend computes an op of the integer IR.
pub trait FheRule {
    /// See [`FheLowering`].
    fn fhe_lowering(&self) -> FheLowering<'_>;
}

/// What the SMPC lowering lends an op's hook. Values are of the float graph.
pub trait MpcCx {
    /// The driver's error.
    type Error;
    /// An error about value `v`.
    fn fail(&self, v: ValueId, message: impl Into<String>) -> Self::Error;
    /// Fractional bits of the plan's fixed-point encoding.
    fn frac_bits(&self) -> u32;
    /// What `v` became (operands come before their users).
    fn state(&self, v: ValueId) -> &Lowered<Reg>;
    /// The register holding `v`, materialising its chain if needed.
    fn reg(&mut self, v: ValueId) -> Result<Reg, Self::Error>;
    /// A fresh register.
    fn new_reg(&mut self) -> Reg;
    /// Appends a step computing (part of) `v`.
    fn step(&mut self, v: ValueId, op: StepOp);
    /// Constant `c` as a weight the model owner shares, encoded at `2^bits`.
    fn weight(&mut self, c: ValueId, bits: u32) -> Result<usize, Self::Error>;
    /// Already encoded words as a weight the model owner shares.
    fn raw_weight(&mut self, name: String, words: Vec<i64>) -> usize;
    /// The range `v` took on the calibration set.
    fn range(&self, v: ValueId) -> Option<(f64, f64)>;
    /// `f` (named `name` in the plan) fitted as a piecewise polynomial on `[lo, hi]`
    /// aiming at error `tol`; its stated error is checked on a dense grid (the lowering
    /// of `v` is refused if it does not hold).
    fn fit_fn(
        &self,
        v: ValueId,
        name: &str,
        f: &dyn Fn(f64) -> f64,
        range: (f64, f64),
        tol: f64,
    ) -> Result<Piecewise, Self::Error>;
    /// The elementwise nodes `chain` (ending at `v`) as a function of `source`, fitted
    /// as a piecewise polynomial on the range `source` took on the calibration set.
    fn fit(&self, v: ValueId, source: ValueId, chain: &[ValueId]) -> Result<Piecewise, Self::Error>;
    /// The same chain when it is the piecewise-linear `f` of `source`: its exact
    /// pieces, with the fixed-point error they make on the calibrated range.
    fn exact(&self, v: ValueId, source: ValueId, chain: &[ValueId], f: &Pwl) -> Result<Piecewise, Self::Error>;
}

/// How the SMPC backend computes an op of the float IR.
pub trait MpcRule {
    /// Lowers node `v` of `graph` into the plan of `cx`.
    fn lower_mpc<C: MpcCx>(&self, graph: &Graph, v: ValueId, cx: &mut C) -> Result<Lowered<Reg>, C::Error>;
    /// The fewest fractional bits a plan with this op may use.
    fn min_frac_bits(&self) -> u32;
}

impl QuantizeRule for Op {
    fn quantize<C: QuantizeCx>(&self, graph: &Graph, v: ValueId, cx: &mut C) -> Result<Lowered<ValueId>, C::Error> {
        dispatch!(self, op => op.quantize(graph, v, cx))
    }
    fn table_noise(&self) -> TableNoise {
        dispatch!(self, op => op.table_noise())
    }
    fn weight_channels(&self, output_rank: usize) -> Option<Channels> {
        dispatch!(self, op => op.weight_channels(output_rank))
    }
}

impl FheRule for Op {
    fn fhe_lowering(&self) -> FheLowering<'_> {
        dispatch!(self, op => op.fhe_lowering())
    }
}

impl MpcRule for Op {
    fn lower_mpc<C: MpcCx>(&self, graph: &Graph, v: ValueId, cx: &mut C) -> Result<Lowered<Reg>, C::Error> {
        dispatch!(self, op => op.lower_mpc(graph, v, cx))
    }
    fn min_frac_bits(&self) -> u32 {
        dispatch!(self, op => op.min_frac_bits())
    }
}
