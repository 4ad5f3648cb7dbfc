//! `lower_mpc`: the float IR → an SMPC protocol plan ([`secc_ir::lowered::mpc`]).
//!
//! Values are fixed point at `2^f`. Each op lowers itself (its [`MpcRule`], in its file
//! under `secc_ir::ops`) through the [`MpcCx`] this driver implements: registers,
//! weights the model owner shares, steps. Linear ops (matmul, conv) multiply shared
//! inputs by shared weights (`2^f`) into `2^2f`, add the bias (shared at `2^2f`) and
//! truncate once. Elementwise chains hanging off one computed value (GELU's div →
//! erf → add → mul → mul, a sigmoid, ...) are one univariate function of that value,
//! materialised where a register is needed: a lone ReLU becomes the exact comparison
//! protocol, anything else a piecewise polynomial fitted here ([`fit`]) on the range
//! the value took on the calibration set. A tree ensemble is one forest step
//! (batched comparisons, boolean path selection, one bit injection per leaf).
//!
//! The model's classifier head (softmaxes, sigmoids, a normalizer after a softmax) is
//! left to the receiver, as TFHE leaves a final activation to the client: the plan
//! reveals the value before it and carries the head as its `finish` graph.

mod fit;

use crate::CompileError;
use secc_ir::lowered::fixed::encode_fixed as fixed;
use secc_ir::lowered::mpc::{Piecewise, Plan, Reg, Roles, Step, StepOp, WeightSpec};
use secc_ir::ops::{uniform_const, Lowered, MpcCx, MpcRule, Pwl, UnaryKind};
use secc_ir::{Graph, Op, OpSpec, Tensor, ValueId};
use std::collections::HashMap;

/// The fixed-point precision a plan with a tree ensemble keeps at least.
pub use secc_ir::ops::FOREST_FRAC_BITS;

/// Settings of the MPC lowering.
#[derive(Clone, Copy, Debug)]
pub struct MpcConfig {
    /// Fractional bits of the fixed-point encoding (SPU uses 18). Products of two
    /// values must stay below `2^(62 − 2f)` in magnitude.
    pub frac_bits: u32,
    /// Who shares the input, who shares the weights, who gets the output.
    pub roles: Roles,
}

impl Default for MpcConfig {
    fn default() -> Self {
        MpcConfig { frac_bits: 18, roles: Roles::default() }
    }
}

struct Lowering<'a> {
    graph: &'a Graph,
    ranges: &'a [Option<(f64, f64)>],
    cfg: MpcConfig,
    state: Vec<Lowered<Reg>>,
    plan: Plan,
    weight_of: HashMap<(ValueId, u32), usize>,
}

