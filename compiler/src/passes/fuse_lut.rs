//! `fuse_lut`: an elementwise chain hanging off one integer value (a [`Region`], which
//! the elementwise ops' quantization rule builds) becomes one table per element:
//! dequantize → the float chain (activation, bias, anything elementwise) →
//! requantize, tabulated over the integer input's range. Wide accumulators are read
//! through their top `table_bits` bits (`shift`, rounded), which is what a TFHE
//! bootstrap reads for free. Tables span the range the input took on the calibration
//! set (clamping beyond it). Elements whose functions coincide share a table.

use super::calibrate::Calibration;
use super::quantize::QuantConfig;
use crate::CompileError;
use ndarray::{ArrayD, IxDyn};
use secc_ir::ops::{output_quant, quant_at_scale, quantize_value, round_shift, Lut, Region};
use secc_ir::{Graph, Quant, Shape, Tensor, ValueId};
use std::collections::HashMap;

/// The smallest shift that leaves at most `2^table_bits − 2` table entries for
/// `[lo, hi]`: the TFHE bootstrap reads `table_bits` bits and keeps one spare box on
/// each side, so approximate rounding at the edges stays inside the table.
pub fn table_shift(lo: i64, hi: i64, table_bits: u32) -> u32 {
    (0..63)
        .find(|&k| round_shift(hi, k) - round_shift(lo, k) < (1 << table_bits) - 2)
        .expect("a 63-bit shift fits any range")
}

/// The table computing old float value `target` from `region.source` (a value of
/// `new`). `observed` is the range the source took on the calibration set: the table
/// spans it in at most `2^table_bits − 2` entries and clamps beyond it. Its output is
/// quantized to `bits` over `target`'s calibrated range, or at `scale` when given (an
/// operand re-encoded to the scale of another it is added to).
#[allow(clippy::too_many_arguments)]
pub fn tabulate(
    new: &Graph,
    old: &Graph,
    region: &Region,
    target: ValueId,
    calib: &Calibration,
    cfg: &QuantConfig,
    observed: (i64, i64),
    scale: Option<f64>,
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
    let (range_lo, range_hi) = calib.ranges[target.index()].ok_or_else(|| fail("no calibration range".into()))?;
    let out = match scale {
        None => output_quant(range_lo, range_hi, cfg.bits),
        Some(s) => quant_at_scale(range_lo, range_hi, s),
    };
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
/// its output quantized by `out` (`(quant, lo, hi)`).
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
    let mut columns = vec![Vec::with_capacity((last - first + 1) as usize); n];
    for index in first..=last {
        let acc = index << shift;
        let x: Vec<f32> = (0..n).map(|e| src_q.dequantize(shape, e, acc) as f32).collect();
        let y = f(Tensor::F32(ArrayD::from_shape_vec(IxDyn(&shape.0), x).expect("shape")));
        let y = y.as_f32().expect("float chain");
        for (col, &v) in columns.iter_mut().zip(y.iter()) {
            col.push(if v.is_nan() { z } else { quantize_value(v as f64, s, z, lo, hi) });
        }
    }
    let mut ids: HashMap<Vec<i64>, u32> = HashMap::new();
    let mut tables = Vec::new();
    let table_of: Vec<u32> = columns
        .into_iter()
        .map(|col| {
            *ids.entry(col).or_insert_with_key(|col| {
                tables.push(col.clone());
                tables.len() as u32 - 1
            })
        })
        .collect();
    let table_of = if tables.len() == 1 { Vec::new() } else { table_of };
    Lut { shift, base: first, tables, table_of, quant: Some(out_q) }
}
