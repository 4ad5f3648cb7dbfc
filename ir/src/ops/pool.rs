//! Pooling over 2-D windows of NCHW tensors.
//!
//! - `max_pool`: `y = max` over the window's in-image taps (floats and integers;
//!   the integer range and quantization are the input's).
//! - `avg_pool` (float): the window sum divided by the window's divisor `d_j`: the
//!   taps inside the padded input (`count_include_pad=1`; the window size, except
//!   where `ceil_mode` lets a last window run past the padding) or the in-image taps
//!   (`count_include_pad=0`).
//! - `sum_pool` (integer): `y_j = (L / d_j) · Σ (x − x_zp)` over in-image taps, `L` the
//!   least common multiple of every `d_j` of the input shape: the exact quantized form
//!   of `avg_pool`, standing for `s_x / L · y`. With `count_include_pad=1` and no
//!   ceil-mode overhang every `d_j` is `kh·kw` and the sum is plain.
//!
//! Windows follow ONNX (and tract): `ceil_mode=1` rounds the output size up, but a
//! last window must start inside the input or its leading padding.
//!
//! Quantization: `max_pool` of a table's outputs becomes an exact tournament of
//! comparison tables over their ranks ([`quantize_max`]); of anything else it stays an
//! integer `max_pool` (input's quantization kept), which the simulation runs and TFHE
//! refuses ([`WIDE_MAX`]). `avg_pool` becomes `sum_pool`. TFHE: `sum_pool` is
//! levelled, the tournament's tables are bootstraps. SMPC: both float poolings are
//! steps of their own (comparisons for the max, a public division for the mean).

use super::facets::{
    Channels, FheLowering, FheRule, Lowered, MpcCx, MpcRule, QuantizeCx, QuantizeRule, TableNoise, ALREADY_QUANTIZED,
    MPC_FLOAT_ONLY,
};
use super::{expect_arity, AddInt, Gather, Lut, Op, OpSpec, Operand};
use crate::lowered::mpc::{PoolTaps, Reg, StepOp};
use crate::tensor::Tensor;
use crate::text::{ParseError, Parser, Printer};
use crate::types::{Quant, Shape, TensorType};
use crate::{Graph, ValueId};
use ndarray::{ArrayD, IxDyn};
use serde::{Deserialize, Serialize};

/// A pooling window: kernel, strides and ONNX-order padding (top, left, bottom, right).
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Window {
    /// Kernel size (kh, kw).
    pub kernel: Vec<usize>,
    /// Strides (sh, sw).
    pub strides: Vec<usize>,
    /// Padding (top, left, bottom, right).
    pub pads: Vec<usize>,
    /// ONNX `ceil_mode`: output sizes round up.
    pub ceil_mode: bool,
}

impl Window {
    /// Output shape for an NCHW input.
    pub fn output_shape(&self, x: &Shape) -> Result<Shape, String> {
        if x.rank() != 4 || self.kernel.len() != 2 || self.strides.len() != 2 || self.pads.len() != 4 {
            return Err(format!("only 2-D pooling of NCHW tensors is supported, got input {x}"));
        }
        // Checked: the attributes may come from a crafted file.
        let out = |size: usize, pads: [usize; 2], k: usize, s: usize| {
            let padded = size.checked_add(pads[0])?.checked_add(pads[1])?;
            if padded < k || k == 0 || s == 0 {
                return None;
            }
            let n = if self.ceil_mode { (padded - k).div_ceil(s) + 1 } else { (padded - k) / s + 1 };
            // ONNX: a ceil-mode window starts inside the input or its leading padding.
            Some(if self.ceil_mode && (n - 1) * s >= size + pads[0] { n - 1 } else { n })
        };
        match (
            out(x.0[2], [self.pads[0], self.pads[2]], self.kernel[0], self.strides[0]),
            out(x.0[3], [self.pads[1], self.pads[3]], self.kernel[1], self.strides[1]),
        ) {
            (Some(oh), Some(ow)) => Ok(Shape(vec![x.0[0], x.0[1], oh, ow])),
            _ => Err(format!("window {:?} does not fit input {x}", self.kernel)),
        }
    }

