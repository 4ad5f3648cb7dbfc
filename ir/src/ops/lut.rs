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
//!
//! TFHE: one programmable bootstrap per element (`lower_fhe` plans its boxes). It
//! exists in the integer IR only: it has no quantization rule, and the SMPC backend,
//! which lowers the float IR, evaluates the chain it replaces instead.

use super::facets::{
    Channels, FheLowering, FheRule, Lowered, MpcCx, MpcRule, QuantizeCx, QuantizeRule, TableNoise, ALREADY_QUANTIZED,
    MPC_FLOAT_ONLY,
};
use super::{expect_arity, node_quant, OpSpec, Operand};
use crate::lowered::mpc::Reg;
use crate::tensor::Tensor;
use crate::text::{ParseError, Parser, Printer};
use crate::types::{Quant, TensorType};
use crate::{Graph, ValueId};
use serde::{Deserialize, Serialize};

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

    /// Each element's table (C order) as `(tables, table_of)`: equal tables shared, in
    /// the order first seen, and `table_of` empty when one table serves every element.
    pub fn share_tables(columns: impl IntoIterator<Item = Vec<i64>>) -> (Vec<Vec<i64>>, Vec<u32>) {
        let mut ids: std::collections::HashMap<Vec<i64>, u32> = std::collections::HashMap::new();
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
        (tables, table_of)
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
    fn print_attrs(&self, w: &mut Printer) {
        w.attr("shift", |w| w.display(self.shift));
        w.attr("base", |w| w.display(self.base));
        w.attr("tables", |w| w.list(&self.tables, |w, t| w.list(t, |w, v| w.display(v))));
        if !self.table_of.is_empty() {
            w.attr("table_of", |w| w.list(&self.table_of, |w, t| w.display(t)));
        }
        if self.quant.as_ref() != node_quant(w.node_type()) {
            w.attr("out", |w| Quant::print_opt(self.quant.as_ref(), w));
        }
    }
}

impl Lut {
    /// Reads `{shift, base, tables, table_of, out}`: `table_of` empty when absent,
    /// `out` the node type's quantization.
    pub(crate) fn parse_attrs(p: &mut Parser) -> Result<Self, ParseError> {
        let shift = p.attr("shift", Parser::u32)?;
        let base = p.attr("base", Parser::i64)?;
        let tables = p.attr("tables", |p| p.list(|p| p.list(Parser::i64)))?;
        let table_of = p.opt_attr("table_of", |p| p.list(Parser::u32))?.unwrap_or_default();
        let quant = match p.opt_attr("out", Quant::parse_opt)? {
            Some(q) => q,
            None => node_quant(p.node_type()).cloned(),
        };
        Ok(Lut { shift, base, tables, table_of, quant })
    }
}

impl QuantizeRule for Lut {
    fn quantize<C: QuantizeCx>(&self, _: &Graph, v: ValueId, cx: &mut C) -> Result<Lowered<ValueId>, C::Error> {
        Err(cx.fail(v, ALREADY_QUANTIZED))
    }
    fn table_noise(&self) -> TableNoise {
        TableNoise::Table
    }
    fn weight_channels(&self, _: usize) -> Option<Channels> {
        None
    }
}

impl FheRule for Lut {
    fn fhe_lowering(&self) -> FheLowering<'_> {
        FheLowering::Bootstrap(self)
    }
}

impl MpcRule for Lut {
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

    #[test]
    fn round_shift_rounds_to_nearest_ties_up() {
        assert_eq!(round_shift(5, 0), 5);
        assert_eq!([-3, -2, -1, 0, 1, 2, 3].map(|x| round_shift(x, 1)), [-1, -1, 0, 0, 1, 1, 2]);
        assert_eq!(round_shift(-9, 2), -2);
        assert_eq!(round_shift(6, 2), 2);
    }
}
