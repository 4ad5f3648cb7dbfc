//! `fuse_lut`: an elementwise chain hanging off one integer value (a [`Region`], which
//! the elementwise ops' quantization rule builds) becomes one table per element:
//! dequantize → the float chain (activation, bias, anything elementwise) →
//! requantize, tabulated over the integer input's range. Wide accumulators are read
//! through their top `table_bits` bits (`shift`, rounded), which is what a TFHE
//! bootstrap reads for free. Tables span the range the input took on the calibration
//! set (clamping beyond it). Elements whose functions coincide share a table.

use super::quantize::QuantConfig;
use crate::CompileError;
use ndarray::{ArrayD, IxDyn};
use secc_ir::ops::{output_quant, quantize_value, round_shift, Lut, Region};
use secc_ir::{Graph, Quant, Shape, Tensor, ValueId};
use std::collections::HashMap;

/// The smallest shift that leaves at most `2^table_bits − 2` table entries for
/// `[lo, hi]`: the TFHE bootstrap reads `table_bits` bits and keeps one spare box on
/// each side, so approximate rounding at the edges stays inside the table.
pub fn table_shift(lo: i64, hi: i64, table_bits: u32) -> u32 {
    // In i128: the span of a 64-bit range overflows i64.
    (0..64)
        .find(|&k| (round_shift(hi, k) as i128 - round_shift(lo, k) as i128) < (1 << table_bits) - 2)
        .expect("a 63-bit shift fits any range")
}

/// The table computing old float value `target` from `region.source` (a value of
/// `new`). `observed` is the range the source took on the calibration set: the table
/// spans it in at most `2^table_bits − 2` entries and clamps beyond it. Its outputs
/// land on `grid` (quantization, smallest and largest integer) when the model states
/// one, else are quantized to `bits` over `range`: the range `target` took on the
/// calibration set, or one that several values share.
#[allow(clippy::too_many_arguments)]
pub fn tabulate(
    new: &Graph,
    old: &Graph,
    region: &Region,
    target: ValueId,
    range: Option<(f64, f64)>,
    cfg: &QuantConfig,
    observed: (i64, i64),
    grid: Option<(Quant, i64, i64)>,
) -> Result<Lut, CompileError> {
    let fail = |message: String| CompileError::Pass {
        pass: "fuse_lut",
        value: target,
        node: old.node(target).name.clone(),
        message,
    };
    let nodes = region.chain_to(old, target);
    let src_ty = new.ty(region.source).clone();
    let src = src_ty.as_int().expect("regions read integers");
    let Some(src_q) = src.quant.clone() else { return Err(fail("the input has no quantization".into())) };
    let shape = &src_ty.shape;
    if old.ty(target).shape != *shape {
        return Err(fail(format!("elementwise chain changes shape {} to {}", shape, old.ty(target).shape)));
    }
    let out = match grid {
        Some(grid) => grid,
        None => {
            let (range_lo, range_hi) = range.ok_or_else(|| fail("no calibration range".into()))?;
            output_quant(range_lo, range_hi, cfg.bits)
        }
    };
    if out.0.axis.is_some() {
        return Err(fail("tables onto per-channel grids are not supported yet".into()));
    }
    // An empty chain is the identity: a requantization from per-channel scales to one.
    let chain = |x: Tensor| {
        if nodes.is_empty() {
            return x;
        }
        let bound: HashMap<ValueId, Tensor> = region.entries.iter().map(|&e| (e, x.clone())).collect();
        secc_ir::interp::eval_nodes(old, &nodes, bound)
    };
    Ok(tabulate_fn(shape, &src_q, observed, cfg.table_bits, out, &chain))
}

/// The table of `f` (a float function of a whole tensor of `shape`, elementwise) on an
/// integer source quantized by `src_q` that took `observed` on the calibration set,
/// read through `table_bits` bits, its output on the per-tensor grid `out`
/// (`(quant, lo, hi)`).
pub fn tabulate_fn(
    shape: &Shape,
    src_q: &Quant,
    observed: (i64, i64),
    table_bits: u32,
    (out_q, lo, hi): (Quant, i64, i64),
    f: &dyn Fn(Tensor) -> Tensor,
) -> Lut {
    let shift = table_shift(observed.0, observed.1, table_bits);
    let (first, last) = (round_shift(observed.0, shift), round_shift(observed.1, shift));
    let (s, z) = (out_q.scale[0], out_q.zero_point[0]);
    let n = shape.numel();
    // columns[e][i] = table entry of element e for shifted input first + i
    let mut columns = vec![Vec::with_capacity(1 << table_bits); n];
    for index in first..=last {
        // Saturating: the top entry of a range near 2^63 stands for its end.
        let acc = ((index as i128) << shift).clamp(i64::MIN as i128, i64::MAX as i128) as i64;
        let x: Vec<f32> = (0..n).map(|e| src_q.dequantize(shape, e, acc) as f32).collect();
        let y = f(Tensor::F32(ArrayD::from_shape_vec(IxDyn(&shape.0), x).expect("shape")));
        let y = y.as_f32().expect("float chain");
        for (col, &v) in columns.iter_mut().zip(y.iter()) {
            col.push(if v.is_nan() { z } else { quantize_value(v as f64, s, z, lo, hi) });
        }
    }
    let (tables, table_of) = Lut::share_tables(columns);
    Lut { shift, base: first, tables, table_of, quant: Some(out_q) }
}
