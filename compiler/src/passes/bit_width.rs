//! `bit_width`: what the range analysis found, per value and per table, for
//! `secc inspect` and the backends' parameter choice. Ranges themselves are the
//! types the ops' rules inferred (interval arithmetic over the clear weights).

use secc_ir::ops::{round_shift, Lut};
use secc_ir::{BitWidth, Graph, Op, ValueId};

/// Bit-width statistics of an integer graph.
#[derive(Clone, Debug, PartialEq)]
pub struct BitWidthReport {
    /// Bit width of every integer value.
    pub values: Vec<(ValueId, BitWidth)>,
    /// Table lookups per inference (one per element of each `lut`).
    pub table_lookups: usize,
    /// Distinct tables stored.
    pub distinct_tables: usize,
    /// The widest table input: the `lut`, the bits its shifted index spans, and the
    /// accumulator width it was rounded from.
    pub widest_table_input: Option<(ValueId, u32, BitWidth)>,
    /// The widest integer value of the graph.
    pub widest_value: Option<(ValueId, BitWidth)>,
}

/// Bits needed to index `lut` when its operand lies in `[lo, hi]`.
pub fn table_input_bits(lut: &Lut, lo: i64, hi: i64) -> u32 {
    let span = (round_shift(hi, lut.shift) - round_shift(lo, lut.shift)) as u64;
    64 - span.leading_zeros()
}

/// Summarises the integer values and tables of `graph`.
pub fn analyze_bit_widths(graph: &Graph) -> BitWidthReport {
    let mut r = BitWidthReport {
        values: vec![],
        table_lookups: 0,
        distinct_tables: 0,
        widest_table_input: None,
        widest_value: None,
    };
    for (i, node) in graph.nodes.iter().enumerate() {
        let v = ValueId(i as u32);
        let Some(t) = node.ty.as_int() else { continue };
        let bw = t.bit_width();
        r.values.push((v, bw));
        if r.widest_value.is_none_or(|(_, w)| bw.bits > w.bits) {
            r.widest_value = Some((v, bw));
        }
        if let Op::Lut(lut) = &node.op {
            r.table_lookups += node.ty.shape.numel();
            r.distinct_tables += lut.tables.len();
            let input = graph.ty(node.inputs[0]).as_int().expect("lut reads integers");
            let bits = table_input_bits(lut, input.lo, input.hi).max(1);
            if r.widest_table_input.is_none_or(|(_, b, _)| bits > b) {
                r.widest_table_input = Some((v, bits, input.bit_width()));
            }
        }
    }
    r
}
