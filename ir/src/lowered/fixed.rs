//! The SMPC backend's fixed-point encoding, written once for the compiler (weights,
//! biases, thresholds) and the parties (inputs, public constants, revealed outputs):
//! a real `x` at `f` fractional bits is the ring element `round(x · 2^f)` of Z_2^64,
//! read as a two's-complement `i64`.

/// `round(x · 2^frac_bits)`, saturating at the `i64` range (a value that large is
/// already meaningless in the ring; saturation keeps it from being a panic).
pub fn encode_fixed(x: f64, frac_bits: u32) -> i64 {
    (x * 2f64.powi(frac_bits as i32)).round() as i64
}

/// The real number ring element `w` stands for at `frac_bits` fractional bits.
pub fn decode_fixed(w: i64, frac_bits: u32) -> f64 {
    w as f64 / 2f64.powi(frac_bits as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_to_nearest_and_back() {
        assert_eq!(encode_fixed(1.5, 2), 6);
        assert_eq!(encode_fixed(-0.3, 4), -5);
        assert_eq!(decode_fixed(-5, 4), -0.3125);
        assert_eq!(encode_fixed(1e300, 18), i64::MAX);
    }
}
