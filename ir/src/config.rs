//! The quantizer's settings: what `secc compile` chose, recorded in every artifact.

use serde::{Deserialize, Serialize};

/// Bit widths the quantizer targets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuantConfig {
    /// Bits of every table output (activations).
    pub bits: u32,
    /// Bits of the model inputs. The client quantizes them in the clear, so extra
    /// input bits widen only the first accumulators, and buy accuracy on linear models.
    pub input_bits: u32,
    /// Bits of weights (symmetric, per output channel).
    pub weight_bits: u32,
    /// Most bits a table reads: wider accumulators are rounded to their top bits.
    pub table_bits: u32,
    /// Narrower reads for some tables: the tables computing the named node read these
    /// bits instead of `table_bits` (the precision pass narrows the layers with the most
    /// bootstraps where the accuracy budget allows).
    pub table_bits_of: Vec<(String, u32)>,
    /// Fraction of the calibrated width added on each side of the input range, so
    /// samples a little beyond the calibration set are not clipped.
    pub input_margin: f64,
    /// Evaluate an elementwise chain that ends the model (a final sigmoid) as a table
    /// under encryption. When false (the default, as Concrete-ML does for linear
    /// models) the client applies it in float after decryption: exact, and one
    /// table fewer per output; the client then sees the pre-activation values.
    pub output_tables: bool,
    /// Bits of each feature a tree ensemble reads, bucketized on that feature's
    /// thresholds (at most `2^tree_bits − 1` of them): the width of every comparison table.
    pub tree_bits: u32,
    /// Largest 2-norm of a quantized weight channel applied to table outputs. In TFHE
    /// it multiplies the bootstrap noise, so it decides which parameter set serves.
    pub max_weight_norm: Option<f64>,
}

impl Default for QuantConfig {
    /// Concrete-ML's `compile_onnx_model` defaults: 8-bit weights and activations.
    /// Tables read 5 bits and weights applied to table outputs have 2-norm ≤ 31: the
    /// tfhe-rs set `MESSAGE_1_CARRY_4` (5 bits, budget 31) then serves every table, at a
    /// third of the cost of 6-bit sets (measured in the README). Inputs get two more
    /// bits and a 10% margin: a finite calibration set under-covers the tails. Tree
    /// features get 4 bits: their comparisons then share the 4-bit set `MESSAGE_2_CARRY_2`
    /// with the leaf tables (a third of a 5-bit bootstrap; R² on the diabetes forests
    /// within 0.01 of float, measured in the README).
    fn default() -> Self {
        QuantConfig::with_bits(8)
    }
}

impl QuantConfig {
    /// `bits` for weights and activations, `bits + 2` for inputs, 5-bit tables, 4-bit
    /// tree features, 2-norm cap 31.
    pub fn with_bits(bits: u32) -> Self {
        QuantConfig {
            bits,
            input_bits: bits + 2,
            weight_bits: bits,
            table_bits: 5.min(bits),
            table_bits_of: Vec::new(),
            input_margin: 0.1,
            output_tables: false,
            tree_bits: 4.min(bits),
            max_weight_norm: Some(31.0),
        }
    }

    /// The span an input quantizes over: its calibrated `[lo, hi]` widened by
    /// `input_margin` of its width on each side.
    pub fn input_span(&self, lo: f64, hi: f64) -> (f64, f64) {
        let margin = (hi - lo) * self.input_margin;
        (lo - margin, hi + margin)
    }

    /// The bits the tables computing node `name` read.
    pub fn table_bits_for(&self, name: &str) -> u32 {
        self.table_bits_of.iter().find(|(n, _)| n == name).map_or(self.table_bits, |&(_, b)| b)
    }

    /// The most bits any table reads.
    pub fn widest_table_bits(&self) -> u32 {
        self.table_bits_of.iter().map(|&(_, b)| b).fold(self.table_bits, u32::max)
    }

    /// The layers read at their own widths, as ` (5 at /1/Relu.low, ...)`; empty when
    /// every table reads `table_bits`.
    pub fn layer_widths(&self) -> String {
        if self.table_bits_of.is_empty() {
            return String::new();
        }
        let layers: Vec<String> = self.table_bits_of.iter().map(|(n, b)| format!("{b} at {n}")).collect();
        format!(" ({})", layers.join(", "))
    }

    /// Checks the widths are usable.
    pub fn check(&self) -> Result<(), String> {
        for (name, v, max) in [
            ("bits", self.bits, 16),
            ("input bits", self.input_bits, 24),
            ("weight bits", self.weight_bits, 16),
            ("table bits", self.table_bits, 16),
            ("tree bits", self.tree_bits, 16),
        ] {
            if !(2..=max).contains(&v) {
                return Err(format!("{name} must be between 2 and {max}, got {v}"));
            }
        }
        if let Some((name, b)) = self.table_bits_of.iter().find(|(_, b)| !(2..=16).contains(b)) {
            return Err(format!("table bits of {name} must be between 2 and 16, got {b}"));
        }
        if !(0.0..=10.0).contains(&self.input_margin) {
            return Err(format!("input margin must be between 0 and 10, got {}", self.input_margin));
        }
        Ok(())
    }
}