    /// Number of taps in a window.
    pub fn size(&self) -> usize {
        self.kernel.iter().product()
    }

    fn has_padding(&self) -> bool {
        self.pads.iter().any(|&p| p > 0)
    }

    /// The divisor of each output element (C order) of an average pooling of an input
    /// of `shape`: the taps inside the padded input, or only the in-image ones.
    pub fn divisors(&self, shape: &Shape, count_include_pad: bool) -> Vec<usize> {
        let out = self.output_shape(shape).expect("pool operands verified");
        let (h, w) = (shape.0[2], shape.0[3]);
        // Taps of the window starting at `i` on an axis of `size` that lie in `[lo, hi)`.
        let inside = |axis: usize, i: usize, size: usize| {
            let start = (i * self.strides[axis]) as isize - self.pads[axis] as isize;
            let (lo, hi) = if count_include_pad {
                (-(self.pads[axis] as isize), (size + self.pads[axis + 2]) as isize)
            } else {
                (0, size as isize)
            };
            (start..start + self.kernel[axis] as isize).filter(|p| (lo..hi).contains(p)).count()
        };
        let per_image: Vec<usize> = (0..out.0[2])
            .flat_map(|i| (0..out.0[3]).map(move |j| (i, j)))
            .map(|(i, j)| inside(0, i, h) * inside(1, j, w))
            .collect();
        per_image.iter().copied().cycle().take(out.numel()).collect()
    }

    /// Applies `reduce` to each window's in-image taps.
    pub fn apply<T: Copy + Default, U: Default + Clone>(&self, x: &ArrayD<T>, reduce: impl Fn(&[T]) -> U) -> ArrayD<U> {
        let out = self.output_shape(&Shape(x.shape().to_vec())).expect("pool operands verified");
        let (h, w) = (x.shape()[2] as isize, x.shape()[3] as isize);
        let mut y = ArrayD::<U>::default(IxDyn(&out.0));
        let mut taps = Vec::with_capacity(self.size());
        for ((n, c, i, j), slot) in y.indexed_iter_mut().map(|(ix, s)| ((ix[0], ix[1], ix[2], ix[3]), s)) {
            taps.clear();
            for k in 0..self.kernel[0] {
                let r = (i * self.strides[0] + k) as isize - self.pads[0] as isize;
                for l in 0..self.kernel[1] {
                    let s = (j * self.strides[1] + l) as isize - self.pads[1] as isize;
                    if (0..h).contains(&r) && (0..w).contains(&s) {
                        taps.push(x[[n, c, r as usize, s as usize]]);
                    }
                }
            }
            *slot = reduce(&taps);
        }
        y
    }

    /// The input elements (C order) of each window of an input of `shape`.
    fn taps(&self, shape: &Shape) -> PoolTaps {
        let input_len = shape.numel();
        let index = ArrayD::from_shape_vec(IxDyn(&shape.0), (0..input_len).collect()).expect("numel");
        let taps = self.apply(&index, |t: &[usize]| t.to_vec());
        PoolTaps { input_len, taps: taps.into_iter().collect() }
    }

    fn print(&self, w: &mut Printer) {
        w.attr("kernel", |w| w.dims(&self.kernel));
        w.attr("strides", |w| w.dims(&self.strides));
        w.attr("pads", |w| w.dims(&self.pads));
        if self.ceil_mode {
            w.attr("ceil_mode", |w| w.display(true));
        }
    }

    fn parse(p: &mut Parser) -> Result<Self, ParseError> {
        Ok(Window {
            kernel: p.attr("kernel", Parser::dims)?,
            strides: p.attr("strides", Parser::dims)?,
            pads: p.attr("pads", Parser::dims)?,
            ceil_mode: p.opt_attr("ceil_mode", Parser::bool)?.unwrap_or(false),
        })
    }
}

