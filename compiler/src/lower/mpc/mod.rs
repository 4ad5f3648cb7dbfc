//! `lower_mpc`: the float IR → an SMPC protocol plan ([`secc_ir::lowered::mpc`]).
//!
//! Values are fixed point at `2^f`. Linear ops (matmul, conv) multiply shared inputs
//! by shared weights (`2^f`) into `2^2f`, add the bias (shared at `2^2f`) and truncate
//! once. Elementwise chains hanging off one computed value (GELU's div → erf → add →
//! mul → mul, a sigmoid, ...) are one univariate function of that value: a lone ReLU
//! becomes the exact comparison protocol, anything else a piecewise polynomial fitted
//! on the range the value took on the calibration set ([`fit`]). A tree ensemble is
//! one forest step (batched comparisons, boolean path selection, one bit injection
//! per leaf).

mod fit;

use crate::CompileError;
use secc_ir::lowered::fixed::encode_fixed as fixed;
use secc_ir::lowered::mpc::{ConvGeometry, ForestPlan, Plan, PoolTaps, Reg, Roles, Step, StepOp, WeightSpec};
use secc_ir::ops::{BranchMode, Split, TreeEnsemble, UnaryKind, Window};
use secc_ir::{Graph, Op, OpSpec, Tensor, ValueId};
use std::collections::HashMap;

/// Fractional bits of a plan with a tree ensemble: inputs up to `2^30` in magnitude.
pub const FOREST_FRAC_BITS: u32 = 32;

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

/// The state of a float value during lowering.
#[derive(Clone, Copy)]
enum Value {
    /// A constant (a weight, or folded into an activation).
    Const,
    /// Computed into a register.
    Reg(Reg),
    /// An elementwise function of one computed value, not materialised yet.
    Chain(ValueId),
}

struct Lowering<'a> {
    graph: &'a Graph,
    ranges: &'a [Option<(f64, f64)>],
    cfg: MpcConfig,
    state: Vec<Option<Value>>,
    plan: Plan,
    weight_of: HashMap<(ValueId, u32), usize>,
}

/// Lowers the float graph `graph`, whose values took the ranges `ranges` on the
/// calibration set, to a plan. The plan holds the weights (the model owner's plan);
/// [`Plan::weightless`] strips them for the other parties.
pub fn lower_mpc(graph: &Graph, ranges: &[Option<(f64, f64)>], mut cfg: MpcConfig) -> Result<Plan, CompileError> {
    // A forest truncates no product, so its inputs can keep 32 fractional bits: f32
    // features one ulp from a threshold (as trained thresholds often are) still
    // compare the right way, which 18 bits cannot resolve.
    if graph.nodes.iter().any(|n| matches!(n.op, Op::TreeEnsemble(_))) {
        cfg.frac_bits = cfg.frac_bits.max(FOREST_FRAC_BITS);
    }
    if graph.inputs.len() != 1 || graph.outputs.len() != 1 {
        return Err(CompileError::Pass {
            pass: "lower_mpc",
            value: ValueId(0),
            node: graph.name.clone(),
            message: "the mpc backend takes models with one input and one output".into(),
        });
    }
    let mut l = Lowering {
        graph,
        ranges,
        cfg,
        state: vec![None; graph.nodes.len()],
        plan: Plan {
            name: graph.name.clone(),
            graph_digest: graph.digest(),
            frac_bits: cfg.frac_bits,
            roles: cfg.roles,
            input_shape: graph.ty(graph.inputs[0]).shape.0.clone(),
            output_shape: graph.ty(graph.outputs[0]).shape.0.clone(),
            weights: vec![],
            weight_values: Some(vec![]),
            regs: 0,
            steps: vec![],
        },
        weight_of: HashMap::new(),
    };
    for i in 0..graph.nodes.len() {
        let v = ValueId(i as u32);
        let state = l.node(v)?;
        l.state[i] = Some(state);
    }
    let out = graph.outputs[0];
    let x = l.reg(out)?;
    let len = graph.ty(out).shape.numel();
    l.step(out, StepOp::Reveal { x, len });
    Ok(l.plan)
}

