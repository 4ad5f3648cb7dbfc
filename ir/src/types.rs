//! Value types: a static shape and an element type. Integer element types carry
//! their exact range (derived by interval arithmetic from clear weights, see
//! [`crate::ops::Op::infer`]) and the affine quantization they stand for.

use crate::text::{print_inline, ParseError, Parser, Printer};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A static tensor shape (row-major / C order).
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
pub struct Shape(pub Vec<usize>);

impl Shape {
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.0.iter().product()
    }
    /// Number of axes.
    pub fn rank(&self) -> usize {
        self.0.len()
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                write!(f, ",")?;
            }
            write!(f, "{d}")?;
        }
        write!(f, "]")
    }
}

/// Affine quantization: an integer `q` stands for the real `scale * (q - zero_point)`.
///
/// Per tensor when `axis` is `None` (one scale and zero point), otherwise one
/// entry per index along `axis` (per channel).
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Quant {
    /// The channel axis for per-channel parameters.
    pub axis: Option<usize>,
    /// Scales, one per channel (or a single one).
    pub scale: Vec<f64>,
    /// Zero points, same length as `scale`.
    pub zero_point: Vec<i64>,
}

impl Quant {
    /// Per-tensor parameters.
    pub fn per_tensor(scale: f64, zero_point: i64) -> Self {
        Quant { axis: None, scale: vec![scale], zero_point: vec![zero_point] }
    }

    /// Scale and zero point that apply to the element at flat index `flat` of a tensor of `shape`.
    pub fn params_at(&self, shape: &Shape, flat: usize) -> (f64, i64) {
        let c = self.channel_of(shape, flat);
        (self.scale[c], self.zero_point[c])
    }

    /// The channel (index into `scale`) of the element at flat index `flat`.
    pub fn channel_of(&self, shape: &Shape, flat: usize) -> usize {
        match self.axis {
            None => 0,
            Some(axis) => {
                let inner: usize = shape.0[axis + 1..].iter().product();
                (flat / inner) % shape.0[axis]
            }
        }
    }

    /// The real value `q` stands for at flat index `flat`.
    pub fn dequantize(&self, shape: &Shape, flat: usize, q: i64) -> f64 {
        let (s, z) = self.params_at(shape, flat);
        s * (q - z) as f64
    }
}

impl Quant {
    /// Prints `q(scale, zero_point)`, or `q(axis=A, [scales], [zero points])`.
    pub(crate) fn print(&self, w: &mut Printer) {
        w.text("q(");
        match (self.axis, self.scale.as_slice(), self.zero_point.as_slice()) {
            (None, [s], [z]) => {
                w.f64(*s);
                w.text(", ");
                w.display(z);
            }
            (axis, ..) => {
                if let Some(a) = axis {
                    w.text(&format!("axis={a}, "));
                }
                w.field("scale");
                w.list(&self.scale, |w, s| w.f64(*s));
                w.text(", ");
                w.field("zero_point");
                w.list(&self.zero_point, |w, z| w.display(z));
            }
        }
        w.text(")");
    }

    /// Reads what [`Quant::print`] writes.
    pub(crate) fn parse(p: &mut Parser) -> Result<Quant, ParseError> {
        p.keyword("q")?;
        p.expect("(")?;
        let q = if p.at("[") || p.is_keyword("axis") || p.at_ref() {
            let axis = if p.is_keyword("axis") {
                p.keyword("axis")?;
                p.expect("=")?;
                let a = p.usize()?;
                p.expect(",")?;
                Some(a)
            } else {
                None
            };
            let scale = p.list(Parser::f64)?;
            p.expect(",")?;
            Quant { axis, scale, zero_point: p.list(Parser::i64)? }
        } else {
            let scale = p.f64()?;
            p.expect(",")?;
            Quant::per_tensor(scale, p.i64()?)
        };
        p.expect(")")?;
        Ok(q)
    }

    /// Prints an optional quantization: `q(...)`, or `none`.
    pub(crate) fn print_opt(q: Option<&Quant>, w: &mut Printer) {
        match q {
            Some(q) => q.print(w),
            None => w.text("none"),
        }
    }

    /// Reads what [`Quant::print_opt`] writes.
    pub(crate) fn parse_opt(p: &mut Parser) -> Result<Option<Quant>, ParseError> {
        if p.is_keyword("none") {
            p.keyword("none")?;
            return Ok(None);
        }
        Quant::parse(p).map(Some)
    }
}

/// The text form, every list inline.
impl fmt::Display for Quant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&print_inline(|w| self.print(w)))
    }
}

/// Number of bits of an integer range: unsigned when `lo >= 0`, two's complement otherwise.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct BitWidth {
    /// Total bits, sign bit included.
    pub bits: u32,
    /// Whether the range has negative values.
    pub signed: bool,
}