/// Lowers the float graph `graph`, whose values took the ranges `ranges` on the
/// calibration set, to a plan. The plan holds the weights (the model owner's plan);
/// [`Plan::weightless`] strips them for the other parties.
pub fn lower_mpc(graph: &Graph, ranges: &[Option<(f64, f64)>], mut cfg: MpcConfig) -> Result<Plan, CompileError> {
    if graph.inputs.len() != 1 || graph.outputs.is_empty() {
        return Err(CompileError::Pass {
            pass: "lower_mpc",
            value: ValueId(0),
            node: graph.name.clone(),
            message: "the mpc backend takes models with one input and at least one output".into(),
        });
    }
    let (outputs, tail) = match receiver_tail(graph) {
        Some((cut, tail)) => (vec![cut], tail),
        None => (graph.outputs.clone(), Vec::new()),
    };
    let in_tail = |i: usize| tail.contains(&ValueId(i as u32));
    // Some ops resolve less than others need (a forest's thresholds): the most wins.
    let needs = graph.nodes.iter().enumerate().filter(|&(i, _)| !in_tail(i)).map(|(_, n)| n.op.min_frac_bits());
    cfg.frac_bits = needs.fold(cfg.frac_bits, u32::max);
    // Several outputs are revealed as one, laid end to end as `run` writes them.
    let output_shape = match outputs.as_slice() {
        [out] => graph.ty(*out).shape.0.clone(),
        outs => vec![outs.iter().map(|&o| graph.ty(o).shape.numel()).sum()],
    };
    let mut l = Lowering {
        graph,
        ranges,
        cfg,
        state: Vec::with_capacity(graph.nodes.len()),
        plan: Plan {
            name: graph.name.clone(),
            graph_digest: graph.digest(),
            frac_bits: cfg.frac_bits,
            roles: cfg.roles,
            input_shape: graph.ty(graph.inputs[0]).shape.0.clone(),
            output_shape,
            weights: vec![],
            weight_values: Some(vec![]),
            regs: 0,
            steps: vec![],
            finish: (!tail.is_empty()).then(|| finish_graph(graph, outputs[0], &tail)),
        },
        weight_of: HashMap::new(),
    };
    for (i, node) in graph.nodes.iter().enumerate() {
        // The receiver's: nothing reads it in the plan.
        let state = if in_tail(i) { Lowered::Const } else { node.op.lower_mpc(graph, ValueId(i as u32), &mut l)? };
        l.state.push(state);
    }
    let last = *outputs.last().expect("checked above");
    let xs = outputs.iter().map(|&o| l.reg(o)).collect::<Result<Vec<_>, _>>()?;
    let len = l.plan.output_shape.iter().product();
    let x = match xs.as_slice() {
        [x] => *x,
        _ => {
            let out = l.new_reg();
            l.step(last, StepOp::Gather { xs, w: None, index: (0..len as i64).collect(), out });
            out
        }
    };
    l.step(last, StepOp::Reveal { x, len });
    Ok(l.plan)
}

/// The model's head the receiver runs ([`Plan::finish`]): walking back from a single
/// output, the softmaxes, sigmoids and normalizers of a softmax's output that each read
/// one computed value of their own shape and feed only the next. Each moves no output
/// by more than it moves its input, so the plan's bounds on the revealed values bound
/// the outputs. The value before them (the one the plan reveals) and the head in order;
/// `None` without one, or when it would reveal a model input (the receiver need not be
/// the data owner).
fn receiver_tail(graph: &Graph) -> Option<(ValueId, Vec<ValueId>)> {
    let [mut v] = graph.outputs[..] else { return None };
    let users = |v: ValueId| graph.nodes.iter().filter(|n| n.inputs.contains(&v)).count();
    let mut tail = Vec::new();
    loop {
        let node = graph.node(v);
        let [x] = node.inputs[..] else { break };
        let head = match &node.op {
            Op::Softmax(_) => true,
            Op::Unary(u) => matches!(u.kind, UnaryKind::Sigmoid),
            Op::Normalize(_) => matches!(graph.node(x).op, Op::Softmax(_)),
            _ => false,
        };
        let feeds_only_the_tail = tail.is_empty() || users(v) == 1;
        if !head
            || !feeds_only_the_tail
            || graph.ty(x).shape != node.ty.shape
            || matches!(graph.node(x).op, Op::Input(_))
        {
            break;
        }
        tail.push(v);
        v = x;
    }
    tail.reverse();
    (!tail.is_empty()).then_some((v, tail))
}

/// The tail as a graph of its own, reading the revealed value.
fn finish_graph(graph: &Graph, cut: ValueId, tail: &[ValueId]) -> Graph {
    let mut g = Graph::new(format!("{}.finish", graph.name));
    let input = secc_ir::ops::Input { index: 0, ty: graph.ty(cut).clone() };
    let mut x = g.push(Op::Input(input), vec![], graph.node(cut).name.clone()).expect("an input");
    for &v in tail {
        let node = graph.node(v);
        x = g.push(node.op.clone(), vec![x], node.name.clone()).expect("the op took this operand in the model");
    }
    g.outputs.push(x);
    g
}

