//! Verifiers of the lowered programs, for files that come from someone else: a plan
//! the model owner hands the other parties, a circuit inside a `model.secc`. Each
//! checks every assumption its runtime makes (indices in range, lengths that agree
//! between the step that writes a value and the steps that read it, shifts that fit
//! 64 bits, sizes under named limits), so that a program that passes can make the
//! runtime return an error at worst, never panic or allocate without bound.

use super::fhe::{catalog, client_values, map_operands, Circuit, ParamSet, MAX_PARTITIONS};
use super::mpc::{Broadcast, ConvGeometry, ForestPlan, PairOp, Piecewise, Plan, PoolTaps, Reg, StepOp, PARTIES};
use crate::graph::Graph;
use crate::ops::{FheLowering, FheRule};
use crate::OpSpec;
use crate::ValueId;
use std::collections::HashMap;

/// Largest plan file accepted (1 GiB, as for `model.secc`).
pub const MAX_PLAN_BYTES: u64 = 1 << 30;
/// Most steps in a plan (each is at least one round; compiled plans have a few per layer).
pub const MAX_STEPS: usize = 1 << 16;
/// Most registers in a plan (a party allocates a slot for each up front).
pub const MAX_REGS: usize = 1 << 16;
/// Most weight tensors: the share round tells its secrets apart by a one-byte PRG
/// tag, the input taking tag 0, so a 256th weight would reuse the input's mask.
pub const MAX_WEIGHTS: usize = 255;
/// Most elements of one vector per sample: a register, a weight, a step's intermediate.
pub const MAX_LEN: usize = 1 << 24;
/// Most elements all steps together allocate per sample (a party keeps every register
/// to the end of the run): 2 GiB of shares.
pub const MAX_PLAN_ELEMENTS: usize = 1 << 27;
/// Most weight elements, all tensors together (shared on every run): 2 GiB of shares.
pub const MAX_WEIGHT_ELEMENTS: usize = 1 << 27;
/// Most multiply-accumulates per sample, all steps together (a few times a ResNet-50).
pub const MAX_MACS: u64 = 1 << 36;
/// Most fractional bits: the runtime's truncation shifts by at most 32, and a forest
/// (which truncates no product) runs at 32.
pub const MAX_FRAC_BITS: u32 = 32;
/// Most fractional bits of a plan that multiplies two fixed-point values: the product
/// sits at `2^2f` and TruncAPr2 is exact only below `2^62`, so `2f ≤ 62` leaves the
/// values `62 − 2f` bits of magnitude (see the README's fixed-point section).
pub const MAX_PRODUCT_FRAC_BITS: u32 = 31;

/// Why a plan is refused.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// Something about the plan as a whole.
    #[error("{0}")]
    Plan(PlanProblem),
    /// Something about one step.
    #[error("step {index} ({label}): {problem}")]
    Step {
        /// Its position in the plan.
        index: usize,
        /// Its label (the IR value it computes).
        label: String,
        /// What is wrong.
        problem: StepProblem,
    },
}

/// A problem of a whole plan.
#[derive(Debug, thiserror::Error)]
pub enum PlanProblem {
    /// A size over its limit.
    #[error("{what} is {got}, more than the limit of {limit}")]
    TooLarge {
        /// What was counted.
        what: &'static str,
        /// The count.
        got: u128,
        /// The limit.
        limit: u128,
    },
    /// Fractional bits out of range.
    #[error("{frac_bits} fractional bits; plans use 1 to {MAX_FRAC_BITS}")]
    FracBits {
        /// The plan's.
        frac_bits: u32,
    },
    /// A role names no party.
    #[error("the {role} is party {party}; parties are 0, 1 and 2")]
    Role {
        /// Which role.
        role: &'static str,
        /// The party it names.
        party: usize,
    },
    /// An input or output shape without elements.
    #[error("the {which} shape {shape:?} has no elements")]
    EmptyShape {
        /// `input` or `output`.
        which: &'static str,
        /// The shape.
        shape: Vec<usize>,
    },
    /// The model owner's weights disagree with the weights the plan declares.
    #[error("weight values: {0}")]
    WeightValues(String),
    /// A step every plan has once is missing or repeated.
    #[error("the plan has {count} `{step}` steps; it needs exactly one")]
    StepCount {
        /// The step's mnemonic.
        step: &'static str,
        /// How many there are.
        count: usize,
    },
    /// The reveal is not the last step.
    #[error("the `reveal` step is not the last one")]
    RevealNotLast,
    /// The receiver's finish graph is not a weightless map of the revealed output.
    #[error("the finish graph: {0}")]
    Finish(String),
}

/// A problem of one step.
#[derive(Debug, thiserror::Error)]
pub enum StepProblem {
    /// A register index beyond the plan's register count.
    #[error("register {reg} out of range (plan has {regs})")]
    RegisterOutOfRange {
        /// The index.
        reg: Reg,
        /// The plan's register count.
        regs: usize,
    },
    /// A register read before any step wrote it.
    #[error("register {reg} is read before any step writes it")]
    Unwritten {
        /// The index.
        reg: Reg,
    },
    /// A weight index beyond the plan's weights.
    #[error("weight {index} out of range (plan has {count})")]
    WeightOutOfRange {
        /// The index.
        index: usize,
        /// The plan's weight count.
        count: usize,
    },
    /// A weight read before the share step shares it.
    #[error("weight {index} is read before the `share` step")]
    WeightBeforeShare {
        /// The index.
        index: usize,
    },
    /// Two lengths that must agree do not.
    #[error("{what} has {got} elements, expected {expected}")]
    Length {
        /// What was measured.
        what: String,
        /// Its length.
        got: usize,
        /// The length the other side implies.
        expected: usize,
    },
    /// A size over its limit.
    #[error("{what} is {got}, more than the limit of {limit}")]
    TooLarge {
        /// What was counted.
        what: String,
        /// The count.
        got: u128,
        /// The limit.
        limit: u128,
    },
    /// Attributes that do not describe a valid step.
    #[error("{0}")]
    Invalid(String),
}