impl BitWidth {
    /// The narrowest width holding every integer of `[lo, hi]`.
    pub fn of_range(lo: i64, hi: i64) -> Self {
        let mag = |v: i64| 64 - (v as u64).leading_zeros();
        if lo >= 0 {
            BitWidth { bits: mag(hi).max(1), signed: false }
        } else {
            let neg = mag(-(lo + 1)); // bits of |lo|-1
            BitWidth { bits: 1 + neg.max(if hi > 0 { mag(hi) } else { 0 }), signed: true }
        }
    }
}

impl fmt::Display for BitWidth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", if self.signed { "i" } else { "u" }, self.bits)
    }
}

/// An integer element type: every element lies in `[lo, hi]`.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct IntType {
    /// Smallest value any element can take.
    pub lo: i64,
    /// Largest value any element can take.
    pub hi: i64,
    /// The real numbers these integers stand for, when they stand for any.
    pub quant: Option<Quant>,
}

impl IntType {
    /// The bit width of `[lo, hi]`.
    pub fn bit_width(&self) -> BitWidth {
        BitWidth::of_range(self.lo, self.hi)
    }
}

/// Element type of a tensor value.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub enum ElemType {
    /// 32-bit float (the float IR).
    F32,
    /// Exact integers (the quantized IR).
    Int(IntType),
}

/// The type of a value: element type and static shape.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct TensorType {
    /// Element type.
    pub elem: ElemType,
    /// Static shape.
    pub shape: Shape,
}

impl TensorType {
    /// A float tensor of `shape`.
    pub fn f32(shape: Shape) -> Self {
        TensorType { elem: ElemType::F32, shape }
    }
    /// An integer tensor of `shape` with range `[lo, hi]`.
    pub fn int(shape: Shape, lo: i64, hi: i64, quant: Option<Quant>) -> Self {
        TensorType { elem: ElemType::Int(IntType { lo, hi, quant }), shape }
    }
    /// The integer type, if this is an integer tensor.
    pub fn as_int(&self) -> Option<&IntType> {
        match &self.elem {
            ElemType::Int(t) => Some(t),
            ElemType::F32 => None,
        }
    }
    /// Whether elements are floats.
    pub fn is_float(&self) -> bool {
        matches!(self.elem, ElemType::F32)
    }
}

impl TensorType {
    /// Prints `f32[shape]`, or `<bit width>[shape] [lo, hi]` and the quantization.
    pub(crate) fn print(&self, w: &mut Printer) {
        match &self.elem {
            ElemType::F32 => w.text("f32"),
            ElemType::Int(t) => w.display(t.bit_width()),
        }
        w.dims(&self.shape.0);
        if let ElemType::Int(t) = &self.elem {
            w.text(&format!(" [{}, {}]", t.lo, t.hi));
            if let Some(q) = &t.quant {
                w.text(" ");
                q.print(w);
            }
        }
    }

    /// Reads what [`TensorType::print`] writes. The bit width must be the range's.
    pub(crate) fn parse(p: &mut Parser) -> Result<TensorType, ParseError> {
        let here = p.error("");
        let word = p.ident()?;
        let width = match word.split_at(word.len().min(1)) {
            _ if word == "f32" => None,
            (s @ ("u" | "i"), bits) if !bits.is_empty() && bits.bytes().all(|b| b.is_ascii_digit()) => {
                Some((s == "i", bits.parse::<u32>().ok()))
            }
            _ => {
                return Err(ParseError {
                    message: format!("expected a type (`f32`, `u8`, `i9`...), found `{word}`"),
                    ..here
                })
            }
        };
        let shape = Shape(p.dims()?);
        let Some((signed, bits)) = width else {
            return Ok(TensorType::f32(shape));
        };
        let (lo, hi) = p.range()?;
        let quant = if p.is_keyword("q") { Some(Quant::parse(p)?) } else { None };
        let actual = BitWidth::of_range(lo, hi);
        if bits != Some(actual.bits) || signed != actual.signed {
            return Err(ParseError {
                message: format!("`{word}` is not the bit width of [{lo}, {hi}] ({actual})"),
                ..here
            });
        }
        Ok(TensorType::int(shape, lo, hi, quant))
    }
}

/// The text form, every list inline.
impl fmt::Display for TensorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&print_inline(|w| self.print(w)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_widths_are_tight() {
        assert_eq!(BitWidth::of_range(0, 255).to_string(), "u8");
        assert_eq!(BitWidth::of_range(0, 256).to_string(), "u9");
        assert_eq!(BitWidth::of_range(-128, 127).to_string(), "i8");
        assert_eq!(BitWidth::of_range(-129, 127).to_string(), "i9");
        assert_eq!(BitWidth::of_range(-1, 0).to_string(), "i1");
        assert_eq!(BitWidth::of_range(-8, 8).to_string(), "i5");
        assert_eq!(BitWidth::of_range(0, 0).to_string(), "u1");
    }
}
