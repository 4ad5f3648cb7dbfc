//! What the multiply-accumulate ops (`conv`, `matmul`) share, written once: the
//! computation on floats and integers, the exact range rule, the accumulator's
//! quantization, the weight quantization rule and the SMPC step. And [`LinearMap`],
//! the affine map of any levelled integer op, read off its `eval`.

use super::facets::{FheLowering, FheRule, Lowered, MpcCx, QuantizeCx, QuantizeRule, TableNoise};
use super::{interval_quant, Op, OpSpec, Operand, Quantize};
use crate::lowered::mpc::{Reg, StepOp};
use crate::tensor::Tensor;
use crate::types::{Quant, TensorType};
use crate::{Graph, ValueId};
use ndarray::Axis;

/// Quantization of a linear op's accumulator: `Σ w·(x − zp_x) + b` stands for
/// `s_x · s_w[c] · acc` with zero point 0, per output channel `c` along `out_axis`.
/// An input quantized per feature along `features` (the axis the op sums over) has its
/// scales folded into the weights: the accumulator then stands for `s_w[c] · acc`.
pub(crate) fn linear_quant(x: &TensorType, w: &TensorType, out_axis: usize, features: Option<usize>) -> Option<Quant> {
    let xq = x.as_int()?.quant.as_ref()?;
    let wq = w.as_int()?.quant.as_ref()?;
    let x_scale = match xq.axis {
        None => *xq.scale.first()?,
        Some(axis) if Some(axis) == features => 1.0,
        Some(_) => return None,
    };
    let scale: Vec<f64> = wq.scale.iter().map(|s| s * x_scale).collect();
    let axis = if scale.len() > 1 { Some(out_axis) } else { None };
    Some(Quant { axis, zero_point: vec![0; scale.len()], scale })
}

/// A multiply-accumulate op with constant weights: `Σ w·(x − x_zp) + b` per output channel.
pub(crate) trait LinearKernel {
    /// Zero point subtracted from inputs in the integer form.
    fn x_zp(&self) -> i64;
    /// The computation, for floats and integers alike.
    fn run<T: ndarray::LinalgScalar>(
        &self,
        x: &ndarray::ArrayD<T>,
        w: &ndarray::ArrayD<T>,
        b: Option<&ndarray::ArrayD<T>>,
        x_zp: T,
    ) -> ndarray::ArrayD<T>;
}

/// `eval` of a [`LinearKernel`]: float operands run with zero point 0, integers with `x_zp`.
pub(crate) fn eval_linear(op: &impl LinearKernel, inputs: &[&Tensor]) -> Tensor {
    match inputs {
        [Tensor::F32(x), Tensor::F32(w), rest @ ..] => {
            Tensor::F32(op.run(x, w, rest.first().and_then(|b| b.as_f32()), 0.0))
        }
        [Tensor::I64(x), Tensor::I64(w), rest @ ..] => {
            Tensor::I64(op.run(x, w, rest.first().and_then(|b| b.as_i64()), op.x_zp()))
        }
        _ => unreachable!("linear operands verified"),
    }
}

/// Exact range of an integer linear op: per output channel (the weights' lanes along
/// `w_axis`), `b[c]` plus the interval of every `w · x` with `x` in `x_range`; then the
/// min and max over channels.
pub(crate) fn linear_range(inputs: &[Operand], w_axis: usize, x_range: (i64, i64)) -> Result<(i64, i64), String> {
    let Some(wv) = inputs[1].value.and_then(Tensor::as_i64) else {
        return Err("integer linear ops need constant weights".into());
    };
    let bv = match inputs.get(2) {
        Some(b) => Some(b.value.and_then(Tensor::as_i64).ok_or("integer linear ops need a constant bias")?),
        None => None,
    };
    let (mut lo, mut hi) = (i64::MAX, i64::MIN);
    for (c, lane) in wv.axis_iter(ndarray::Axis(w_axis)).enumerate() {
        let b = bv.map_or(0, |b| b[[c]]);
        let (mut l, mut h) = (b, b);
        for &w in lane.iter() {
            let sum = scaled_interval(w, x_range.0, x_range.1)
                .and_then(|(a, z)| Some((l.checked_add(a)?, h.checked_add(z)?)));
            (l, h) = sum.ok_or("the accumulator's range overflows 64 bits")?;
        }
        lo = lo.min(l);
        hi = hi.max(h);
    }
    Ok((lo, hi))
}

/// An integer linear op as an explicit affine map: `y[j] = c[j] + Σ w·x[i]` over
/// `terms[j] = [(i, w), ...]` (zero weights omitted), `x` being the op's encrypted
/// operands laid end to end (each in C order). Encrypted executors apply it to
/// ciphertexts; it is read off the op's own `eval`, so the index arithmetic of a
/// convolution, a pooling window or a concatenation is written once, in its op file.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LinearMap {
    /// Non-zero terms of each output element.
    pub terms: Vec<Vec<(u32, i64)>>,
    /// The constant of each output element.
    pub constant: Vec<i64>,
}

