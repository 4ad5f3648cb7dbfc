//! Runtime errors: problems with what the caller passed in, never internal bugs.

use secc_ir::Shape;

/// Errors running a graph.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// Wrong number of inputs.
    #[error("the model takes {expected} input(s), {got} given")]
    InputCount {
        /// Inputs the graph declares.
        expected: usize,
        /// Inputs given.
        got: usize,
    },
    /// An input of the wrong shape.
    #[error("input {index} has shape {got}, the model expects {expected}")]
    InputShape {
        /// Which input.
        index: usize,
        /// Declared shape.
        expected: Shape,
        /// Given shape.
        got: Shape,
    },
    /// An input of the wrong element type.
    #[error("input {index} must be {expected}")]
    InputType {
        /// Which input.
        index: usize,
        /// What it must be.
        expected: &'static str,
    },
}
