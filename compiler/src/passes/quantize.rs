//! `quantize`: float IR → integer IR.
//!
//! The driver rebuilds the graph node by node; each op's quantization rule (its
//! [`QuantizeRule`], in its file under `secc_ir::ops`) says what it becomes, reading
//! and pushing through the [`QuantizeCx`] this pass implements. In short:
//!
//! - **Inputs** are quantized per tensor to `input_bits` unsigned bits over their
//!   calibrated range (widened to include 0, so zero padding is exact); the client
//!   does this in the clear. A `matmul` reading a model input quantizes it per
//!   feature instead, folding the scales into its weights.
//! - **Weights** are quantized symmetrically per output channel to `weight_bits`;
//!   biases to the accumulator scale. Linear ops then compute exact integer
//!   accumulators whose range the op's type rule derives from the clear weights.
//! - **Elementwise chains** stay chains until an integer is needed; then the driver
//!   tabulates them ([`super::fuse_lut`]), requantized to `bits` over the calibrated
//!   range of the chain's result.
//! - **Average pooling** becomes an exact integer sum; max pooling and reshapes carry
//!   quantization through; tree ensembles become comparison and leaf tables with
//!   levelled sums.
//! - **Outputs** are dequantized (the client does it after decryption). An
//!   elementwise chain that ends the model runs after that, in float on the client,
//!   unless `output_tables` asks for it as a table under encryption.

use super::calibrate::Calibration;
use super::fuse_lut::{tabulate, tabulate_fn};
use crate::CompileError;
use secc_ir::ops::{Const, Dequantize, Lowered, QuantizeCx, QuantizeRule, Region};
use secc_ir::{Graph, Op, OpSpec, Quant, Tensor, ValueId};

pub use secc_ir::QuantConfig;

struct Quantizer<'a> {
    old: &'a Graph,
    calib: &'a Calibration,
    samples: &'a [Vec<Tensor>],
    cfg: QuantConfig,
    new: Graph,
    /// What each old value became, in order.
    state: Vec<Lowered<ValueId>>,
    /// The chain each tabulated old value was computed from.
    chains: std::collections::HashMap<ValueId, Region>,
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
        cfg: cfg.clone(),
        new: Graph::new(graph.name.clone()),
        state: Vec::new(),
        chains: Default::default(),
        observed: Vec::new(),
    };
    for (i, node) in graph.nodes.iter().enumerate() {
        let s = node.op.quantize(graph, ValueId(i as u32), &mut q)?;
        q.state.push(s);
    }
    for &o in &graph.outputs {
        let out = match &q.state[o.index()] {
            Lowered::Chain(r) if !cfg.output_tables => {
                let r = r.clone();
                q.clear_chain(&r, o)?
            }
            _ => {
                let v = q.int(o)?;
                // A float value is already the receiver's (a final softmax).
                if q.new.ty(v).is_float() {
                    v
                } else {
                    q.dequantize(v, graph.node(o).name.clone())?
                }
            }
        };
        q.new.outputs.push(out);
    }
    q.new.compact();
    secc_ir::verify_graph(&q.new)?;
    Ok(q.new)
}

impl Quantizer<'_> {
    /// Pushes the table computing old value `target` from `region`, onto `grid` if
    /// given, else requantized over `over` (by default the range `target` took on the
    /// calibration set).
    fn push_lut(
        &mut self,
        region: &Region,
        target: ValueId,
        over: Option<(f64, f64)>,
        grid: Option<(Quant, i64, i64)>,
    ) -> Result<ValueId, CompileError> {
        let seen =
            self.observed[region.source.index()].iter().flat_map(|t| t.as_i64().expect("integer").iter().copied());
        let observed = (seen.clone().min().expect("samples"), seen.max().expect("samples"));
        let range = over.or(self.calib.ranges[target.index()]);
        let name = &self.old.node(target).name;
        let cfg = QuantConfig { table_bits: self.cfg.table_bits_for(name), ..self.cfg.clone() };
        let lut = tabulate(&self.new, self.old, region, target, range, &cfg, observed, grid)?;
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
}