/// Max pooling.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct MaxPool {
    /// The window.
    pub window: Window,
}

impl OpSpec for MaxPool {
    fn mnemonic(&self) -> &'static str {
        "max_pool"
    }
    fn infer(&self, inputs: &[Operand]) -> Result<TensorType, String> {
        expect_arity(inputs, 1..=1)?;
        Ok(TensorType { elem: inputs[0].ty.elem.clone(), shape: self.window.output_shape(&inputs[0].ty.shape)? })
    }
    fn eval(&self, inputs: &[&Tensor]) -> Tensor {
        match inputs[0] {
            Tensor::F32(x) => {
                Tensor::F32(self.window.apply(x, |t| t.iter().copied().fold(f32::NEG_INFINITY, f32::max)))
            }
            Tensor::I64(x) => Tensor::I64(self.window.apply(x, |t| t.iter().copied().max().expect("non-empty window"))),
        }
    }
    fn print_attrs(&self, w: &mut Printer) {
        self.window.print(w);
    }
}

impl MaxPool {
    /// Reads `{kernel, strides, pads}`.
    pub(crate) fn parse_attrs(p: &mut Parser) -> Result<Self, ParseError> {
        Ok(MaxPool { window: Window::parse(p)? })
    }
}

/// Float average pooling.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct AvgPool {
    /// The window.
    pub window: Window,
    /// Divide by the full window size (true) or by the in-image taps (false).
    pub count_include_pad: bool,
}

impl OpSpec for AvgPool {
    fn mnemonic(&self) -> &'static str {
        "avg_pool"
    }
    fn infer(&self, inputs: &[Operand]) -> Result<TensorType, String> {
        expect_arity(inputs, 1..=1)?;
        if !inputs[0].ty.is_float() {
            return Err("is a float op; its integer form is sum_pool".into());
        }
        Ok(TensorType::f32(self.window.output_shape(&inputs[0].ty.shape)?))
    }
    fn eval(&self, inputs: &[&Tensor]) -> Tensor {
        let x = inputs[0].as_f32().expect("float operand verified");
        let divisors = self.window.divisors(&Shape(x.shape().to_vec()), self.count_include_pad);
        let sums = self.window.apply(x, |t| t.iter().sum::<f32>());
        Tensor::F32(
            ndarray::Zip::from(&sums)
                .and(&ArrayD::from_shape_vec(sums.raw_dim(), divisors).expect("shape"))
                .map_collect(|&s, &d| s / d as f32),
        )
    }
    fn print_attrs(&self, w: &mut Printer) {
        self.window.print(w);
        w.attr("count_include_pad", |w| w.display(self.count_include_pad));
    }
}

impl AvgPool {
    /// Reads `{kernel, strides, pads, count_include_pad}`.
    pub(crate) fn parse_attrs(p: &mut Parser) -> Result<Self, ParseError> {
        Ok(AvgPool { window: Window::parse(p)?, count_include_pad: p.attr("count_include_pad", Parser::bool)? })
    }
}

/// Integer sum pooling of `x − x_zp`, each sum scaled by `L / d_j`.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct SumPool {
    /// The window.
    pub window: Window,
    /// Zero point subtracted from every tap.
    pub x_zp: i64,
    /// The divisors' rule of the `avg_pool` this stands for.
    pub count_include_pad: bool,
}

impl SumPool {
    /// `L / d_j` for each output element, and `L`, on an input of `shape`; `None` when
    /// `L` overflows (a crafted window).
    fn multipliers(&self, shape: &Shape) -> Option<(Vec<i64>, i64)> {
        let divisors = self.window.divisors(shape, self.count_include_pad);
        let gcd = |mut a: i64, mut b: i64| {
            while b != 0 {
                (a, b) = (b, a % b);
            }
            a
        };
        let mut seen: Vec<i64> = divisors.iter().map(|&d| d.max(1) as i64).collect();
        seen.sort_unstable();
        seen.dedup();
        let l = seen.iter().try_fold(1i64, |l, &d| (l / gcd(l, d)).checked_mul(d))?;
        Some((divisors.iter().map(|&d| l / d.max(1) as i64).collect(), l))
    }
}

