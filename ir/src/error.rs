//! Errors of the IR layer. Each carries the value (`%N`) and node name it is about.

use crate::entity::ValueId;
use std::fmt;

/// One broken invariant found by the verifier.
#[derive(Clone, PartialEq, Debug)]
pub struct VerifyError {
    /// The value whose node is wrong.
    pub value: ValueId,
    /// The node's source name.
    pub name: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.value)?;
        if !self.name.is_empty() {
            write!(f, " (\"{}\")", self.name)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Errors building or checking a graph.
#[derive(Debug, thiserror::Error)]
pub enum IrError {
    /// An op was given operands it cannot take (the caller's bug or bad input).
    #[error("{value} (\"{name}\"): {message}")]
    Build {
        /// The value being defined.
        value: ValueId,
        /// The node's source name.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// The verifier found broken invariants (a pass's bug); all of them are listed.
    #[error("graph `{graph}` failed verification:\n{}", .errors.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n"))]
    Verify {
        /// The graph's name.
        graph: String,
        /// Every problem found.
        errors: Vec<VerifyError>,
    },
}
