//! Value types: a static shape and an element type. Integer element types carry
//! their exact range (derived by interval arithmetic from clear weights, see
//! [`crate::ops::Op::infer`]) and the affine quantization they stand for.

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

impl fmt::Display for Quant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.axis {
            None => write!(f, "q({}, {})", fmt_f64(self.scale[0]), self.zero_point[0]),
            Some(axis) => {
                write!(f, "q(axis={axis}, ")?;
                write_list(f, self.scale.iter().map(|s| fmt_f64(*s)))?;
                write!(f, ", ")?;
                write_list(f, self.zero_point.iter())?;
                write!(f, ")")
            }
        }
    }
}

/// Writes `[a, b, c]`, eliding the middle of lists longer than 8 as `..N..`.
pub fn write_list<T: fmt::Display>(f: &mut fmt::Formatter<'_>, items: impl ExactSizeIterator<Item = T>) -> fmt::Result {
    let n = items.len();
    write!(f, "[")?;
    for (i, x) in items.enumerate() {
        if n > 8 && (4..n - 2).contains(&i) {
            if i == 4 {
                write!(f, ", ..{}..", n - 6)?;
            }
            continue;
        }
        if i > 0 {
            write!(f, ", ")?;
        }
        write!(f, "{x}")?;
    }
    write!(f, "]")
}

/// Floats print with 6 significant digits: stable across platforms and short enough to read.
pub fn fmt_f64(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let s = format!("{x:.5e}");
    // Normalise "1.50000e-3" to "1.5e-3" and keep plain notation for moderate values.
    let (mant, exp) = s.split_once('e').expect("exponent");
    let exp: i32 = exp.parse().expect("exponent digits");
    if (-3..6).contains(&exp) {
        let digits = (5 - exp).max(0) as usize;
        let p = format!("{x:.digits$}");
        let p = if p.contains('.') { p.trim_end_matches('0').trim_end_matches('.').to_string() } else { p };
        return p;
    }
    let mant = mant.trim_end_matches('0').trim_end_matches('.');
    format!("{mant}e{exp}")
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

impl fmt::Display for TensorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.elem {
            ElemType::F32 => write!(f, "f32{}", self.shape),
            ElemType::Int(t) => {
                write!(f, "{}{} [{}, {}]", t.bit_width(), self.shape, t.lo, t.hi)?;
                if let Some(q) = &t.quant {
                    write!(f, " {q}")?;
                }
                Ok(())
            }
        }
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

    #[test]
    fn floats_print_short_and_stable() {
        assert_eq!(fmt_f64(0.0627451), "0.0627451");
        assert_eq!(fmt_f64(1.0), "1");
        assert_eq!(fmt_f64(1.5e-7), "1.5e-7");
        assert_eq!(fmt_f64(-123456789.0), "-1.23457e8");
    }
}