impl MpcCx for Lowering<'_> {
    type Error = CompileError;

    fn fail(&self, v: ValueId, message: impl Into<String>) -> CompileError {
        CompileError::Pass {
            pass: "lower_mpc",
            value: v,
            node: self.graph.node(v).name.clone(),
            message: message.into(),
        }
    }

    fn frac_bits(&self) -> u32 {
        self.cfg.frac_bits
    }

    fn state(&self, v: ValueId) -> &Lowered<Reg> {
        &self.state[v.index()]
    }

    fn reg(&mut self, v: ValueId) -> Result<Reg, CompileError> {
        match &self.state[v.index()] {
            Lowered::Computed(r) => Ok(*r),
            Lowered::Const => {
                Err(self.fail(v, "a constant used as a computed tensor is not supported by the mpc backend"))
            }
            Lowered::Chain(region) => {
                let region = region.clone();
                let x = self.reg(region.source)?;
                let out = self.new_reg();
                let op = region.mpc_step(self.graph, v, x, out, self)?;
                self.step(v, op);
                self.state[v.index()] = Lowered::Computed(out);
                Ok(out)
            }
        }
    }

    fn new_reg(&mut self) -> Reg {
        self.plan.regs += 1;
        self.plan.regs - 1
    }

    fn step(&mut self, v: ValueId, op: StepOp) {
        let label = format!("{v} \"{}\"", self.graph.node(v).name);
        self.plan.steps.push(Step { label, op });
    }

    fn weight(&mut self, c: ValueId, bits: u32) -> Result<usize, CompileError> {
        if let Some(&w) = self.weight_of.get(&(c, bits)) {
            return Ok(w);
        }
        let value = self.graph.const_value(c).ok_or_else(|| self.fail(c, "the mpc backend needs constant weights"))?;
        let words = value.to_f64_vec().iter().map(|&x| fixed(x, bits)).collect::<Vec<_>>();
        let w = self.raw_weight(format!("{c} \"{}\"", self.graph.node(c).name), words);
        self.weight_of.insert((c, bits), w);
        Ok(w)
    }

    fn raw_weight(&mut self, name: String, words: Vec<i64>) -> usize {
        self.plan.weights.push(WeightSpec { name, len: words.len() });
        self.plan.weight_values.as_mut().expect("the compiler's plan holds weights").push(words);
        self.plan.weights.len() - 1
    }

    fn range(&self, v: ValueId) -> Option<(f64, f64)> {
        self.ranges.get(v.index()).copied().flatten()
    }

    fn fit_fn(
        &self,
        v: ValueId,
        name: &str,
        f: &dyn Fn(f64) -> f64,
        (lo, hi): (f64, f64),
        tol: f64,
    ) -> Result<Piecewise, CompileError> {
        // The fit measures its error on a dense grid and refuses when it misses `tol`.
        let batch = |xs: &[f64]| xs.iter().map(|&x| f(x)).collect::<Vec<f64>>();
        fit::fit(&batch, name, lo, hi, self.cfg.frac_bits, tol).map_err(|m| self.fail(v, m))
    }

    fn fit(&self, v: ValueId, source: ValueId, chain: &[ValueId]) -> Result<Piecewise, CompileError> {
        let f = self.chain_function(v, source, chain)?;
        let calibrated = self.range(source)?;
        let (lo, hi) = self.fitted_range(calibrated, &f);
        let peak = [lo, hi, (lo + hi) / 2.0].iter().map(|&x| f(&[x])[0].abs()).fold(1.0, f64::max);
        fit::fit(&f, &self.chain_name(chain), lo, hi, self.cfg.frac_bits, 1e-4 * peak)
            .map_err(|why| self.fail(v, format!("the mpc backend cannot fit `{}`: {why}", self.chain_name(chain))))
    }

    fn exact(&self, _: ValueId, source: ValueId, chain: &[ValueId], f: &Pwl) -> Result<Piecewise, CompileError> {
        let (lo, hi) = self.range(source)?;
        let margin = ((hi - lo) * 0.1).max(1e-3);
        Ok(fit::exact(f, &self.chain_name(chain), lo - margin, hi + margin, self.cfg.frac_bits))
    }
}