fn too_large(what: impl Into<String>, got: impl Into<u128>, limit: impl Into<u128>) -> StepProblem {
    StepProblem::TooLarge { what: what.into(), got: got.into(), limit: limit.into() }
}

fn length(what: impl Into<String>, got: usize, expected: usize) -> Result<(), StepProblem> {
    if got == expected {
        Ok(())
    } else {
        Err(StepProblem::Length { what: what.into(), got, expected })
    }
}

/// `a · b · ...` if it stays within [`MAX_LEN`].
/// Checks that the operands of a [`Broadcast`] broadcast to its output; returns the
/// output's length.
fn broadcast(s: &Broadcast) -> Result<usize, StepProblem> {
    let fits = |d: &[usize]| d.len() == s.out.len() && d.iter().zip(&s.out).all(|(&d, &o)| d == o || d == 1);
    if !fits(&s.a) || !fits(&s.b) {
        return Err(StepProblem::Invalid(format!("shapes {:?} and {:?} do not broadcast to {:?}", s.a, s.b, s.out)));
    }
    product("the output", &s.out)
}

fn product(what: &str, factors: &[usize]) -> Result<usize, StepProblem> {
    let p = factors.iter().try_fold(1u128, |p, &f| Some(p * f as u128).filter(|&p| p <= MAX_LEN as u128));
    p.map(|p| p as usize).ok_or_else(|| {
        let got = factors.iter().fold(1u128, |p, &f| p.saturating_mul(f as u128));
        too_large(what, got, MAX_LEN as u64)
    })
}

/// Per-sample lengths of the registers written so far, the work counted so far.
struct Checker<'a> {
    plan: &'a Plan,
    written: HashMap<Reg, usize>,
    shared: bool,
    elements: u128,
    macs: u128,
}