impl OpSpec for SumPool {
    fn mnemonic(&self) -> &'static str {
        "sum_pool"
    }
    fn infer(&self, inputs: &[Operand]) -> Result<TensorType, String> {
        expect_arity(inputs, 1..=1)?;
        let Some(xi) = inputs[0].ty.as_int() else {
            return Err("is an integer op; its float form is avg_pool".into());
        };
        let shape = self.window.output_shape(&inputs[0].ty.shape)?;
        let (lo, hi) = super::linear::minus_zero_point(xi.lo, xi.hi, self.x_zp)?;
        let (lo, hi) =
            if self.window.has_padding() || self.window.ceil_mode { (lo.min(0), hi.max(0)) } else { (lo, hi) };
        // Output j sums its in-image taps, times `L / d_j`.
        let in_image = self.window.divisors(&inputs[0].ty.shape, false);
        let scaled = self.multipliers(&inputs[0].ty.shape).and_then(|(m, l)| {
            let most = m.iter().zip(&in_image).try_fold(0i64, |a, (&m, &n)| Some(a.max(m.checked_mul(n as i64)?)))?;
            Some((l, most.checked_mul(lo)?, most.checked_mul(hi)?))
        });
        let Some((k, lo, hi)) = scaled else {
            return Err(format!("window {:?} sums beyond 64 bits", self.window.kernel));
        };
        let quant = xi.quant.as_ref().map(|q| Quant {
            axis: q.axis,
            scale: q.scale.iter().map(|s| s / k as f64).collect(),
            zero_point: vec![0; q.scale.len()],
        });
        Ok(TensorType::int(shape, lo, hi, quant))
    }
    fn eval(&self, inputs: &[&Tensor]) -> Tensor {
        let x = inputs[0].as_i64().expect("integer operand verified");
        let (m, _) = self.multipliers(&Shape(x.shape().to_vec())).expect("sum_pool verified");
        let mut y = self.window.apply(x, |t| t.iter().map(|v| v - self.x_zp).sum::<i64>());
        y.iter_mut().zip(m).for_each(|(y, m)| *y *= m);
        Tensor::I64(y)
    }
    fn print_attrs(&self, w: &mut Printer) {
        self.window.print(w);
        if self.x_zp != 0 {
            w.attr("x_zp", |w| w.display(self.x_zp));
        }
        if !self.count_include_pad {
            w.attr("count_include_pad", |w| w.display(false));
        }
    }
}

impl SumPool {
    /// Reads `{kernel, strides, pads, x_zp}` (`x_zp` 0 when absent).
    pub(crate) fn parse_attrs(p: &mut Parser) -> Result<Self, ParseError> {
        Ok(SumPool {
            window: Window::parse(p)?,
            x_zp: p.opt_attr("x_zp", Parser::i64)?.unwrap_or(0),
            count_include_pad: p.opt_attr("count_include_pad", Parser::bool)?.unwrap_or(true),
        })
    }
}