impl Lowering<'_> {
    fn range(&self, source: ValueId) -> Result<(f64, f64), CompileError> {
        self.ranges.get(source.index()).copied().flatten().ok_or_else(|| self.fail(source, "never calibrated"))
    }

    fn chain_name(&self, chain: &[ValueId]) -> String {
        chain.iter().map(|&c| self.graph.node(c).op.mnemonic()).collect::<Vec<_>>().join(" → ")
    }

    /// The calibrated range plus 10% on each side, less where the function is not
    /// finite there (√x below 0): the fit covers what the calibration saw, and the
    /// tangent tails what lies beyond.
    fn fitted_range(&self, (lo, hi): (f64, f64), f: &dyn Fn(&[f64]) -> Vec<f64>) -> (f64, f64) {
        let margin = ((hi - lo) * 0.1).max(1e-3);
        let y = f(&[lo - margin, hi + margin]);
        (if y[0].is_finite() { lo - margin } else { lo }, if y[1].is_finite() { hi + margin } else { hi })
    }

    /// Chain `chain` (ending at `v`) as a function of a batch of `source` values: the
    /// chain's constants bound as scalars, which they are when the chain is the same
    /// function for every element.
    fn chain_function(
        &self,
        v: ValueId,
        source: ValueId,
        chain: &[ValueId],
    ) -> Result<impl Fn(&[f64]) -> Vec<f64> + '_, CompileError> {
        let g = self.graph;
        if g.ty(v).shape != g.ty(source).shape {
            return Err(self.fail(
                v,
                "the elementwise chain changes the shape of its input; the mpc backend needs one value per element",
            ));
        }
        let mut consts = HashMap::new();
        for &i in chain.iter().flat_map(|&n| &g.node(n).inputs) {
            if g.const_value(i).is_some() {
                let c = uniform_const(g, i).ok_or_else(|| {
                    self.fail(v, format!("the elementwise chain differs between elements (per-channel constant {i}); the mpc backend needs one function per tensor"))
                })?;
                consts.insert(i, Tensor::F32(ndarray::arr0(c).into_dyn()));
            }
        }
        let chain = chain.to_vec();
        Ok(move |xs: &[f64]| -> Vec<f64> {
            let t = Tensor::F32(ndarray::Array1::from_iter(xs.iter().map(|&x| x as f32)).into_dyn());
            let mut bound = consts.clone();
            bound.insert(source, t);
            let out = secc_ir::interp::eval_nodes(g, &chain, bound);
            out.as_f32().expect("float chain").iter().map(|&y| y as f64).collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secc_ir::ops::{Input, MatMul, Unary, UnaryKind};
    use secc_ir::{Op, Shape, TensorType};

    /// `tanh(relu(y))` joins its chain before a second matmul gives `relu` a register
    /// of its own: the chain still computes `relu` from `y`.
    #[test]
    fn a_chain_recomputes_a_node_materialised_after_it_joined() {
        let mut g = Graph::new("t");
        let x = g.push(Op::Input(Input { index: 0, ty: TensorType::f32(Shape(vec![1, 2])) }), vec![], "x").unwrap();
        let w = g.push_const(Tensor::F32(ndarray::arr2(&[[1.0f32, -1.0], [0.5, 2.0]]).into_dyn()), None, "w");
        let y = g.push(Op::MatMul(MatMul { x_zp: 0 }), vec![x, w], "m1").unwrap();
        let relu = g.push(Op::Unary(Unary { kind: UnaryKind::Relu }), vec![y], "relu").unwrap();
        let tanh = g.push(Op::Unary(Unary { kind: UnaryKind::Tanh }), vec![relu], "tanh").unwrap();
        g.push(Op::MatMul(MatMul { x_zp: 0 }), vec![relu, w], "m2").unwrap();
        g.outputs.push(tanh);
        let plan = lower_mpc(&g, &vec![Some((-2.0, 2.0)); g.nodes.len()], MpcConfig::default()).unwrap();
        let ops: Vec<&str> = plan.steps.iter().map(|s| s.op.mnemonic()).collect();
        assert_eq!(ops, ["share", "matmul", "trunc", "relu", "matmul", "trunc", "piecewise", "reveal"]);
        let StepOp::Piecewise { x, function, .. } = &plan.steps[6].op else { unreachable!("{ops:?}") };
        let StepOp::Trunc { out: y_reg, .. } = plan.steps[2].op else { unreachable!("{ops:?}") };
        assert_eq!((*x, function.function.as_str()), (y_reg, "relu → tanh"));
    }
}