impl Checker<'_> {
    fn reg(&self, reg: Reg) -> Result<(), StepProblem> {
        if reg < self.plan.regs {
            Ok(())
        } else {
            Err(StepProblem::RegisterOutOfRange { reg, regs: self.plan.regs })
        }
    }

    /// The length of register `reg`, which an earlier step must have written.
    fn read(&self, reg: Reg) -> Result<usize, StepProblem> {
        self.reg(reg)?;
        self.written.get(&reg).copied().ok_or(StepProblem::Unwritten { reg })
    }

    /// The length of weight `index`, which the share step must have shared.
    fn weight(&self, index: usize) -> Result<usize, StepProblem> {
        let count = self.plan.weights.len();
        let spec = self.plan.weights.get(index).ok_or(StepProblem::WeightOutOfRange { index, count })?;
        if !self.shared {
            return Err(StepProblem::WeightBeforeShare { index });
        }
        Ok(spec.len)
    }

    fn write(&mut self, reg: Reg, len: usize) -> Result<(), StepProblem> {
        self.reg(reg)?;
        product("the output", &[len])?;
        self.written.insert(reg, len);
        Ok(())
    }

    /// Counts a step's allocations and multiply-accumulates against the plan's limits.
    fn work(&mut self, elements: u128, macs: u128) -> Result<(), StepProblem> {
        self.elements += elements;
        self.macs += macs;
        if self.elements > MAX_PLAN_ELEMENTS as u128 {
            return Err(too_large(
                "the elements allocated per sample up to this step",
                self.elements,
                MAX_PLAN_ELEMENTS as u64,
            ));
        }
        if self.macs > MAX_MACS as u128 {
            return Err(too_large("the multiply-accumulates per sample up to this step", self.macs, MAX_MACS));
        }
        Ok(())
    }

    fn products(&self, step: &str) -> Result<(), StepProblem> {
        let f = self.plan.frac_bits;
        if f > MAX_PRODUCT_FRAC_BITS {
            return Err(StepProblem::Invalid(format!(
                "{step} multiplies fixed-point values at 2^{}, beyond TruncAPr2's 2^62: it needs at most {MAX_PRODUCT_FRAC_BITS} fractional bits, the plan has {f}",
                2 * f
            )));
        }
        Ok(())
    }

    fn step(&mut self, op: &StepOp, input_len: usize) -> Result<(), StepProblem> {
        match op {
            StepOp::Share { out, len } => {
                length("the input", *len, input_len)?;
                self.shared = true;
                self.work(*len as u128, 0)?;
                self.write(*out, *len)
            }
            StepOp::MatMul { x, w, b, m, k, n, out } => {
                self.products("a matmul")?;
                if *m == 0 || *k == 0 || *n == 0 {
                    return Err(StepProblem::Invalid(format!("an empty product: m={m}, k={k}, n={n}")));
                }
                length(format!("register {x}"), self.read(*x)?, product("m·k", &[*m, *k])?)?;
                length(format!("weight {w}"), self.weight(*w)?, product("k·n", &[*k, *n])?)?;
                if let Some(b) = b {
                    length(format!("bias weight {b}"), self.weight(*b)?, *n)?;
                }
                let len = product("m·n", &[*m, *n])?;
                self.work(len as u128, *m as u128 * *k as u128 * *n as u128)?;
                self.write(*out, len)
            }
            StepOp::Conv { x, w, b, geometry, out } => {
                self.products("a convolution")?;
                let (input, kernel, output, macs) = conv_lengths(geometry)?;
                length(format!("register {x}"), self.read(*x)?, input)?;
                length(format!("weight {w}"), self.weight(*w)?, kernel)?;
                if let Some(b) = b {
                    length(format!("bias weight {b}"), self.weight(*b)?, geometry.kernel[0])?;
                }
                self.work(output as u128, macs)?;
                self.write(*out, output)
            }
            StepOp::Trunc { x, len, bits, out } => {
                if !(1..=MAX_FRAC_BITS).contains(bits) {
                    return Err(StepProblem::Invalid(format!(
                        "truncation by {bits} bits; the runtime truncates by 1 to {MAX_FRAC_BITS}"
                    )));
                }
                length(format!("register {x}"), self.read(*x)?, *len)?;
                self.work(*len as u128, 0)?;
                self.write(*out, *len)
            }
            StepOp::Relu { x, len, out } => {
                length(format!("register {x}"), self.read(*x)?, *len)?;
                self.work(*len as u128, 0)?;
                self.write(*out, *len)
            }
            StepOp::MaxPool { x, taps, out } => {
                let windows = pool_taps(taps, self.read(*x)?)?;
                self.work(windows as u128 + taps.taps.len() as u128, 0)?;
                self.write(*out, taps.taps.len())
            }
            StepOp::AvgPool { x, taps, divisors, out } => {
                self.products("an average pooling")?;
                let windows = pool_taps(taps, self.read(*x)?)?;
                length("the divisors", divisors.len(), taps.taps.len())?;
                // Divisor 1 is a plain sum (ReduceSum); 0 would be a division by zero.
                if let Some(i) = divisors.iter().position(|&d| d == 0) {
                    return Err(StepProblem::Invalid(format!("window {i} has divisor 0")));
                }
                self.work(taps.taps.len() as u128, windows as u128)?;
                self.write(*out, taps.taps.len())
            }
            StepOp::Gather { xs, w, index, out } => {
                let mut total = 0usize;
                for x in xs {
                    total = product("the gathered registers", &[total + self.read(*x)?])?;
                }
                let values = match w {
                    Some(w) => self.weight(*w)?,
                    None => 0,
                };
                if let Some(i) =
                    index
                        .iter()
                        .find(|&&i| if i >= 0 { i as usize >= total } else { i.unsigned_abs() as usize > values })
                {
                    return Err(StepProblem::Invalid(format!(
                        "gather reads element {i} of {total} register elements and {values} constants"
                    )));
                }
                self.work(index.len() as u128, 0)?;
                self.write(*out, index.len())
            }
            StepOp::Piecewise { x, len, function, out } => {
                self.products("a piecewise polynomial")?;
                length(format!("register {x}"), self.read(*x)?, *len)?;
                let elements = *len as u128 * piecewise(function)?;
                self.work(elements, elements)?;
                self.write(*out, *len)
            }
            StepOp::Forest { x, forest: f, out } => {
                length(format!("register {x}"), self.read(*x)?, f.features)?;
                let (elements, macs) = self.forest(f)?;
                self.work(elements, macs)?;
                self.write(*out, f.targets)
            }
            StepOp::Pair { a, b, op, shapes, out } => {
                if *op == PairOp::Mul {
                    self.products("a product of two shared tensors")?;
                }
                let len = broadcast(shapes)?;
                length(format!("register {a}"), self.read(*a)?, product("the first operand", &shapes.a)?)?;
                length(format!("register {b}"), self.read(*b)?, product("the second operand", &shapes.b)?)?;
                self.work(len as u128, len as u128)?;
                self.write(*out, len)
            }
            StepOp::MatMulShares { a, b, batch, m, k, n, out, .. } => {
                self.products("a product of two shared matrices")?;
                if [*batch, *m, *k, *n].contains(&0) {
                    return Err(StepProblem::Invalid(format!("an empty product: batch={batch}, m={m}, k={k}, n={n}")));
                }
                length(format!("register {a}"), self.read(*a)?, product("batch·m·k", &[*batch, *m, *k])?)?;
                length(format!("register {b}"), self.read(*b)?, product("batch·k·n", &[*batch, *k, *n])?)?;
                let len = product("batch·m·n", &[*batch, *m, *n])?;
                self.work(len as u128, len as u128 * *k as u128)?;
                self.write(*out, len)
            }
            StepOp::Reveal { x, len } => {
                length(format!("register {x}"), self.read(*x)?, *len)?;
                let output = product("the output shape", &self.plan.output_shape)?;
                length("the revealed register", *len, output)?;
                self.work(*len as u128, 0)
            }
        }
    }

    /// Checks a forest's indices and lengths; returns its elements and multiply-accumulates.
    fn forest(&self, f: &ForestPlan) -> Result<(u128, u128), StepProblem> {
        if f.features == 0 || f.targets == 0 {
            return Err(StepProblem::Invalid(format!("{} features and {} targets", f.features, f.targets)));
        }
        length(
            "the selection weight",
            self.weight(f.select)?,
            product("features·comparisons", &[f.features, f.comparisons])?,
        )?;
        length("the bounds weight", self.weight(f.bounds)?, f.comparisons)?;
        length("the leaf values weight", self.weight(f.values)?, f.entries.len())?;
        length("the base values weight", self.weight(f.base)?, product("the targets", &[f.targets])?)?;
        let mut literals = 0usize;
        for (leaf, path) in f.paths.iter().enumerate() {
            if let Some(&(c, _)) = path.iter().find(|(c, _)| *c as usize >= f.comparisons) {
                return Err(StepProblem::Invalid(format!("leaf {leaf} reads comparison {c} of {}", f.comparisons)));
            }
            literals = product("the path literals", &[literals + path.len()])?;
        }
        if let Some((leaf, target)) =
            f.entries.iter().find(|(l, t)| *l as usize >= f.paths.len() || *t as usize >= f.targets)
        {
            return Err(StepProblem::Invalid(format!(
                "leaf value of leaf {leaf}, target {target}: the forest has {} leaves and {} targets",
                f.paths.len(),
                f.targets
            )));
        }
        let elements = f.comparisons as u128
            + literals as u128
            + f.paths.len() as u128
            + f.entries.len() as u128
            + f.targets as u128;
        Ok((elements, f.features as u128 * f.comparisons as u128))
    }
}

/// Checks a pooling's windows against an input of `input` elements; returns the taps in all.
fn pool_taps(taps: &PoolTaps, input: usize) -> Result<usize, StepProblem> {
    length("the pooled register", input, taps.input_len)?;
    if taps.taps.is_empty() {
        return Err(StepProblem::Invalid("a pooling without windows".into()));
    }
    let mut all = 0usize;
    for (i, window) in taps.taps.iter().enumerate() {
        if window.is_empty() {
            return Err(StepProblem::Invalid(format!("window {i} has no taps")));
        }
        if let Some(t) = window.iter().find(|&&t| t >= input) {
            return Err(StepProblem::Invalid(format!("window {i} reads element {t} of {input}")));
        }
        all = product("the taps", &[all + window.len()])?;
    }
    Ok(all)
}

