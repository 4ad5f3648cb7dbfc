//! The one text form of the IR and of the lowered programs: what `Display` prints,
//! and what [`parse_graph`], [`parse_circuit`] and [`parse_plan`] read back.
//! It is lossless: `parse_graph(&g.to_string()) == Ok(g)` for every graph, and
//! printing the result gives the same text.
//!
//! ```
//! let text = r#"graph "example" {
//!   %0 = input {index=0} : f32[1,2]  ; "input"
//!   %1 = const {value=f32[2] [0.5, -1.0]} : f32[2]  ; "bias"
//!   %2 = add %0, %1 : f32[1,2]
//!   %3 = quantize %2 : u4[1,2] [0, 15] q(0.25, 3)
//!   %4 = lut %3 {shift=1, base=0, tables=[[0, 1, 1, 2, 3, 5, 8, 13, 21]]} : u5[1,2] [0, 21]  ; "fib"
//!   %5 = tree_ensemble %0 {targets=1, aggregate=sum, base_values=[0.0], trees=@5.trees} : f32[1,1]
//!   return %4, %5
//! }
//!
//! @5.trees = [
//!   [x[0] <= 0.5 ? 1 : 2, leaf [0: -1.0], x[1] > 0.25 ? 3 : 4, leaf [0: 2.5], leaf [0: 1e-7]],
//!   [x[1] <= -3.0 ? 1 : 2, leaf [0: 0.1], leaf [0: 0.2]]
//! ]"#;
//! let graph = secc_ir::parse_graph(text)?;
//! secc_ir::verify_graph(&graph)?;
//! assert_eq!(graph.to_string(), text);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! - A node per line: `%N = mnemonic operands {attributes} : type`, then the node's
//!   name as a comment holding one string, `; "onnx name"`. Nodes are numbered from 0
//!   in order. Any other `;` comment is ignored, so test files can carry `; check:` lines.
//! - Attributes are `name=value`, in the op's fixed order; an attribute at its default
//!   is left out, and so is one that repeats the node's type (an input's type, a
//!   constant's or a table's quantization, a `quantize`'s parameters).
//! - Types: `f32[1,13]`; integers print bit width, shape, exact range and quantization:
//!   `u8[1,64] [0, 255] q(0.0627, 0)`, per channel `q(axis=1, [scales], [zero points])`.
//! - Floats print the fewest digits that read back to the same number (`0.1`,
//!   `1e-7`, `-0.0`, `inf`, `NaN`; a NaN reads back as the canonical NaN).
//!   Strings are quoted as Rust writes them: `\"`, `\\`, `\n`, `\r`, `\t`, `\0` and
//!   `\u{...}` for characters that do not print.
//! - A list whose inline form would be long moves to a data entry after the main
//!   block, `@name = [...]`, named after the node and attribute that first uses it;
//!   equal lists share an entry. `@name` may stand wherever a list may.
//! - `inputs %a, %b` appears before `return` only when the graph's input list is not
//!   its `input` nodes in order (which the verifier rejects).
//!
//! Parsing reads types as printed; [`crate::verify_graph`] then checks them against
//! the ops. The lowered programs' syntax is described at [`parse_circuit`] and [`parse_plan`].

mod circuit;
mod error;
mod graph;
mod lexer;
mod parser;
mod plan;
mod printer;

pub use circuit::parse_circuit;
pub use error::ParseError;
pub use graph::parse_graph;
pub use parser::Parser;
pub use plan::parse_plan;
pub use printer::Printer;

/// `s` as a string literal: Rust's own escaping (`\"`, `\\`, `\n`, `\r`, `\t`, `\0`,
/// `\u{...}` for characters that do not print), which the lexer reads back.
fn escape(s: &str) -> String {
    format!("{s:?}")
}

/// A graph digest as the text form writes it: `"sha256:"` and 64 hex digits.
pub(crate) fn print_digest(w: &mut Printer, digest: &[u8; 32]) {
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    w.string(&format!("sha256:{hex}"));
}

/// Reads what [`print_digest`] writes.
pub(crate) fn parse_digest(p: &mut Parser) -> Result<[u8; 32], ParseError> {
    let here = p.error("");
    let s = p.string()?;
    let bad =
        || ParseError { message: format!("`{s}` is not a graph digest (sha256: and 64 hex digits)"), ..here.clone() };
    let hex = s.strip_prefix("sha256:").filter(|h| h.len() == 64 && h.is_ascii()).ok_or_else(bad)?;
    let mut digest = [0u8; 32];
    for (i, byte) in digest.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(digest)
}

/// Prints one value on its own, every list inline.
pub(crate) fn print_inline(print: impl FnOnce(&mut Printer)) -> String {
    let mut w = Printer::inline();
    print(&mut w);
    w.finish()
}

#[cfg(test)]
mod tests;