/// The maximum of each output element's `taps` (elements of integer `x`, new graph),
/// shaped `shape`, exactly as `exact` (the integer `max_pool` or `reduce_max` over
/// `x`) computes it, and in a form TFHE runs when `x` is a table's output (or a
/// reshape of one).
///
/// A table `T` reads its accumulator through a few index bits, so it outputs few
/// distinct values; the maximum of `T`'s outputs is the maximum of their ranks among
/// those values, mapped back. So the accumulator is read once through a rank table
/// (the same boxes as `T`: TFHE rounds it exactly as it rounds `T`), the ranks go
/// through a tournament, and a last table maps each winning rank to its value: the
/// result equals `exact`'s integer for integer. Each level of the tournament compares
/// the surviving candidates of every window two by two, `max(a, b) = b + relu(a − b)`:
/// the difference is levelled and exact, and the ReLU table reads all of it, shift 0,
/// over `[−(D−1), D−1]` for `D` ranks, so nothing is rounded: `2D − 1` boxes, and a
/// spare one each side after the first level, whose sums the range analysis bounds by
/// twice the ranks (5 bits up to 15 distinct values, 6 up to 31). Ranks are per table when every window
/// reads one table (a channel's), else over all tables' values together. A window's
/// odd candidate out is compared with its first one (a maximum is idempotent), so
/// every level reads only the one before: under TFHE one level is one batch of
/// independent bootstraps. `T` itself is left unread (compaction drops it) unless
/// another op reads it; it costs as many bootstraps as the rank table, and the value
/// table runs once per output element, where the comparisons run once per pair.
pub(crate) fn quantize_max<C: QuantizeCx>(
    cx: &mut C,
    x: ValueId,
    taps: &[Vec<usize>],
    shape: &Shape,
    name: &str,
    exact: Op,
) -> Result<ValueId, C::Error> {
    // The table, through the reshapes between it and the maximum (a 1-D pooling is a
    // 2-D one between two): they keep the elements' order, so the ranks take them too.
    let mut reshapes = Vec::new();
    let mut at = x;
    let (table, source) = loop {
        let node = cx.new_graph().node(at);
        match (&node.op, node.inputs.first()) {
            (Op::Lut(table), Some(&source)) => break (table.clone(), source),
            (Op::Reshape(r), Some(&from)) => {
                reshapes.push(r.clone());
                at = from;
            }
            _ => return cx.push(exact, vec![x], name.to_owned()),
        }
    };
    let table_of = |e: usize| table.table_of.get(e).map_or(0, |&t| t as usize);
    let per_table = taps.iter().all(|t| t.iter().all(|&e| table_of(e) == table_of(t[0])));
    let class = |t: usize| if per_table { t } else { 0 };
    // The distinct values of each class, increasing: a rank indexes them.
    let mut values = vec![Vec::new(); if per_table { table.tables.len() } else { 1 }];
    for (t, entries) in table.tables.iter().enumerate() {
        values[class(t)].extend(entries);
    }
    values.iter_mut().for_each(|v| {
        v.sort_unstable();
        v.dedup();
    });
    let rank_of = |t: usize, v: &i64| values[class(t)].binary_search(v).expect("a value of its class") as i64;
    let ranks: Vec<Vec<i64>> =
        table.tables.iter().enumerate().map(|(t, entries)| entries.iter().map(|v| rank_of(t, v)).collect()).collect();
    let n = cx.new_graph().ty(source).shape.numel();
    let (tables, table_of_ranks) = Lut::share_tables((0..n).map(|e| ranks[table_of(e)].clone()));
    let ranks = Lut { tables, table_of: table_of_ranks, quant: None, ..table.clone() };
    let mut current = cx.push(Op::Lut(ranks), vec![source], format!("{name}.rank"))?;
    for r in reshapes.into_iter().rev() {
        current = cx.push(Op::Reshape(r), vec![current], format!("{name}.rank"))?;
    }
    let most = values.iter().map(Vec::len).max().expect("a table") as i64 - 1;
    let relu = Lut {
        shift: 0,
        base: -most,
        tables: vec![(-most..=most).map(|d| d.max(0)).collect()],
        table_of: vec![],
        quant: None,
    };
    let mut candidates: Vec<Vec<usize>> = taps.to_vec();
    let mut level = 0;
    loop {
        let last = candidates.iter().all(|c| c.len() <= 2);
        let (mut a, mut b, mut next) = (Vec::new(), Vec::new(), Vec::new());
        for c in &candidates {
            next.push((0..c.len().div_ceil(2)).map(|k| a.len() + k).collect::<Vec<usize>>());
            for pair in c.chunks(2) {
                a.push(pair[0] as i64);
                b.push(*pair.get(1).unwrap_or(&c[0]) as i64);
            }
        }
        let at = if last { shape.clone() } else { Shape(vec![a.len()]) };
        let pick = |index| Op::Gather(Gather { shape: at.clone(), index, values: Vec::new() });
        let ga = cx.push(pick(a), vec![current], format!("{name}.max{level}.a"))?;
        let gb = cx.push(pick(b), vec![current], format!("{name}.max{level}.b"))?;
        let difference = Op::AddInt(AddInt { sign: -1, a_zp: 0, b_zp: 0 });
        let d = cx.push(difference, vec![ga, gb], format!("{name}.max{level}.difference"))?;
        let r = cx.push(Op::Lut(relu.clone()), vec![d], format!("{name}.max{level}.relu"))?;
        let sum = Op::AddInt(AddInt { sign: 1, a_zp: 0, b_zp: 0 });
        current = cx.push(sum, vec![gb, r], format!("{name}.max{level}"))?;
        if last {
            break;
        }
        candidates = next;
        level += 1;
    }
    // Each output's winning rank back to its value: one table per class, padded with
    // the class's largest value up to `D` entries (never read).
    let width = most as usize + 1;
    let padded = |v: &Vec<i64>| (0..width).map(|r| v[r.min(v.len() - 1)]).collect::<Vec<i64>>();
    let (tables, table_of) = Lut::share_tables(taps.iter().map(|t| padded(&values[class(table_of(t[0]))])));
    let value = Lut { shift: 0, base: 0, tables, table_of, quant: table.quant.clone() };
    cx.push(Op::Lut(value), vec![current], name.to_owned())
}