/// Checks a piecewise polynomial; returns the elements its evaluation allocates per input element.
fn piecewise(f: &Piecewise) -> Result<u128, StepProblem> {
    let invalid = |m: String| Err(StepProblem::Invalid(m));
    if f.breakpoints.is_empty() {
        return invalid("a piecewise function without breakpoints".into());
    }
    if let Some(b) = f.breakpoints.iter().find(|b| !b.is_finite()) {
        return invalid(format!("breakpoint {b} is not finite"));
    }
    if let Some(i) = f.breakpoints.windows(2).position(|w| w[0] > w[1]) {
        return invalid(format!(
            "breakpoints out of order: {} then {} (at {i})",
            f.breakpoints[i],
            f.breakpoints[i + 1]
        ));
    }
    if f.pieces.len() != f.breakpoints.len() + 1 {
        return invalid(format!(
            "{} pieces for {} breakpoints: one piece more is needed",
            f.pieces.len(),
            f.breakpoints.len()
        ));
    }
    for (k, p) in f.pieces.iter().enumerate() {
        if p.coeffs.is_empty() {
            return invalid(format!("piece {k} has no coefficients"));
        }
        if !(p.scale.is_finite() && p.offset.is_finite() && p.coeffs.iter().all(|c| c.is_finite())) {
            return invalid(format!("piece {k} has a coefficient that is not finite"));
        }
        // Only normalised pieces get powers of their variable: the others are affine.
        if p.scale == 1.0 && p.offset == 0.0 && p.coeffs.len() > 2 {
            return invalid(format!(
                "piece {k} is of degree {} in x itself; only normalised pieces have powers",
                p.coeffs.len() - 1
            ));
        }
    }
    let (pieces, degree, normalised) = (f.pieces.len() as u128, f.degree() as u128, f.normalised() as u128);
    Ok(f.breakpoints.len() as u128 + normalised * (1 + degree) + 2 * pieces)
}

/// Checks a convolution's geometry; returns the input, kernel and output lengths and
/// the multiply-accumulates, per sample.
fn conv_lengths(g: &ConvGeometry) -> Result<(usize, usize, usize, u128), StepProblem> {
    let invalid = |m: String| Err(StepProblem::Invalid(m));
    let [n, c, h, w] = g.input;
    let [o, cg, kh, kw] = g.kernel;
    let [on, oo, oh, ow] = g.output;
    let input = product("the conv input", &g.input)?;
    let kernel = product("the conv kernel", &g.kernel)?;
    let output = product("the conv output", &g.output)?;
    if input == 0 || kernel == 0 || output == 0 {
        return invalid(format!(
            "an empty convolution: input {:?}, kernel {:?}, output {:?}",
            g.input, g.kernel, g.output
        ));
    }
    if g.group == 0 || o % g.group != 0 || cg.checked_mul(g.group) != Some(c) {
        return invalid(format!("{c} input channels do not match kernel {:?} with {} groups", g.kernel, g.group));
    }
    if on != n || oo != o {
        return invalid(format!("output {:?} does not match {n} samples and {o} output channels", g.output));
    }
    for axis in 0..2 {
        let (size, k, out) = [(h, kh, oh), (w, kw, ow)][axis];
        let (s, d, pad) = (g.strides[axis], g.dilations[axis], g.pads[axis]);
        if s == 0 || d == 0 || s > MAX_LEN || d > MAX_LEN || pad > MAX_LEN {
            return invalid(format!("strides {:?}, dilations {:?}, pads {:?}", g.strides, g.dilations, g.pads));
        }
        // The output holds the windows of the input padded by `pad` before and by some
        // `p < span` after (the end padding is not in the plan): as many as fit, no more.
        let span = (d * (k - 1) + 1) as i128;
        let lo = size as i128 + pad as i128 - span;
        let (first, last) = (lo.max(0) / s as i128, (lo + span - 1) / s as i128);
        if !(first..=last).contains(&(out as i128 - 1)) {
            return invalid(format!(
                "{out} output {} from {size} input {} padded by {pad} with a kernel of {k}, stride {s}, dilation {d} (expected {} to {})",
                ["rows", "columns"][axis],
                ["rows", "columns"][axis],
                first + 1,
                last + 1
            ));
        }
    }
    Ok((input, kernel, output, output as u128 * (cg * kh * kw) as u128))
}

