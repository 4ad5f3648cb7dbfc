//! The one text form of the IR, used by dumps, snapshots and error messages.
//!
//! ```text
//! graph "cnn" {
//!   %0 = input {index=0} : f32[1,1,8,8]
//!   %1 = const {value=#1c0ffee0} : f32[8,1,3,3]
//!   %3 = conv %0, %1, %2 {strides=[1,1], pads=[0,0,0,0], dilations=[1,1], group=1} : f32[1,8,6,6]  ; "/conv1/Conv"
//!   return %9
//! }
//! ```
//! Integer values print their bit width, exact range and quantization:
//! `u8[1,64] [0, 255] q(0.0627451, 0)`. Large constants and tables print by digest.

use crate::graph::{Graph, Node};
use crate::ops::OpSpec;
use std::fmt;

/// Displays one node as `op operands {attrs}` (no result, no type).
pub struct DisplayOp<'a>(pub &'a Node);

impl fmt::Display for DisplayOp<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        write!(f, "{}", n.op.mnemonic())?;
        for (i, v) in n.inputs.iter().enumerate() {
            write!(f, "{}{v}", if i == 0 { " " } else { ", " })?;
        }
        let attrs = Attrs(n).to_string();
        if !attrs.is_empty() {
            write!(f, " {{{attrs}}}")?;
        }
        Ok(())
    }
}

struct Attrs<'a>(&'a Node);

impl fmt::Display for Attrs<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.op.write_attrs(f)
    }
}

impl fmt::Display for Graph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "graph \"{}\" {{", self.name)?;
        for (i, n) in self.nodes.iter().enumerate() {
            write!(f, "  %{i} = {} : {}", DisplayOp(n), n.ty)?;
            if !n.name.is_empty() {
                write!(f, "  ; \"{}\"", n.name)?;
            }
            writeln!(f)?;
        }
        let outs: Vec<String> = self.outputs.iter().map(|v| v.to_string()).collect();
        writeln!(f, "  return {}", outs.join(", "))?;
        write!(f, "}}")
    }
}