/// An operand of a levelled op, as its [`LinearMap`] reads it.
#[derive(Clone, Copy, Debug)]
pub enum MapOperand<'a> {
    /// The `k`-th of the map's encrypted inputs, of this shape (an operand read twice
    /// names the same `k`, so its terms add up).
    Encrypted(usize, &'a crate::Shape),
    /// A constant.
    Const(&'a Tensor),
}

impl LinearMap {
    /// The affine map of integer op `op` on `operands`. `None` when `op` is not
    /// levelled or the encrypted inputs are not numbered `0..k` in order of first use.
    pub fn of(op: &Op, operands: &[MapOperand]) -> Option<LinearMap> {
        if !matches!(op.fhe_lowering(), FheLowering::Levelled) {
            return None;
        }
        let mut shapes: Vec<&crate::Shape> = Vec::new();
        for o in operands {
            match *o {
                MapOperand::Encrypted(k, shape) if k == shapes.len() => shapes.push(shape),
                MapOperand::Encrypted(k, _) if k > shapes.len() => return None,
                _ => {}
            }
        }
        let zeros: Vec<ndarray::ArrayD<i64>> =
            shapes.iter().map(|s| ndarray::ArrayD::zeros(ndarray::IxDyn(&s.0))).collect();
        let run = |xs: &[Tensor]| {
            let args: Vec<&Tensor> = operands
                .iter()
                .map(|o| match *o {
                    MapOperand::Encrypted(k, _) => &xs[k],
                    MapOperand::Const(c) => c,
                })
                .collect();
            op.eval(&args).as_i64().expect("integer op").iter().copied().collect::<Vec<i64>>()
        };
        let mut xs: Vec<Tensor> = zeros.iter().cloned().map(Tensor::I64).collect();
        let constant = run(&xs);
        let mut terms = vec![Vec::new(); constant.len()];
        let mut first = 0u32;
        for (k, zero) in zeros.iter().enumerate() {
            for i in 0..zero.len() {
                let mut e = zero.clone();
                e.as_slice_mut().expect("standard layout")[i] = 1;
                xs[k] = Tensor::I64(e);
                for (j, (y, c)) in run(&xs).into_iter().zip(&constant).enumerate() {
                    if y != *c {
                        terms[j].push((first + i as u32, y - c));
                    }
                }
            }
            xs[k] = Tensor::I64(zero.clone());
            first += zero.len() as u32;
        }
        Some(LinearMap { terms, constant })
    }
}
/// The interval of `w * x` for `x` in `[lo, hi]`, if it fits `i64`.
pub(crate) fn scaled_interval(w: i64, lo: i64, hi: i64) -> Option<(i64, i64)> {
    let (a, b) = (w.checked_mul(lo)?, w.checked_mul(hi)?);
    Some((a.min(b), a.max(b)))
}

/// `[lo − zp, hi − zp]`, if it fits `i64` (a crafted graph may not).
pub(crate) fn minus_zero_point(lo: i64, hi: i64, zp: i64) -> Result<(i64, i64), String> {
    match (lo.checked_sub(zp), hi.checked_sub(zp)) {
        (Some(l), Some(h)) => Ok((l, h)),
        _ => Err(format!("[{lo}, {hi}] minus zero point {zp} overflows 64 bits")),
    }
}

/// Whether `v` (an integer graph's) is computed from table outputs through ops that
/// pass them on.
fn reads_tables(graph: &Graph, v: ValueId) -> bool {
    let node = graph.node(v);
    match node.op.table_noise() {
        TableNoise::Table => true,
        TableNoise::Forwarded => reads_tables(graph, node.inputs[0]),
        TableNoise::Untracked => false,
    }
}

/// The most accumulator steps a bias spans: `2^24`, an f32's precision.
const BIAS_STEPS: f64 = (1u64 << 24) as f64;

/// How much finer than the typical channel's a weight step may be before the channel
/// counts as dead: its largest weight is then below 1/65536 of the typical channel's.
const NEGLIGIBLE: f64 = 256.0 * 256.0;

/// A model input `x` that a `[K, N]` matmul reads, quantized per feature (its last
/// axis): raw tabular features span magnitudes from 1e-3 to 1e3, and one grid for all
/// of them erases the small ones (a LogisticRegression on breast-cancer data fell from
/// 98% to 63% accuracy). A feature the tensor's grid resolves into fewer than
/// `2^(input_bits/2)` steps gets a grid over its own calibrated range; the others keep
/// the tensor's, which tolerates test values beyond a feature's calibrated range (a
/// digit's pixel that the calibration images leave dark: per-pixel grids cost the
/// dense digits nets 2 points). The quantized input and its quantization; `None` when
/// `x` is not a model input or no feature needs a grid of its own.
fn quantize_features<C: QuantizeCx>(
    graph: &Graph,
    x: ValueId,
    cx: &mut C,
) -> Result<Option<(ValueId, Quant)>, C::Error> {
    let (Op::Input(_), &Lowered::Computed(per_tensor)) = (&graph.node(x).op, cx.state(x)) else {
        return Ok(None);
    };
    let float_in = cx.new_graph().node(per_tensor).inputs[0];
    let shape = &graph.ty(x).shape;
    let (Some(&k), rank) = (shape.0.last(), shape.rank()) else { return Ok(None) };
    let mut ranges = vec![(f64::INFINITY, f64::NEG_INFINITY); k];
    for t in cx.samples(float_in) {
        let t = t.as_f32().expect("float input");
        for (i, &v) in t.iter().enumerate() {
            let r = &mut ranges[i % k];
            *r = (r.0.min(v as f64), r.1.max(v as f64));
        }
    }
    let cfg = cx.config().clone();
    let tensor = cx.new_graph().ty(per_tensor).as_int().and_then(|t| t.quant.clone()).expect("quantized input");
    let shared = (tensor.scale[0], tensor.zero_point[0]);
    let min_steps = (1u64 << (cfg.input_bits / 2)) as f64;
    let (scale, zero_point): (Vec<f64>, Vec<i64>) = ranges
        .iter()
        .map(|&(lo, hi)| {
            let (l, h) = cfg.input_span(lo, hi);
            let own = interval_quant(l, h, cfg.input_bits);
            own.filter(|_| (hi - lo) / shared.0 < min_steps).unwrap_or(shared)
        })
        .unzip();
    if scale.iter().all(|&s| s == shared.0) {
        return Ok(None);
    }
    let quant = Quant { axis: Some(rank - 1), scale, zero_point };
    let hi = (1i64 << cfg.input_bits) - 1;
    let q = Quantize { quant: quant.clone(), lo: 0, hi };
    Ok(Some((cx.push(Op::Quantize(q), vec![float_in], graph.node(x).name.clone())?, quant)))
}

/// The quantization rule of a multiply-accumulate op (node `v` of `graph`): its input
/// per tensor, its weights symmetric per output channel to `weight_bits`
/// (`s_w[c] = max|W_c| / (2^(weight_bits−1) − 1)`), its bias at the accumulator scale
/// `s_x · s_w[c]`; `integer` makes the integer op for the input's zero point. The op's
/// type rule then derives the accumulator's exact range. With `per_feature` (a matmul,
/// whose weights are `[K, N]`), a model input is quantized per feature instead: each
/// weight row takes its feature's scale and the zero points move into the bias, exactly.
pub(crate) fn quantize_linear<C: QuantizeCx>(
    graph: &Graph,
    v: ValueId,
    cx: &mut C,
    per_feature: bool,
    integer: impl FnOnce(i64) -> Op,
) -> Result<Lowered<ValueId>, C::Error> {
    let node = graph.node(v);
    let axis = node.op.weight_channels(node.ty.shape.rank()).expect("a multiply-accumulate").weights;
    let w = graph.const_value(node.inputs[1]).and_then(Tensor::as_f32).expect("constant weights");
    let features = if per_feature { quantize_features(graph, node.inputs[0], cx)? } else { None };
    let (x, sx, zx, w, feature_zps) = match features {
        Some((x, xq)) => {
            let mut w = w.clone();
            w.axis_iter_mut(Axis(0))
                .zip(&xq.scale)
                .for_each(|(mut row, &s)| row.mapv_inplace(|v| (v as f64 * s) as f32));
            (x, 1.0, 0, w, Some(xq.zero_point))
        }
        None => {
            let x = cx.int_per_tensor(node.inputs[0])?;
            let xq = cx.new_graph().ty(x).as_int().and_then(|t| t.quant.clone()).expect("quantized input");
            (x, xq.scale[0], xq.zero_point[0], w.clone(), None)
        }
    };
    let cfg = cx.config().clone();
    let qmax = ((1i64 << (cfg.weight_bits - 1)) - 1) as f64;
    // Weights applied to table outputs multiply bootstrap noise by their 2-norm:
    // cap it so the TFHE circuit stays on cheap parameter sets.
    let norm_cap = cfg.max_weight_norm.filter(|_| reads_tables(cx.new_graph(), x));
    let mut bias: Option<Vec<f32>> = node
        .inputs
        .get(2)
        .map(|&b| graph.const_value(b).and_then(Tensor::as_f32).expect("constant bias").iter().copied().collect());
    if feature_zps.is_some() {
        // The zero points' correction needs a bias to live in.
        bias.get_or_insert_with(|| vec![0.0; w.shape()[axis]]);
    }
    let by_weights: Vec<f64> = w
        .axis_iter(Axis(axis))
        .map(|lane| {
            let m = lane.iter().fold(0f64, |m, &x| m.max((x as f64).abs()));
            let norm = lane.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
            (m / qmax).max(norm_cap.map_or(0.0, |cap| norm / cap))
        })
        .collect();
    // A dead unit (training leaves its weights at 1e-11 down to denormals) would get a
    // step so fine that its bias alone spans more of the accumulator than every live
    // channel, and one table shift serves the whole tensor: a channel whose weights are
    // negligible next to the typical channel's is quantized at the typical step.
    let mut live: Vec<f64> = by_weights.iter().copied().filter(|s| *s > 0.0 && s.is_finite()).collect();
    live.sort_by(f64::total_cmp);
    let typical = live.get(live.len() / 2).copied().unwrap_or(0.0);
    let scales: Vec<f64> = by_weights
        .iter()
        .enumerate()
        .map(|(c, &s)| {
            let s = if s < typical / NEGLIGIBLE { typical } else { s };
            // A channel whose weights are tiny next to its bias all the same (a
            // constant input) must not overflow the accumulator: resolve the bias to
            // f32 precision and no finer.
            let by_bias = bias.as_ref().map_or(0.0, |b| (b[c] as f64).abs() / (sx * BIAS_STEPS));
            let s = s.max(by_bias);
            if s > 0.0 && s.is_finite() {
                s
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
    let wname = graph.node(node.inputs[1]).name.clone();
    // Σ w·s_k·(q_k − z_k): the weights' part of each zero point, per channel.
    let zp_terms: Vec<i128> = match &feature_zps {
        Some(zps) => qw
            .axis_iter(Axis(axis))
            .map(|lane| lane.iter().zip(zps).map(|(&w, &z)| w as i128 * z as i128).sum())
            .collect(),
        None => vec![0; scales.len()],
    };
    let mut inputs = vec![x, cx.push_const(Tensor::I64(qw), Some(wq), wname.clone())?];
    if let Some(bv) = &bias {
        let qb: Option<Vec<i64>> = bv
            .iter()
            .zip(&zp_terms)
            .enumerate()
            .map(|(c, (&b, &zt))| i64::try_from((b as f64 / (sx * scales[c])).round() as i128 - zt).ok())
            .collect();
        let qb = qb.ok_or_else(|| cx.fail(v, "the bias with the input's zero points overflows 64 bits"))?;
        let bq =
            Quant { axis: Some(0), zero_point: vec![0; scales.len()], scale: scales.iter().map(|s| s * sx).collect() };
        let bname = node.inputs.get(2).map_or_else(|| format!("{wname}/zero_points"), |&b| graph.node(b).name.clone());
        inputs.push(cx.push_const(Tensor::I64(ndarray::Array1::from(qb).into_dyn()), Some(bq), bname)?);
    }
    let out = cx.push(integer(zx), inputs, node.name.clone())?;
    let t = cx.new_graph().ty(out).as_int().expect("integer");
    if t.lo.unsigned_abs().max(t.hi.unsigned_abs()) >= 1 << 62 {
        return Err(cx.fail(v, format!("accumulator range [{}, {}] overflows 62 bits; use fewer bits", t.lo, t.hi)));
    }
    Ok(Lowered::Computed(out))
}

/// The SMPC lowering of a multiply-accumulate op (node `v` of `graph`): the shared input
/// times the shared weights (`2^f`) plus the bias (`2^2f`) into a wide register
/// (`step` makes the step from the input, weight and bias registers and the output),
/// then one truncation back to `2^f`.
pub(crate) fn lower_linear<C: MpcCx>(
    graph: &Graph,
    v: ValueId,
    cx: &mut C,
    step: impl FnOnce(Reg, usize, Option<usize>, Reg) -> StepOp,
) -> Result<Lowered<Reg>, C::Error> {
    let node = graph.node(v);
    let f = cx.frac_bits();
    let x = cx.reg(node.inputs[0])?;
    let w = cx.weight(node.inputs[1], f)?;
    let b = node.inputs.get(2).map(|&b| cx.weight(b, 2 * f)).transpose()?;
    let wide = cx.new_reg();
    cx.step(v, step(x, w, b, wide));
    let out = cx.new_reg();
    cx.step(v, StepOp::Trunc { x: wide, len: node.ty.shape.numel(), bits: f, out });
    Ok(Lowered::Computed(out))
}