/// Checks every invariant the SMPC runtime relies on (see the module doc).
pub fn verify_plan(plan: &Plan) -> Result<(), PlanError> {
    let whole = |p: PlanProblem| Err(PlanError::Plan(p));
    let too_large =
        |what, got: usize, limit: usize| whole(PlanProblem::TooLarge { what, got: got as u128, limit: limit as u128 });
    if !(1..=MAX_FRAC_BITS).contains(&plan.frac_bits) {
        return whole(PlanProblem::FracBits { frac_bits: plan.frac_bits });
    }
    let roles = plan.roles;
    for (role, party) in
        [("data owner", roles.data_owner), ("model owner", roles.model_owner), ("receiver", roles.receiver)]
    {
        if party >= PARTIES {
            return whole(PlanProblem::Role { role, party });
        }
    }
    if plan.steps.len() > MAX_STEPS {
        return too_large("the number of steps", plan.steps.len(), MAX_STEPS);
    }
    if plan.regs > MAX_REGS {
        return too_large("the number of registers", plan.regs, MAX_REGS);
    }
    if plan.weights.len() > MAX_WEIGHTS {
        return too_large("the number of weights", plan.weights.len(), MAX_WEIGHTS);
    }
    let mut weight_elements = 0usize;
    for w in &plan.weights {
        if w.len > MAX_LEN {
            return too_large("a weight's length", w.len, MAX_LEN);
        }
        weight_elements += w.len;
    }
    if weight_elements > MAX_WEIGHT_ELEMENTS {
        return too_large("the weights' elements", weight_elements, MAX_WEIGHT_ELEMENTS);
    }
    if let Some(values) = &plan.weight_values {
        if values.len() != plan.weights.len() {
            return whole(PlanProblem::WeightValues(format!(
                "{} tensors for {} weights",
                values.len(),
                plan.weights.len()
            )));
        }
        if let Some((i, (v, w))) = values.iter().zip(&plan.weights).enumerate().find(|(_, (v, w))| v.len() != w.len) {
            return whole(PlanProblem::WeightValues(format!(
                "weight {i} ({}) has {} values, declared {}",
                w.name,
                v.len(),
                w.len
            )));
        }
    }
    let mut lens = [0; 2];
    for (i, (which, shape)) in [("input", &plan.input_shape), ("output", &plan.output_shape)].into_iter().enumerate() {
        lens[i] = match product(which, shape) {
            Ok(0) => return whole(PlanProblem::EmptyShape { which, shape: shape.clone() }),
            Ok(len) => len,
            Err(_) => return too_large("an input or output's elements", usize::MAX, MAX_LEN),
        };
    }
    for step in ["share", "reveal"] {
        let count = plan.steps.iter().filter(|s| s.op.mnemonic() == step).count();
        if count != 1 {
            return whole(PlanProblem::StepCount { step, count });
        }
    }
    if !matches!(plan.steps.last().map(|s| &s.op), Some(StepOp::Reveal { .. })) {
        return whole(PlanProblem::RevealNotLast);
    }
    if let Some(g) = &plan.finish {
        check_finish(g, &plan.output_shape).map_err(|m| PlanError::Plan(PlanProblem::Finish(m)))?;
    }
    let mut checker = Checker { plan, written: HashMap::new(), shared: false, elements: 0, macs: 0 };
    for (index, step) in plan.steps.iter().enumerate() {
        checker.step(&step.op, lens[0]).map_err(|problem| PlanError::Step {
            index,
            label: step.label.clone(),
            problem,
        })?;
    }
    Ok(())
}

/// A plan's finish graph: it verifies, reads one float input of the revealed shape,
/// returns one output of that shape, and holds nothing but elementwise functions,
/// softmaxes and normalizers: no weights, which every party's plan would show.
fn check_finish(g: &Graph, shape: &[usize]) -> Result<(), String> {
    use crate::ops::Op;
    crate::verify_graph(g).map_err(|e| e.to_string())?;
    let revealed = crate::TensorType::f32(crate::Shape(shape.to_vec()));
    if g.inputs.len() != 1 || g.outputs.len() != 1 {
        return Err(format!("{} inputs and {} outputs, expected one of each", g.inputs.len(), g.outputs.len()));
    }
    for &v in [g.inputs[0], g.outputs[0]].iter() {
        if g.ty(v) != &revealed {
            return Err(format!("{v} is {}, the revealed output {revealed}", g.ty(v)));
        }
    }
    match g.nodes.iter().position(|n| !matches!(n.op, Op::Input(_) | Op::Unary(_) | Op::Softmax(_) | Op::Normalize(_)))
    {
        Some(i) => Err(format!(
            "%{i} is a `{}`; it may hold only elementwise functions, softmaxes and normalizers",
            g.nodes[i].op.mnemonic()
        )),
        None => Ok(()),
    }
}

