//! `lut %x {shift, index, tables}`: a univariate integer table per element.
//!
//! `y[e] = T[clamp(round_shift(x[e], shift), base, base + len − 1) − base]` with
//! `T = tables[table_of[e]]`, where `round_shift(x, k) = ⌊(x + 2^(k−1)) / 2^k⌋` rounds to
//! the nearest multiple of `2^k` (ties up). Shifting drops the low bits of a wide
//! accumulator so the table reads only its top bits: in TFHE that is the programmable
//! bootstrap's own rounding, free of PBS. Tables cover the range the accumulator took
//! on the calibration set; beyond it the edge entries repeat (clamping), while the
//! operand's type keeps the exact worst-case range a backend may need to cover.
//! Tables are built by the quantizer from the float function they replace
//! (dequantize → activation chain → requantize), one per distinct channel function.

use super::{expect_arity, OpClass, OpSpec, Operand};
use crate::tensor::Tensor;
use crate::types::{Quant, TensorType};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// Integer table lookup.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Lut {
    /// Low bits dropped (with rounding) before the lookup.
    pub shift: u32,
    /// The index of each table's first entry.
    pub base: i64,
    /// The tables; entry `i` is the output for shifted input `base + i`.
    pub tables: Vec<Vec<i64>>,
    /// Which table each element (C order) uses; empty when there is one table.
    pub table_of: Vec<u32>,
    /// The real values the outputs stand for.
    pub quant: Option<Quant>,
}

/// `⌊(x + 2^(k−1)) / 2^k⌋`: `x / 2^k` rounded to nearest, ties up; `x` when `k = 0`.
pub fn round_shift(x: i64, k: u32) -> i64 {
    if k == 0 {
        x
    } else {
        // ⌊x / 2^k⌋ plus the bit below, so adding 2^(k−1) cannot overflow.
        (x >> k) + ((x >> (k - 1)) & 1)
    }
}

impl Lut {
    /// The table used by element `e`.
    pub fn table_for(&self, e: usize) -> &[i64] {
        let t = if self.table_of.is_empty() { 0 } else { self.table_of[e] as usize };
        &self.tables[t]
    }

    /// Number of entries of each table.
    pub fn table_len(&self) -> usize {
        self.tables.first().map_or(0, Vec::len)
    }

    /// The table entry index read for operand value `x`.
    pub fn index_of(&self, x: i64) -> usize {
        round_shift(x, self.shift).saturating_sub(self.base).clamp(0, self.table_len() as i64 - 1) as usize
    }
}

impl OpSpec for Lut {
    fn mnemonic(&self) -> &'static str {
        "lut"
    }
    fn class(&self) -> OpClass {
        OpClass::Table
    }
    fn infer(&self, inputs: &[Operand]) -> Result<TensorType, String> {
        expect_arity(inputs, 1..=1)?;
        let Some(x) = inputs[0].ty.as_int() else {
            return Err("expects an integer operand".into());
        };
        let n = inputs[0].ty.shape.numel();
        if self.tables.is_empty() || self.table_len() == 0 || self.tables.iter().any(|t| t.len() != self.table_len()) {
            return Err("needs one or more tables of equal, non-zero length".into());
        }
        if self.shift >= 63 {
            return Err(format!("shifts by {} bits; a 64-bit accumulator allows at most 62", self.shift));
        }
        if !(self.table_of.is_empty() || self.table_of.len() == n) {
            return Err(format!("maps {} elements to tables, the operand has {n}", self.table_of.len()));
        }
        if let Some(&t) = self.table_of.iter().find(|&&t| t as usize >= self.tables.len()) {
            return Err(format!("refers to table {t} of {}", self.tables.len()));
        }
        let (first, last) = (self.index_of(x.lo), self.index_of(x.hi));
        let reachable = self.tables.iter().flat_map(|t| &t[first..=last]);
        let lo = reachable.clone().copied().min().expect("non-empty");
        let hi = reachable.copied().max().expect("non-empty");
        Ok(TensorType::int(inputs[0].ty.shape.clone(), lo, hi, self.quant.clone()))
    }
    fn eval(&self, inputs: &[&Tensor]) -> Tensor {
        let x = inputs[0].as_i64().expect("integer operand verified");
        let mut y = x.clone();
        for (e, v) in y.iter_mut().enumerate() {
            *v = self.table_for(e)[self.index_of(*v)];
        }
        Tensor::I64(y)
    }
    fn write_attrs(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut h = Sha256::new();
        for t in &self.tables {
            t.iter().for_each(|v| h.update(v.to_le_bytes()));
        }
        self.table_of.iter().for_each(|v| h.update(v.to_le_bytes()));
        let digest: String = h.finalize()[..4].iter().map(|b| format!("{b:02x}")).collect();
        write!(
            f,
            "shift={}, index=[{}, {}], tables={} #{digest}",
            self.shift,
            self.base,
            self.base + self.table_len() as i64 - 1,
            self.tables.len()
        )?;
        if let Some(q) = &self.quant {
            write!(f, ", out={q}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_shift_rounds_to_nearest_ties_up() {
        assert_eq!(round_shift(5, 0), 5);
        assert_eq!([-3, -2, -1, 0, 1, 2, 3].map(|x| round_shift(x, 1)), [-1, -1, 0, 0, 1, 1, 2]);
        assert_eq!(round_shift(-9, 2), -2);
        assert_eq!(round_shift(6, 2), 2);
    }
}
