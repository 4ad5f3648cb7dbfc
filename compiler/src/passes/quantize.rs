//! `quantize`: float IR → integer IR.
//!
//! - **Inputs** are quantized per tensor to `bits` unsigned bits over their calibrated
//!   range (widened to include 0, so zero padding is exact); the client does this in the clear.
//! - **Weights** are quantized symmetrically per output channel to `weight_bits`
//!   (`s_w[c] = max|W_c| / (2^(weight_bits−1) − 1)`); biases to the accumulator scale
//!   `s_x · s_w[c]`. Linear ops then compute exact integer accumulators whose range the
//!   op's type rule derives from the clear weights.
//! - **Elementwise chains** become tables ([`super::fuse_lut`]); their outputs are
//!   requantized to `bits` over the calibrated range of the chain's result.
//! - **Average pooling** becomes an exact integer sum; max pooling and reshapes carry
//!   quantization through; tree ensembles become comparison and leaf tables with
//!   levelled sums ([`super::tree_tables`]).
//! - **Outputs** are dequantized (the client does it after decryption). An
//!   elementwise chain that ends the model runs after that, in float on the client,
//!   unless `output_tables` asks for it as a table under encryption.

use super::calibrate::Calibration;
use super::fuse_lut::{tabulate, Region};
use super::tree_tables::tree_tables;
use crate::CompileError;
use ndarray::Axis;
use secc_ir::ops::{Dequantize, Lut, MatMul, MaxPool, Quantize, Reshape, SumPool, TreeEnsemble};
use secc_ir::{Graph, Op, OpSpec, Quant, Tensor, ValueId};

pub use secc_ir::QuantConfig;

/// Unsigned `bits`-bit quantization of `[lo, hi]` widened to contain 0: `(quant, qmin, qmax)`.
pub fn output_quant(lo: f64, hi: f64, bits: u32) -> (Quant, i64, i64) {
    let (lo, hi) = (lo.min(0.0), hi.max(0.0));
    let qmax = (1i64 << bits) - 1;
    let scale = if hi > lo { (hi - lo) / qmax as f64 } else { 1.0 };
    let zp = ((-lo / scale).round() as i64).clamp(0, qmax);
    (Quant::per_tensor(scale, zp), 0, qmax)
}

enum State {
    Int(ValueId),
    Const,
    Region(Region),
}

struct Quantizer<'a> {
    old: &'a Graph,
    calib: &'a Calibration,
    samples: &'a [Vec<Tensor>],
    cfg: QuantConfig,
    new: Graph,
    state: Vec<Option<State>>,
    /// The value of each new node on each calibration sample: tables cover what
    /// their accumulators really reach.
    observed: Vec<Vec<Tensor>>,
}

/// Quantizes a float graph with its calibration (`samples` are the calibration inputs).
pub fn quantize(
    graph: &Graph,
    calib: &Calibration,
    samples: &[Vec<Tensor>],
    cfg: &QuantConfig,
) -> Result<Graph, CompileError> {
    let fail = |m: String| CompileError::Pass { pass: "quantize", value: ValueId(0), node: String::new(), message: m };
    cfg.check().map_err(fail)?;
    let mut q = Quantizer {
        old: graph,
        calib,
        samples,
        cfg: *cfg,
        new: Graph::new(graph.name.clone()),
        state: Vec::new(),
        observed: Vec::new(),
    };
    for i in 0..graph.nodes.len() {
        let s = q.node(ValueId(i as u32))?;
        q.state.push(Some(s));
    }
    for &o in &graph.outputs {
        let out = match q.state[o.index()].as_ref().expect("defined") {
            State::Region(r) if !cfg.output_tables => {
                let r = r.clone();
                q.clear_chain(&r, o)?
            }
            _ => {
                let v = q.int(o)?;
                q.dequantize(v, graph.node(o).name.clone())?
            }
        };
        q.new.outputs.push(out);
    }
    q.new.compact();
    secc_ir::verify_graph(&q.new)?;
    Ok(q.new)
}