/// Why a TFHE circuit is refused; `%N` names the value of the quantized graph.
#[derive(Debug, thiserror::Error)]
pub enum CircuitError {
    /// A per-value table whose length is not the graph's node count.
    #[error("the circuit's {what} has {got} entries, the quantized graph {nodes} values")]
    Length {
        /// Which table.
        what: &'static str,
        /// Its length.
        got: usize,
        /// The graph's node count.
        nodes: usize,
    },
    /// A parameter set that is not one of the catalog's.
    #[error("parameter set {0} is not one of tfhe-rs's published sets as secc knows them")]
    Params(String),
    /// A searched parameter set whose numbers are out of range, insecure, or disagree
    /// with what its dimensions make.
    #[error("searched parameter set {name}: {message}")]
    Searched {
        /// Its name.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// The partitions: their count, or a value's partition.
    #[error("the circuit's key partitions: {0}")]
    Partitions(String),
    /// The summary disagrees with the circuit.
    #[error("the circuit claims {claimed} bootstraps, its tables make {counted}")]
    Stats {
        /// `stats.pbs`.
        claimed: usize,
        /// Elements of its tables.
        counted: usize,
    },
    /// The client's values are not those the graph's boundary ops make.
    #[error("the client {what} {}, the graph's boundary ops say {}", values(.got), values(.want))]
    Client {
        /// `encrypts` or `decrypts`.
        what: &'static str,
        /// The circuit's list.
        got: Vec<u32>,
        /// The graph's.
        want: Vec<u32>,
    },
    /// A problem of one value.
    #[error("{value} (\"{name}\"): {message}")]
    Value {
        /// The value.
        value: ValueId,
        /// Its node's name.
        name: String,
        /// What is wrong.
        message: String,
    },
}

fn values(vs: &[u32]) -> String {
    let vs: Vec<String> = vs.iter().map(|v| format!("%{v}")).collect();
    format!("[{}]", vs.join(", "))
}

/// A catalog set must be one of the catalog's entries, numbers included. A searched set
/// must have numbers in range (before anything computes with them) and be exactly what
/// [`ParamSet::searched`] makes of its dimensions: the 128-bit curve's noise, its name,
/// norm budget and cost.
pub fn verify_params(params: &ParamSet) -> Result<(), CircuitError> {
    if !params.searched {
        let known = [-128, -64, -40].into_iter().flat_map(catalog).any(|s| s == *params);
        return if known { Ok(()) } else { Err(CircuitError::Params(params.name.clone())) };
    }
    let bad = |message: String| CircuitError::Searched { name: params.name.clone(), message };
    params.lattice.check().map_err(bad)?;
    if !params.lattice.secure() {
        return Err(bad("its noise is below the 128-bit security curve's".into()));
    }
    if !(1..=16).contains(&params.bits()) || !(-256..=-8).contains(&params.log2_p_fail) {
        return Err(bad(format!("{} bits at p_fail 2^{} is out of range", params.bits(), params.log2_p_fail)));
    }
    match ParamSet::searched(params.lattice, params.message_bits, params.log2_p_fail) {
        Some(s) if s == *params => Ok(()),
        _ => Err(bad("its figures are not what its numbers make".into())),
    }
}

/// A circuit's parameter sets, one per key partition: 1 to [`MAX_PARTITIONS`], each
/// verified ([`verify_params`]).
pub fn verify_sets(sets: &[ParamSet]) -> Result<(), CircuitError> {
    if !(1..=MAX_PARTITIONS).contains(&sets.len()) {
        let n = sets.len();
        return Err(CircuitError::Partitions(format!("{n} parameter sets; a circuit has 1 to {MAX_PARTITIONS}")));
    }
    sets.iter().try_for_each(verify_params)
}

/// Checks a TFHE circuit against the quantized graph it was lowered from (which must
/// have passed [`crate::verify_graph`]): one encoding and one bootstrap plan slot per
/// value, a bootstrap plan exactly for each `lut`, encodings the runtime can shift by,
/// tables the parameter set serves, offsets whose box arithmetic stays in `i64`.
pub fn verify_circuit(circuit: &Circuit, graph: &Graph) -> Result<(), CircuitError> {
    let nodes = graph.nodes.len();
    for (what, got) in [
        ("encodings", circuit.log_delta.len()),
        ("bootstrap plans", circuit.luts.len()),
        ("linear maps", circuit.linear.len()),
    ] {
        if got != nodes {
            return Err(CircuitError::Length { what, got, nodes });
        }
    }
    verify_sets(&circuit.params)?;
    let parts = circuit.params.len();
    let unit = circuit.noise_unit();
    if parts == 1 && !circuit.partition.is_empty() {
        return Err(CircuitError::Partitions("a one-partition circuit lists partitions".into()));
    }
    if parts > 1 {
        if circuit.partition.len() != nodes {
            return Err(CircuitError::Length { what: "partitions", got: circuit.partition.len(), nodes });
        }
        let placed = |i: usize| circuit.partition[i].is_some_and(|p| (p as usize) < parts);
        if let Some(i) = (0..nodes).find(|&i| {
            circuit.partition[i].is_some() != circuit.log_delta[i].is_some()
                || circuit.partition[i].is_some() && !placed(i)
        }) {
            return Err(CircuitError::Partitions(format!(
                "%{i} is in no partition of the {parts}, or in one without an encoding"
            )));
        }
        if let Some(v) = circuit.noisy_encryption(unit) {
            let set = &circuit.params[circuit.partition_of(v as usize)].name;
            return Err(CircuitError::Partitions(format!(
                "%{v} is encrypted under {set}, noisier than the circuit counts fresh encryptions"
            )));
        }
    }
    let mut pbs = 0usize;
    for (i, node) in graph.nodes.iter().enumerate() {
        let fail = |message: String| CircuitError::Value { value: ValueId(i as u32), name: node.name.clone(), message };
        let numel = node
            .ty
            .shape
            .0
            .iter()
            .try_fold(1usize, |p, &d| p.checked_mul(d))
            .ok_or_else(|| fail("too many elements".into()))?;
        let delta = circuit.log_delta[i];
        if let Some(d) = delta {
            // Encoding m·2^d, decoded by rounding at 2^(d−1).
            if !(1..=63).contains(&d) {
                return Err(fail(format!("encoding 2^{d}; encodings are 2^1 to 2^63")));
            }
            if numel == 0 {
                return Err(fail("an encrypted value without elements".into()));
            }
        }
        let input_delta = |k: usize| node.inputs.get(k).and_then(|v| circuit.log_delta[v.index()]);
        let mnemonic = node.op.mnemonic();
        match (node.op.fhe_lowering(), &circuit.luts[i]) {
            (FheLowering::Bootstrap(lut), Some(plan)) => {
                pbs += numel;
                let p = plan.precision;
                let (own, from) = (circuit.partition_of(i), circuit.partition_of(node.inputs[0].index()));
                if !(plan.norm >= 0.0 && circuit.serves(plan, own, from, unit)) {
                    return Err(fail(format!(
                        "a {p}-bit table on inputs of 2-norm {} is beyond {}",
                        plan.norm, circuit.params[own].name
                    )));
                }
                if delta.is_none() {
                    continue;
                }
                // The bootstrap reads the top p bits above `shift` of an input at
                // 2^(63 − p − shift), or finer (the server multiplies it up).
                let want = 63u32.checked_sub(p).and_then(|r| r.checked_sub(lut.shift));
                if want.is_none() || input_delta(0).is_none() || input_delta(0) > want {
                    return Err(fail(format!(
                        "reads its input at 2^{:?}; a {p}-bit table on a {}-bit shift needs at most 2^(63 − {p} − {})",
                        input_delta(0),
                        lut.shift,
                        lut.shift
                    )));
                }
                let fits = |x: i128| (i64::MIN as i128..=i64::MAX as i128).contains(&x);
                let (first, last) = (plan.offset as i128, plan.offset as i128 + (1i128 << p) - 1);
                if !(fits(last) && fits(first - lut.base as i128) && fits(last - lut.base as i128)) {
                    return Err(fail(format!(
                        "box offset {} overflows against the table base {}",
                        plan.offset, lut.base
                    )));
                }
            }
            (FheLowering::Bootstrap(_), None) => return Err(fail("a `lut` without a bootstrap plan".into())),
            (
                FheLowering::Cleartext
                | FheLowering::ClientEncrypts
                | FheLowering::ClientDecrypts
                | FheLowering::Levelled
                | FheLowering::FloatOnly
                | FheLowering::Refused(_),
                Some(_),
            ) => return Err(fail("a bootstrap plan for a value that is no `lut`".into())),
            (FheLowering::ClientEncrypts, None) => {
                if delta.is_none() {
                    return Err(fail("the client encrypts it, but it has no encoding".into()));
                }
            }
            (FheLowering::ClientDecrypts, None) => {
                if delta.is_some() || input_delta(0).is_none() {
                    return Err(fail("the client decrypts its operand: that must be encrypted, not the result".into()));
                }
            }
            (FheLowering::Levelled, None) => {
                let Some(d) = delta else { continue };
                let Some(map) = &circuit.linear[i] else {
                    return Err(fail(format!("an encrypted `{mnemonic}` without its linear map")));
                };
                let operands = map_operands(graph, ValueId(i as u32), &circuit.log_delta);
                let input_len: usize = operands.iter().map(|x| graph.ty(*x).shape.numel()).sum();
                if map.terms.len() != numel || map.constant.len() != numel {
                    return Err(fail(format!(
                        "its linear map has {} rows and {} constants for {numel} elements",
                        map.terms.len(),
                        map.constant.len()
                    )));
                }
                if let Some(&(j, _)) = map.terms.iter().flatten().find(|(j, _)| *j as usize >= input_len) {
                    return Err(fail(format!("its linear map reads element {j} of encrypted operands of {input_len}")));
                }
                if let Some(x) = operands.iter().find(|x| circuit.partition_of(x.index()) != circuit.partition_of(i)) {
                    return Err(fail(format!("its operand {x} is in another key partition")));
                }
                if let Some(x) = operands.iter().find(|x| circuit.log_delta[x.index()] > Some(d)) {
                    return Err(fail(format!(
                        "encoded at 2^{d}, its operand {x} at 2^{:?}: a levelled op keeps or refines the encoding",
                        circuit.log_delta[x.index()]
                    )));
                }
                let plain = node.inputs.iter().filter(|x| !operands.contains(x));
                if plain.clone().any(|&c| graph.const_value(c).is_none()) {
                    return Err(fail(format!(
                        "an encrypted `{mnemonic}` reads operands that are neither encrypted nor constant"
                    )));
                }
            }
            (FheLowering::Cleartext | FheLowering::FloatOnly | FheLowering::Refused(_), None) => {
                if delta.is_some() {
                    return Err(fail(format!("`{mnemonic}` has no TFHE evaluation but is encrypted")));
                }
            }
        }
    }
    if pbs != circuit.stats.pbs {
        return Err(CircuitError::Stats { claimed: circuit.stats.pbs, counted: pbs });
    }
    verify_client_values(circuit, graph)
}

/// The client encrypts and decrypts exactly [`client_values`] (its finishing pass binds
/// nothing else), and only levelled values carry a linear map.
fn verify_client_values(circuit: &Circuit, graph: &Graph) -> Result<(), CircuitError> {
    for (i, node) in graph.nodes.iter().enumerate() {
        let levelled = circuit.log_delta[i].is_some() && matches!(node.op.fhe_lowering(), FheLowering::Levelled);
        if circuit.linear[i].is_some() && !levelled {
            return Err(CircuitError::Value {
                value: ValueId(i as u32),
                name: node.name.clone(),
                message: "a linear map for a value that is not a levelled encrypted one".into(),
            });
        }
    }
    let (inputs, outputs) = client_values(graph, &circuit.log_delta);
    if circuit.inputs != inputs {
        return Err(CircuitError::Client { what: "encrypts", got: circuit.inputs.clone(), want: inputs });
    }
    if circuit.outputs != outputs {
        return Err(CircuitError::Client { what: "decrypts", got: circuit.outputs.clone(), want: outputs });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lowered::mpc::{Piece, Roles, Step, WeightSpec};

    /// x[4] · W[4, 2] + b, truncated, a piecewise function, revealed.
    fn plan() -> Plan {
        let step = |label: &str, op| Step { label: label.into(), op };
        let function = Piecewise {
            function: "sigmoid".into(),
            breakpoints: vec![-1.0, 1.0],
            pieces: vec![
                Piece { lo: f64::NEG_INFINITY, hi: -1.0, scale: 1.0, offset: 0.0, coeffs: vec![0.0, 0.1] },
                Piece { lo: -1.0, hi: 1.0, scale: 1.0, offset: 0.5, coeffs: vec![0.5, 0.2, 0.01] },
                Piece { lo: 1.0, hi: f64::INFINITY, scale: 1.0, offset: 0.0, coeffs: vec![1.0] },
            ],
            max_error: 1e-4,
        };
        Plan {
            name: "t".into(),
            graph_digest: [0; 32],
            frac_bits: 18,
            roles: Roles::default(),
            input_shape: vec![1, 4],
            output_shape: vec![1, 2],
            weights: vec![WeightSpec { name: "w".into(), len: 8 }, WeightSpec { name: "b".into(), len: 2 }],
            weight_values: Some(vec![vec![1; 8], vec![2; 2]]),
            regs: 4,
            steps: vec![
                step("%0 \"x\"", StepOp::Share { out: 0, len: 4 }),
                step("%3 \"/fc/Gemm\"", StepOp::MatMul { x: 0, w: 0, b: Some(1), m: 1, k: 4, n: 2, out: 1 }),
                step("%3 \"/fc/Gemm\"", StepOp::Trunc { x: 1, len: 2, bits: 18, out: 2 }),
                step("%4 \"/Sigmoid\"", StepOp::Piecewise { x: 2, len: 2, function, out: 3 }),
                step("%4 \"/Sigmoid\"", StepOp::Reveal { x: 3, len: 2 }),
            ],
            finish: None,
        }
    }

    #[test]
    fn a_finish_graph_is_a_weightless_map_of_the_revealed_output() {
        use crate::ops::{Input, Op, Softmax};
        let finish = |with_const: bool| {
            let mut g = Graph::new("t.finish");
            let ty = crate::TensorType::f32(crate::Shape(vec![1, 2]));
            let x = g.push(Op::Input(Input { index: 0, ty }), vec![], "x").unwrap();
            let y = g.push(Op::Softmax(Softmax { axes: vec![1], log: false }), vec![x], "softmax").unwrap();
            if with_const {
                g.push_const(crate::Tensor::F32(ndarray::arr1(&[1.0f32]).into_dyn()), None, "k");
            }
            g.outputs.push(y);
            g
        };
        let mut p = plan();
        p.finish = Some(finish(false));
        verify_plan(&p).unwrap();
        p.finish = Some(finish(true));
        assert!(error(&p).contains("the finish graph: %2 is a `const`"), "{}", error(&p));
        p.output_shape = vec![2];
        p.finish = Some(finish(false));
        assert!(error(&p).contains("the finish graph: %0 is f32[1,2], the revealed output f32[2]"), "{}", error(&p));
    }

    fn error(plan: &Plan) -> String {
        verify_plan(plan).unwrap_err().to_string()
    }

    #[test]
    fn a_consistent_plan_passes_with_or_without_weights() {
        verify_plan(&plan()).unwrap();
        verify_plan(&plan().weightless()).unwrap();
        assert_eq!(Plan::from_bytes(&plan().to_bytes()).unwrap(), plan());
    }

    #[test]
    fn indices_out_of_range_are_named_with_their_step() {
        let mut p = plan().weightless();
        let StepOp::Trunc { x, .. } = &mut p.steps[2].op else { unreachable!() };
        *x = 99;
        let e = verify_plan(&p).unwrap_err();
        assert!(matches!(
            e,
            PlanError::Step { index: 2, problem: StepProblem::RegisterOutOfRange { reg: 99, regs: 4 }, .. }
        ));
        assert_eq!(e.to_string(), "step 2 (%3 \"/fc/Gemm\"): register 99 out of range (plan has 4)");

        let mut p = plan().weightless();
        let StepOp::MatMul { w, .. } = &mut p.steps[1].op else { unreachable!() };
        *w = 7;
        assert_eq!(error(&p), "step 1 (%3 \"/fc/Gemm\"): weight 7 out of range (plan has 2)");

        let mut p = plan();
        let StepOp::Piecewise { out, .. } = &mut p.steps[3].op else { unreachable!() };
        *out = 1;
        assert_eq!(error(&p), "step 4 (%4 \"/Sigmoid\"): register 3 is read before any step writes it");
    }

    #[test]
    fn wrong_lengths_are_named() {
        let mut p = plan().weightless();
        let StepOp::MatMul { k, .. } = &mut p.steps[1].op else { unreachable!() };
        *k = 3;
        assert_eq!(error(&p), "step 1 (%3 \"/fc/Gemm\"): register 0 has 4 elements, expected 3");

        let mut p = plan();
        p.weight_values.as_mut().unwrap()[1].push(5);
        assert!(matches!(verify_plan(&p), Err(PlanError::Plan(PlanProblem::WeightValues(_)))));

        let mut p = plan();
        p.output_shape = vec![3];
        assert_eq!(error(&p), "step 4 (%4 \"/Sigmoid\"): the revealed register has 2 elements, expected 3");
    }

    #[test]
    fn piecewise_functions_need_sorted_finite_breakpoints_and_one_piece_more() {
        let with = |f: &dyn Fn(&mut Piecewise)| {
            let mut p = plan();
            let StepOp::Piecewise { function, .. } = &mut p.steps[3].op else { unreachable!() };
            f(function);
            error(&p)
        };
        assert!(with(&|f| f.breakpoints.reverse()).contains("breakpoints out of order: 1 then -1"));
        assert!(with(&|f| f.breakpoints[0] = f64::NAN).contains("breakpoint NaN is not finite"));
        assert!(with(&|f| {
            f.pieces.pop();
        })
        .contains("2 pieces for 2 breakpoints"));
        assert!(with(&|f| f.pieces[0].coeffs = vec![0.0, 1.0, 2.0]).contains("piece 0 is of degree 2 in x itself"));
        assert!(with(&|f| f.breakpoints.clear()).contains("without breakpoints"));
    }

    #[test]
    fn sizes_beyond_the_limits_are_refused_before_anything_is_allocated() {
        let mut p = plan().weightless();
        p.regs = usize::MAX;
        assert_eq!(error(&p), format!("the number of registers is {}, more than the limit of {MAX_REGS}", usize::MAX));
        let mut p = plan().weightless();
        p.weights[0].len = 1 << 40;
        assert!(matches!(verify_plan(&p), Err(PlanError::Plan(PlanProblem::TooLarge { .. }))));
        let mut p = plan().weightless();
        p.input_shape = vec![1 << 20, 1 << 20, 1 << 30];
        assert!(error(&p).contains("more than the limit"));
        let mut p = plan().weightless();
        let StepOp::MatMul { m, .. } = &mut p.steps[1].op else { unreachable!() };
        *m = usize::MAX;
        assert!(error(&p).contains("m·k is"), "{}", error(&p));
        let mut p = plan().weightless();
        p.frac_bits = 64;
        assert_eq!(error(&p), "64 fractional bits; plans use 1 to 32");
        p.frac_bits = 32;
        assert!(error(&p).starts_with("step 1 (%3 \"/fc/Gemm\"): a matmul multiplies fixed-point values at 2^64"));
    }

    #[test]
    fn every_plan_shares_once_and_reveals_last() {
        let mut p = plan();
        p.steps.pop();
        assert_eq!(error(&p), "the plan has 0 `reveal` steps; it needs exactly one");
        let mut p = plan();
        p.steps.swap(3, 4);
        assert_eq!(error(&p), "the `reveal` step is not the last one");
        let mut p = plan();
        p.roles.receiver = 3;
        assert_eq!(error(&p), "the receiver is party 3; parties are 0, 1 and 2");
    }

    #[test]
    fn decoding_is_bounded_and_verified() {
        let mut bytes = plan().to_bytes();
        assert!(matches!(Plan::from_bytes(&bytes[1..]), Err(crate::lowered::mpc::PlanFileError::Foreign)));
        bytes.truncate(bytes.len() - 3);
        assert!(Plan::from_bytes(&bytes).unwrap_err().to_string().starts_with("corrupt MPC plan"));
        let mut p = plan();
        p.regs = 2;
        let e = Plan::from_bytes(&p.to_bytes()).unwrap_err();
        assert!(e.to_string().starts_with("invalid MPC plan: step 2"), "{e}");
    }
}