/// Why the TFHE backend refuses an integer maximum (`max_pool`, `reduce_max`): the
/// quantizer writes one only where the operand is no table's output.
pub(crate) const WIDE_MAX: &str = "reads values that are no table's output (a model input, a sum, an \
     accumulator): TFHE compares exactly only the few values a table outputs, by their ranks";

impl QuantizeRule for MaxPool {
    fn quantize<C: QuantizeCx>(&self, graph: &Graph, v: ValueId, cx: &mut C) -> Result<Lowered<ValueId>, C::Error> {
        let node = graph.node(v);
        let x = cx.int(node.inputs[0])?;
        let taps = self.window.taps(&graph.ty(node.inputs[0]).shape).taps;
        let exact = Op::MaxPool(MaxPool { window: self.window.clone() });
        Ok(Lowered::Computed(quantize_max(cx, x, &taps, &node.ty.shape, &node.name, exact)?))
    }
    fn table_noise(&self) -> TableNoise {
        TableNoise::Forwarded
    }
    fn weight_channels(&self, _: usize) -> Option<Channels> {
        None
    }
}

impl FheRule for MaxPool {
    fn fhe_lowering(&self) -> FheLowering<'_> {
        FheLowering::Refused(WIDE_MAX)
    }
}

impl MpcRule for MaxPool {
    fn lower_mpc<C: MpcCx>(&self, graph: &Graph, v: ValueId, cx: &mut C) -> Result<Lowered<Reg>, C::Error> {
        let input = graph.node(v).inputs[0];
        let x = cx.reg(input)?;
        let taps = self.window.taps(&graph.ty(input).shape);
        let out = cx.new_reg();
        cx.step(v, StepOp::MaxPool { x, taps, out });
        Ok(Lowered::Computed(out))
    }
    fn min_frac_bits(&self) -> u32 {
        0
    }
}

