//! The one error of the text form: where the text stops making sense, and why.

/// A syntax error, or a well-formed text that does not describe a valid value (an
/// unknown op, a list of the wrong length). Lines and columns count from 1; columns
/// count characters, not bytes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {col}: {message}")]
pub struct ParseError {
    /// Line of the offending token.
    pub line: u32,
    /// Column of its first character.
    pub col: u32,
    /// What was expected or what is wrong.
    pub message: String,
}