impl QuantizeCx for Quantizer<'_> {
    type Error = CompileError;

    fn fail(&self, v: ValueId, message: impl Into<String>) -> CompileError {
        CompileError::Pass { pass: "quantize", value: v, node: self.old.node(v).name.clone(), message: message.into() }
    }

    fn config(&self) -> &QuantConfig {
        &self.cfg
    }

    fn range(&self, v: ValueId) -> Option<(f64, f64)> {
        self.calib.ranges[v.index()]
    }

    fn state(&self, v: ValueId) -> &Lowered<ValueId> {
        &self.state[v.index()]
    }

    fn int(&mut self, v: ValueId) -> Result<ValueId, CompileError> {
        match &self.state[v.index()] {
            Lowered::Computed(i) => Ok(*i),
            Lowered::Const => Err(self.fail(v, "a constant is used where a computed tensor is expected")),
            Lowered::Chain(r) => {
                let r = r.clone();
                let lut = self.push_lut(&r, v, None, None)?;
                self.state[v.index()] = Lowered::Computed(lut);
                self.chains.insert(v, r);
                Ok(lut)
            }
        }
    }

    fn int_per_tensor(&mut self, v: ValueId) -> Result<ValueId, CompileError> {
        let i = self.int(v)?;
        let t = self.new.ty(i).as_int().expect("integer").clone();
        if t.quant.as_ref().is_none_or(|q| q.axis.is_none()) {
            return Ok(i);
        }
        let region = Region { source: i, entries: vec![v], nodes: vec![] };
        // An identity chain: the table maps each channel's scale onto one.
        self.push_lut(&region, v, None, None)
    }

    fn int_over(&mut self, v: ValueId, range: (f64, f64)) -> Result<ValueId, CompileError> {
        let want = secc_ir::ops::output_quant(range.0, range.1, self.cfg.bits).0;
        let region = match &self.state[v.index()] {
            Lowered::Chain(r) => r.clone(),
            Lowered::Const => return Err(self.fail(v, "a constant is used where a computed tensor is expected")),
            Lowered::Computed(i) if self.new.ty(*i).as_int().and_then(|t| t.quant.as_ref()) == Some(&want) => {
                return Ok(*i)
            }
            // Tabulated already for another reader: tabulate the chain again from its
            // source rather than an identity table on the first table's output.
            Lowered::Computed(_) if self.chains.contains_key(&v) => self.chains[&v].clone(),
            // An identity chain: the table maps the value's scale onto the wanted one.
            Lowered::Computed(i) => Region { source: *i, entries: vec![v], nodes: vec![] },
        };
        self.push_lut(&region, v, Some(range), None)
    }

    fn tabulate_onto(
        &mut self,
        region: &Region,
        target: ValueId,
        grid: (Quant, i64, i64),
    ) -> Result<ValueId, CompileError> {
        self.push_lut(region, target, None, Some(grid))
    }

    fn push_table(
        &mut self,
        source: ValueId,
        f: &dyn Fn(f32) -> f32,
        out: (Quant, i64, i64),
        index_bits: u32,
        name: String,
    ) -> Result<ValueId, CompileError> {
        let ty = self.new.ty(source).clone();
        let src_q = ty.as_int().and_then(|t| t.quant.clone()).expect("tables read quantized values");
        let apply = |x: Tensor| Tensor::F32(x.as_f32().expect("float").mapv(f));
        let lut = tabulate_fn(&ty.shape, &src_q, self.observed(source), index_bits, out, &apply);
        self.push(Op::Lut(lut), vec![source], name)
    }

    fn observed(&self, v: ValueId) -> (i64, i64) {
        let seen = self.observed[v.index()].iter().flat_map(|t| t.as_i64().expect("integer").iter().copied());
        (seen.clone().min().expect("samples"), seen.max().expect("samples"))
    }

    fn samples(&self, v: ValueId) -> &[Tensor] {
        &self.observed[v.index()]
    }

    fn new_graph(&self) -> &Graph {
        &self.new
    }

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
        self.push(Op::Const(Const { value, quant }), vec![], name)
    }
}