impl QuantizeRule for AvgPool {
    fn quantize<C: QuantizeCx>(&self, graph: &Graph, v: ValueId, cx: &mut C) -> Result<Lowered<ValueId>, C::Error> {
        let node = graph.node(v);
        let x = cx.int(node.inputs[0])?;
        let t = cx.new_graph().ty(x).as_int().expect("integer").clone();
        // The sum subtracts one zero point from every tap.
        let zps = t.quant.as_ref().map_or(vec![0], |q| q.zero_point.clone());
        let x = if zps.iter().all(|&z| z == zps[0]) { x } else { cx.int_per_tensor(node.inputs[0])? };
        let x_zp = cx.new_graph().ty(x).as_int().and_then(|t| t.quant.as_ref()).map_or(0, |q| q.zero_point[0]);
        let op = Op::SumPool(SumPool { window: self.window.clone(), x_zp, count_include_pad: self.count_include_pad });
        Ok(Lowered::Computed(cx.push(op, vec![x], node.name.clone())?))
    }
    fn table_noise(&self) -> TableNoise {
        TableNoise::Untracked
    }
    fn weight_channels(&self, _: usize) -> Option<Channels> {
        None
    }
}

impl FheRule for AvgPool {
    fn fhe_lowering(&self) -> FheLowering<'_> {
        FheLowering::FloatOnly
    }
}

impl MpcRule for AvgPool {
    fn lower_mpc<C: MpcCx>(&self, graph: &Graph, v: ValueId, cx: &mut C) -> Result<Lowered<Reg>, C::Error> {
        let input = graph.node(v).inputs[0];
        let x = cx.reg(input)?;
        let shape = &graph.ty(input).shape;
        let taps = self.window.taps(shape);
        let divisors = self.window.divisors(shape, self.count_include_pad);
        let out = cx.new_reg();
        cx.step(v, StepOp::AvgPool { x, taps, divisors, out });
        Ok(Lowered::Computed(out))
    }
    fn min_frac_bits(&self) -> u32 {
        0
    }
}

impl QuantizeRule for SumPool {
    fn quantize<C: QuantizeCx>(&self, _: &Graph, v: ValueId, cx: &mut C) -> Result<Lowered<ValueId>, C::Error> {
        Err(cx.fail(v, ALREADY_QUANTIZED))
    }
    fn table_noise(&self) -> TableNoise {
        TableNoise::Forwarded
    }
    fn weight_channels(&self, _: usize) -> Option<Channels> {
        None
    }
}

impl FheRule for SumPool {
    fn fhe_lowering(&self) -> FheLowering<'_> {
        FheLowering::Levelled
    }
}

impl MpcRule for SumPool {
    fn lower_mpc<C: MpcCx>(&self, _: &Graph, v: ValueId, cx: &mut C) -> Result<Lowered<Reg>, C::Error> {
        Err(cx.fail(v, MPC_FLOAT_ONLY))
    }
    fn min_frac_bits(&self) -> u32 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `sum_pool` is `avg_pool` times `L`, exactly, under every divisor rule.
    #[test]
    fn sum_pool_is_the_average_scaled_by_the_common_multiple() {
        let x: Vec<i64> = (0..30).map(|i| (i * 7) % 11 - 5).collect();
        let xi = ArrayD::from_shape_vec(IxDyn(&[1, 1, 5, 6]), x.clone()).unwrap();
        let xf = xi.mapv(|v| v as f32);
        for (ceil_mode, count_include_pad) in [(false, false), (true, false), (true, true), (false, true)] {
            let window = Window { kernel: vec![3, 2], strides: vec![2, 2], pads: vec![1, 0, 1, 1], ceil_mode };
            let sum = SumPool { window: window.clone(), x_zp: 0, count_include_pad };
            let (_, l) = sum.multipliers(&Shape(vec![1, 1, 5, 6])).unwrap();
            let s = sum.eval(&[&Tensor::I64(xi.clone())]);
            let a = AvgPool { window, count_include_pad }.eval(&[&Tensor::F32(xf.clone())]);
            for (s, a) in s.as_i64().unwrap().iter().zip(a.as_f32().unwrap()) {
                assert!((*s as f32 / l as f32 - a).abs() < 1e-5, "{ceil_mode} {count_include_pad}: {s}/{l} vs {a}");
            }
        }
    }
}