impl Quantizer<'_> {
    /// Pushes a node and evaluates it on every calibration sample.
    fn push(&mut self, op: Op, inputs: Vec<ValueId>, name: String) -> Result<ValueId, CompileError> {
        let v = self.new.push(op, inputs, name)?;
        let node = self.new.node(v);
        let values = (0..self.samples.len())
            .map(|s| match &node.op {
                Op::Input(i) => self.samples[s][i.index].clone(),
                op => op.eval(&node.inputs.iter().map(|i| &self.observed[i.index()][s]).collect::<Vec<_>>()),
            })
            .collect();
        self.observed.push(values);
        Ok(v)
    }

    fn push_const(&mut self, value: Tensor, quant: Option<Quant>, name: String) -> Result<ValueId, CompileError> {
        self.push(Op::Const(secc_ir::ops::Const { value, quant }), vec![], name)
    }

    /// Pushes the table computing old value `target` from `region`.
    fn push_lut(&mut self, region: &Region, target: ValueId) -> Result<ValueId, CompileError> {
        let seen =
            self.observed[region.source.index()].iter().flat_map(|t| t.as_i64().expect("integer").iter().copied());
        let observed = (seen.clone().min().expect("samples"), seen.max().expect("samples"));
        let lut = tabulate(&self.new, self.old, region, target, self.calib, &self.cfg, observed)?;
        self.push(Op::Lut(lut), vec![region.source], self.old.node(target).name.clone())
    }

    fn dequantize(&mut self, v: ValueId, name: String) -> Result<ValueId, CompileError> {
        let quant = self.new.ty(v).as_int().and_then(|t| t.quant.clone()).expect("quantized values");
        self.push(Op::Dequantize(Dequantize { quant }), vec![v], name)
    }

    /// Dequantizes `region.source` and replays the chain up to `target` in float after
    /// it: the client's part of the model.
    fn clear_chain(&mut self, region: &Region, target: ValueId) -> Result<ValueId, CompileError> {
        let x = self.dequantize(region.source, self.new.node(region.source).name.clone())?;
        let mut map: std::collections::HashMap<ValueId, ValueId> = region.entries.iter().map(|&e| (e, x)).collect();
        for &n in region.nodes.iter().filter(|&&n| n <= target) {
            let node = &self.old.nodes[n.index()];
            let mut inputs = Vec::new();
            for &i in &node.inputs {
                let v = match map.get(&i) {
                    Some(&v) => v,
                    None => {
                        let value = self.old.const_value(i).expect("chain operands are entries or constants").clone();
                        self.push_const(value, None, self.old.node(i).name.clone())?
                    }
                };
                inputs.push(v);
            }
            let v = self.push(node.op.clone(), inputs, node.name.clone())?;
            map.insert(n, v);
        }
        Ok(map[&target])
    }

    /// Whether `v` (new graph) is computed from table outputs, through index remaps and sums.
    fn reads_tables(&self, v: ValueId) -> bool {
        let node = self.new.node(v);
        match &node.op {
            Op::Lut(_) => true,
            Op::Reshape(_) | Op::SumPool(_) | Op::MaxPool(_) => self.reads_tables(node.inputs[0]),
            _ => false,
        }
    }

    fn fail(&self, v: ValueId, message: impl Into<String>) -> CompileError {
        CompileError::Pass { pass: "quantize", value: v, node: self.old.node(v).name.clone(), message: message.into() }
    }

    /// The integer value standing for old value `v`, tabulating a chain if needed.
    fn int(&mut self, v: ValueId) -> Result<ValueId, CompileError> {
        match self.state[v.index()].as_ref().expect("defined before use") {
            State::Int(i) => Ok(*i),
            State::Const => Err(self.fail(v, "a constant is used where a computed tensor is expected")),
            State::Region(r) => {
                let r = r.clone();
                let lut = self.push_lut(&r, v)?;
                self.state[v.index()] = Some(State::Int(lut));
                Ok(lut)
            }
        }
    }

    /// `int(v)`, requantized per tensor when it is per channel (linear ops and
    /// reshapes need one scale for all their input elements).
    fn int_per_tensor(&mut self, v: ValueId) -> Result<ValueId, CompileError> {
        let i = self.int(v)?;
        let t = self.new.ty(i).as_int().expect("integer").clone();
        if t.quant.as_ref().is_none_or(|q| q.axis.is_none()) {
            return Ok(i);
        }
        let region = Region { source: i, entries: vec![v], nodes: vec![] };
        // An identity chain: the table maps each channel's scale onto one.
        self.push_lut(&region, v)
    }

    fn node(&mut self, v: ValueId) -> Result<State, CompileError> {
        let node = &self.old.nodes[v.index()];
        let name = node.name.clone();
        Ok(match &node.op {
            Op::Input(_) => {
                let x = self.push(node.op.clone(), vec![], name.clone())?;
                let (lo, hi) = self.calib.ranges[v.index()].ok_or_else(|| self.fail(v, "input never calibrated"))?;
                let margin = (hi - lo) * self.cfg.input_margin;
                let (lo, hi) = (lo - margin, hi + margin);
                let (quant, qlo, qhi) = output_quant(lo, hi, self.cfg.input_bits);
                State::Int(self.push(Op::Quantize(Quantize { quant, lo: qlo, hi: qhi }), vec![x], name)?)
            }
            Op::Const(_) => State::Const,
            Op::Unary(_) | Op::Binary(_) => {
                let mut region: Option<Region> = None;
                for &i in &node.inputs {
                    let (source, entries, nodes) = match self.state[i.index()].as_ref().expect("defined") {
                        State::Const => continue,
                        State::Int(s) => (*s, vec![i], vec![]),
                        State::Region(r) => (r.source, r.entries.clone(), r.nodes.clone()),
                    };
                    match &mut region {
                        None => region = Some(Region { source, entries, nodes }),
                        Some(r) if r.source == source => {
                            r.entries.extend(entries);
                            r.nodes.extend(nodes);
                            for list in [&mut r.entries, &mut r.nodes] {
                                list.sort();
                                list.dedup();
                            }
                        }
                        Some(_) => {
                            return Err(self.fail(
                                v,
                                format!(
                                    "`{}` of two different computed tensors is not supported under quantization",
                                    node.op.mnemonic()
                                ),
                            ))
                        }
                    }
                }
                let mut r = region.ok_or_else(|| self.fail(v, "elementwise op on constants only"))?;
                r.nodes.push(v);
                State::Region(r)
            }
            Op::Conv(_) | Op::MatMul(_) => State::Int(self.linear(v)?),
            Op::AvgPool(p) => {
                let x = self.int(node.inputs[0])?;
                let t = self.new.ty(x).as_int().expect("integer").clone();
                let pads = p.window.pads.iter().any(|&p| p > 0);
                if pads && !p.count_include_pad {
                    return Err(
                        self.fail(v, "average pooling with padding and count_include_pad=0 has no exact integer form")
                    );
                }
                let zps = t.quant.as_ref().map_or(vec![0], |q| q.zero_point.clone());
                let x = if zps.iter().all(|&z| z == zps[0]) { x } else { self.int_per_tensor(node.inputs[0])? };
                let x_zp = self.new.ty(x).as_int().and_then(|t| t.quant.as_ref()).map_or(0, |q| q.zero_point[0]);
                State::Int(self.push(Op::SumPool(SumPool { window: p.window.clone(), x_zp }), vec![x], name)?)
            }
            Op::MaxPool(p) => {
                let x = self.int(node.inputs[0])?;
                State::Int(self.push(Op::MaxPool(MaxPool { window: p.window.clone() }), vec![x], name)?)
            }
            Op::Reshape(r) => {
                let x = self.int(node.inputs[0])?;
                let op = Op::Reshape(Reshape { shape: r.shape.clone() });
                let keeps_channels = op.infer(&self.new.operands(&[x])).is_ok();
                let x = if keeps_channels { x } else { self.int_per_tensor(node.inputs[0])? };
                State::Int(self.push(op, vec![x], name)?)
            }
            Op::TreeEnsemble(t) => State::Int(self.tree(v, t)?),
            Op::Quantize(_) | Op::Dequantize(_) | Op::Lut(_) | Op::SumPool(_) => {
                return Err(self.fail(v, "the graph is already quantized"))
            }
        })
    }

    fn linear(&mut self, v: ValueId) -> Result<ValueId, CompileError> {
        let node = &self.old.nodes[v.index()];
        let x = self.int_per_tensor(node.inputs[0])?;
        let xq = self.new.ty(x).as_int().and_then(|t| t.quant.clone()).expect("quantized input");
        let (sx, zx) = (xq.scale[0], xq.zero_point[0]);
        let w = self.old.const_value(node.inputs[1]).and_then(Tensor::as_f32).expect("constant weights");
        let axis = if matches!(node.op, Op::Conv(_)) { 0 } else { 1 };
        let qmax = ((1i64 << (self.cfg.weight_bits - 1)) - 1) as f64;
        // Weights applied to table outputs multiply bootstrap noise by their 2-norm:
        // cap it so the TFHE circuit stays on cheap parameter sets.
        let norm_cap = self.cfg.max_weight_norm.filter(|_| self.reads_tables(x));
        let scales: Vec<f64> = w
            .axis_iter(Axis(axis))
            .map(|lane| {
                let m = lane.iter().fold(0f64, |m, &x| m.max((x as f64).abs()));
                let norm = lane.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
                let by_norm = norm_cap.map_or(0.0, |cap| norm / cap);
                if m > 0.0 {
                    (m / qmax).max(by_norm)
                } else {
                    1.0
                }
            })
            .collect();
        let mut scales = scales;
        let mut qw = w.mapv(|_| 0i64);
        for (c, (mut q, lane)) in qw.axis_iter_mut(Axis(axis)).zip(w.axis_iter(Axis(axis))).enumerate() {
            // Rounding can push the 2-norm past the cap: widen the scale until it fits.
            loop {
                q.zip_mut_with(&lane, |q, &x| *q = (x as f64 / scales[c]).round() as i64);
                let norm = q.iter().map(|&v| (v * v) as f64).sum::<f64>().sqrt();
                match norm_cap {
                    Some(cap) if norm > cap => scales[c] *= norm / cap * 1.001,
                    _ => break,
                }
            }
        }
        let wq = Quant { axis: Some(axis), zero_point: vec![0; scales.len()], scale: scales.clone() };
        let wname = self.old.node(node.inputs[1]).name.clone();
        let mut inputs = vec![x, self.push_const(Tensor::I64(qw), Some(wq), wname)?];
        if let Some(&b) = node.inputs.get(2) {
            let bv = self.old.const_value(b).and_then(Tensor::as_f32).expect("constant bias");
            let qb = ndarray::Array1::from_iter(
                bv.iter().enumerate().map(|(c, &b)| (b as f64 / (sx * scales[c])).round() as i64),
            );
            let bq = Quant {
                axis: Some(0),
                zero_point: vec![0; scales.len()],
                scale: scales.iter().map(|s| s * sx).collect(),
            };
            let bname = self.old.node(b).name.clone();
            inputs.push(self.push_const(Tensor::I64(qb.into_dyn()), Some(bq), bname)?);
        }
        let op = match &node.op {
            Op::Conv(c) => Op::Conv(secc_ir::ops::Conv { x_zp: zx, ..c.clone() }),
            Op::MatMul(_) => Op::MatMul(secc_ir::ops::MatMul { x_zp: zx }),
            _ => unreachable!("linear ops"),
        };
        let out = self.push(op, inputs, node.name.clone())?;
        let t = self.new.ty(out).as_int().expect("integer");
        if t.lo.unsigned_abs().max(t.hi.unsigned_abs()) >= 1 << 62 {
            return Err(
                self.fail(v, format!("accumulator range [{}, {}] overflows 62 bits; use fewer bits", t.lo, t.hi))
            );
        }
        Ok(out)
    }

    /// The ensemble as [`tree_tables`]: per-feature quantization of the model input,
    /// gather, comparison tables, path sums, leaf tables, sum over trees.
    fn tree(&mut self, v: ValueId, t: &TreeEnsemble) -> Result<ValueId, CompileError> {
        let node = &self.old.nodes[v.index()];
        let name = node.name.clone();
        let x = node.inputs[0];
        if !matches!(self.old.node(x).op, Op::Input(_)) {
            return Err(self.fail(v, "a tree ensemble must read a model input"));
        }
        let n_features = *self.old.ty(x).shape.0.last().expect("[N, F] input");
        let f = tree_tables(t, n_features, self.cfg.tree_bits, self.cfg.bits).map_err(|m| self.fail(v, m))?;
        // The float input, quantized on the trees' own grids instead of the per-tensor
        // quantization pushed for it (which `compact` then drops).
        let State::Int(q) = self.state[x.index()].as_ref().expect("defined") else { unreachable!("inputs are Int") };
        let float_in = self.new.node(*q).inputs[0];
        let quantize = Quantize { quant: f.features.clone(), lo: 0, hi: f.levels - 1 };
        let xq = self.push(Op::Quantize(quantize), vec![float_in], self.old.node(x).name.clone())?;
        let int = |a: ndarray::Array2<i64>| Tensor::I64(a.into_dyn());
        let vector = |b: Vec<i64>| Tensor::I64(ndarray::Array1::from(b).into_dyn());
        let one = Some(Quant::per_tensor(1.0, 0));
        let linear = |q: &mut Self, x: ValueId, w: Tensor, b: Option<Tensor>, wq: Option<Quant>, what: &str| {
            let mut inputs = vec![x, q.push_const(w, wq, format!("{name}/{what}.weight"))?];
            if let Some(b) = b {
                inputs.push(q.push_const(b, None, format!("{name}/{what}.bias"))?);
            }
            q.push(Op::MatMul(MatMul { x_zp: 0 }), inputs, format!("{name}/{what}"))
        };
        let gathered = linear(self, xq, int(f.select), None, None, "gather")?;
        let table_of = |n: usize| (0..n as u32).collect();
        let compare = Lut { shift: 0, base: 0, table_of: table_of(f.compare.len()), tables: f.compare, quant: None };
        let bits = self.push(Op::Lut(compare), vec![gathered], format!("{name}/compare"))?;
        let idx = linear(self, bits, int(f.path), Some(vector(f.path_bias)), None, "path")?;
        let leaf = Lut {
            shift: 0,
            base: 0,
            table_of: table_of(f.leaf.len()),
            tables: f.leaf,
            quant: Some(Quant::per_tensor(f.leaf_scale, 0)),
        };
        let leaves = self.push(Op::Lut(leaf), vec![idx], format!("{name}/leaves"))?;
        linear(self, leaves, int(f.sum), Some(vector(f.base)), one, "sum")
    }
}