impl Lowering<'_> {
    fn fail(&self, v: ValueId, message: impl Into<String>) -> CompileError {
        CompileError::Pass {
            pass: "lower_mpc",
            value: v,
            node: self.graph.node(v).name.clone(),
            message: message.into(),
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

    fn numel(&self, v: ValueId) -> usize {
        self.graph.ty(v).shape.numel()
    }

    /// The register holding `v`, materialising an elementwise chain if needed.
    fn reg(&mut self, v: ValueId) -> Result<Reg, CompileError> {
        match self.state[v.index()].expect("operands come first") {
            Value::Reg(r) => Ok(r),
            Value::Const => {
                Err(self.fail(v, "a constant used as a computed tensor is not supported by the mpc backend"))
            }
            Value::Chain(source) => {
                let x = self.reg(source)?;
                let out = self.new_reg();
                let len = self.numel(v);
                let chain = self.chain(v, source);
                let op = if let [only] = chain[..] {
                    match &self.graph.node(only).op {
                        Op::Unary(u) if u.kind == UnaryKind::Relu => Some(StepOp::Relu { x, len, out }),
                        _ => None,
                    }
                } else {
                    None
                };
                let op = match op {
                    Some(op) => op,
                    None => StepOp::Piecewise { x, len, function: self.fit_chain(v, source, &chain)?, out },
                };
                self.step(v, op);
                self.state[v.index()] = Some(Value::Reg(out));
                Ok(out)
            }
        }
    }

    /// The elementwise nodes `v` depends on back to `source`, in evaluation order.
    fn chain(&self, v: ValueId, source: ValueId) -> Vec<ValueId> {
        let mut needed = vec![false; v.index() + 1];
        needed[v.index()] = true;
        for i in (source.index() + 1..=v.index()).rev() {
            if needed[i] && matches!(self.state[i], Some(Value::Chain(_))) {
                self.graph.nodes[i]
                    .inputs
                    .iter()
                    .filter(|u| u.index() > source.index())
                    .for_each(|u| needed[u.index()] = true);
            }
        }
        (source.index() + 1..=v.index())
            .filter(|&i| needed[i] && matches!(self.state[i], Some(Value::Chain(_))))
            .map(|i| ValueId(i as u32))
            .collect()
    }

    fn fit_chain(
        &self,
        v: ValueId,
        source: ValueId,
        chain: &[ValueId],
    ) -> Result<secc_ir::lowered::mpc::Piecewise, CompileError> {
        let g = self.graph;
        let shape = g.ty(source).shape.clone();
        let eval = |x: f64| -> Vec<f32> {
            let t = Tensor::F32(ndarray::ArrayD::from_elem(ndarray::IxDyn(&shape.0), x as f32));
            let out = secc_ir::interp::eval_nodes(g, chain, HashMap::from([(source, t)]));
            out.as_f32().expect("float chain").iter().copied().collect()
        };
        let (lo, hi) =
            self.ranges.get(source.index()).copied().flatten().ok_or_else(|| self.fail(source, "never calibrated"))?;
        let margin = ((hi - lo) * 0.1).max(1e-3);
        let (lo, hi) = (lo - margin, hi + margin);
        for probe in [lo, (lo + hi) / 2.0, hi] {
            let y = eval(probe);
            if y.iter().any(|&e| (e - y[0]).abs() > 1e-5 * (1.0 + y[0].abs())) {
                return Err(self.fail(v, "the elementwise chain differs between elements (per-channel constants); the mpc backend needs one function per tensor"));
            }
        }
        let f = |x: f64| eval(x)[0] as f64;
        let name: Vec<&str> = chain.iter().map(|&c| g.node(c).op.mnemonic()).collect();
        let peak = [lo, hi, (lo + hi) / 2.0].iter().map(|&x| f(x).abs()).fold(1.0, f64::max);
        Ok(fit::fit(&f, &name.join(" → "), lo, hi, self.cfg.frac_bits, 1e-4 * peak))
    }

    /// Registers constant `c` as a weight at scale `2^bits`.
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

    /// Registers already encoded words as a weight the model owner shares.
    fn raw_weight(&mut self, name: String, words: Vec<i64>) -> usize {
        self.plan.weights.push(WeightSpec { name, len: words.len() });
        self.plan.weight_values.as_mut().expect("the compiler's plan holds weights").push(words);
        self.plan.weights.len() - 1
    }

    /// The forest step of ensemble `v` ([`ForestPlan`]): comparisons `c = [x̃ < τ]`
    /// on the fixed-point input `x̃`, so with `t̃` the threshold rounded the same way,
    /// `x ≤ t` is `x̃ < t̃ + 1` and `x < t` is `x̃ < t̃` (`≥`, `>` their negations): exact
    /// but for inputs within `2^−f` of a threshold.
    fn forest(&mut self, v: ValueId, t: &TreeEnsemble) -> Result<Value, CompileError> {
        let node = self.graph.node(v);
        let x = self.reg(node.inputs[0])?;
        let f = self.cfg.frac_bits;
        let features = *self.graph.ty(node.inputs[0]).shape.0.last().expect("[N, F] input");
        let (keys, paths) = t
            .leaf_paths(|feature, threshold, mode| {
                // Rounded as the input is, so a feature equal to its threshold compares equal.
                let t = fixed(threshold, f);
                let (bound, negate) = match mode {
                    BranchMode::Leq => (t + 1, false),
                    BranchMode::Lt => (t, false),
                    BranchMode::Gte => (t, true),
                    BranchMode::Gt => (t + 1, true),
                    BranchMode::Eq | BranchMode::Neq => {
                        return Err("equality branches are not supported by the mpc backend".to_string())
                    }
                };
                Ok(Split::Compare { key: (feature, bound), negate })
            })
            .map_err(|m| self.fail(v, m))?;
        let mut select = vec![0; features * keys.len()];
        keys.iter().enumerate().for_each(|(j, &(feature, _))| select[feature * keys.len() + j] = 1);
        let name = |what: &str| format!("{v} \"{}\" {what}", node.name);
        let select = self.raw_weight(name("selection"), select);
        let bounds = self.raw_weight(name("bounds"), keys.iter().map(|k| k.1).collect());
        let mut entries = Vec::new();
        let mut values = Vec::new();
        for (leaf, path) in paths.iter().enumerate() {
            for &(target, w) in &path.weights {
                entries.push((leaf as u32, target as u32));
                values.push(fixed(w * t.per_tree(), f));
            }
        }
        let values = self.raw_weight(name("leaf values"), values);
        let base = self.raw_weight(name("base values"), t.base_values.iter().map(|&b| fixed(b, f)).collect());
        let paths = paths.iter().map(|p| p.literals.iter().map(|l| (l.comparison as u32, l.want)).collect()).collect();
        let forest = ForestPlan {
            features,
            comparisons: keys.len(),
            select,
            bounds,
            paths,
            entries,
            values,
            targets: t.n_targets,
            base,
        };
        let out = self.new_reg();
        self.step(v, StepOp::Forest { x, forest, out });
        Ok(Value::Reg(out))
    }

    /// Emits a linear step into a wide register, then the truncation back to `2^f`.
    fn linear(&mut self, v: ValueId, op: impl FnOnce(Reg, Reg) -> StepOp, x: Reg) -> Value {
        let wide = self.new_reg();
        self.step(v, op(x, wide));
        let out = self.new_reg();
        let len = self.numel(v);
        self.step(v, StepOp::Trunc { x: wide, len, bits: self.cfg.frac_bits, out });
        Value::Reg(out)
    }

    fn taps(&self, window: &Window, x: ValueId) -> PoolTaps {
        let shape = &self.graph.ty(x).shape;
        let input_len = shape.numel();
        let index = ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&shape.0), (0..input_len).collect()).expect("numel");
        let taps = window.apply(&index, |t: &[usize]| t.to_vec());
        PoolTaps { input_len, taps: taps.into_iter().collect() }
    }

    fn node(&mut self, v: ValueId) -> Result<Value, CompileError> {
        let node = &self.graph.node(v);
        let f = self.cfg.frac_bits;
        Ok(match &node.op {
            Op::Input(_) => {
                let out = self.new_reg();
                // The weights are appended to this step's secrets as they are found.
                self.step(v, StepOp::Share { out, len: self.numel(v) });
                Value::Reg(out)
            }
            Op::Const(_) => Value::Const,
            Op::MatMul(_) => {
                let x = self.reg(node.inputs[0])?;
                let w = self.weight(node.inputs[1], f)?;
                let b = node.inputs.get(2).map(|&b| self.weight(b, 2 * f)).transpose()?;
                let wshape = &self.graph.ty(node.inputs[1]).shape.0;
                let (k, n) = (wshape[0], wshape[1]);
                let m = self.numel(node.inputs[0]) / k;
                self.linear(v, |x, out| StepOp::MatMul { x, w, b, m, k, n, out }, x)
            }
            Op::Conv(c) => {
                let x = self.reg(node.inputs[0])?;
                let w = self.weight(node.inputs[1], f)?;
                let b = node.inputs.get(2).map(|&b| self.weight(b, 2 * f)).transpose()?;
                let dims = |u: ValueId| -> [usize; 4] {
                    self.graph.ty(u).shape.0.clone().try_into().expect("conv operands are rank 4")
                };
                let geometry = ConvGeometry {
                    input: dims(node.inputs[0]),
                    kernel: dims(node.inputs[1]),
                    output: dims(v),
                    strides: [c.strides[0], c.strides[1]],
                    pads: [c.pads[0], c.pads[1]],
                    dilations: [c.dilations[0], c.dilations[1]],
                    group: c.group,
                };
                self.linear(v, |x, out| StepOp::Conv { x, w, b, geometry, out }, x)
            }
            Op::Unary(_) | Op::Binary(_) => {
                let mut source = None;
                for &i in &node.inputs {
                    let s = match self.state[i.index()].expect("operands come first") {
                        Value::Const => continue,
                        Value::Reg(_) => i,
                        Value::Chain(s) => s,
                    };
                    match source {
                        None => source = Some(s),
                        Some(t) if t == s => {}
                        Some(_) => {
                            return Err(self.fail(
                                v,
                                format!(
                                    "`{}` of two different computed tensors is not supported by the mpc backend yet",
                                    node.op.mnemonic()
                                ),
                            ))
                        }
                    }
                }
                Value::Chain(source.ok_or_else(|| self.fail(v, "elementwise op on constants only"))?)
            }
            Op::MaxPool(p) => {
                let x = self.reg(node.inputs[0])?;
                let taps = self.taps(&p.window, node.inputs[0]);
                let out = self.new_reg();
                self.step(v, StepOp::MaxPool { x, taps, out });
                Value::Reg(out)
            }
            Op::AvgPool(p) => {
                let x = self.reg(node.inputs[0])?;
                let taps = self.taps(&p.window, node.inputs[0]);
                let full = p.window.size();
                let divisors = taps.taps.iter().map(|t| if p.count_include_pad { full } else { t.len() }).collect();
                let out = self.new_reg();
                self.step(v, StepOp::AvgPool { x, taps, divisors, out });
                Value::Reg(out)
            }
            Op::Reshape(_) => Value::Reg(self.reg(node.inputs[0])?),
            Op::TreeEnsemble(t) => self.forest(v, t)?,
            Op::Quantize(_) | Op::Dequantize(_) | Op::Lut(_) | Op::SumPool(_) => {
                return Err(self.fail(v, "the mpc backend lowers the float IR, not the quantized one"))
            }
        })
    }
}
