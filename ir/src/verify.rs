//! The verifier. Invariants checked, all reported at once:
//!
//! 1. every operand is defined by an earlier node (evaluation order is node order);
//! 2. every node's stored type equals what its op infers from its operands, so integer
//!    ranges and bit widths are exactly those of the range analysis;
//! 3. `inputs` lists exactly the `input` nodes, and `input {index=i}` is the i-th;
//! 4. there is at least one output and every output is a defined value.

use crate::entity::ValueId;
use crate::error::{IrError, VerifyError};
use crate::graph::Graph;
use crate::ops::{Op, OpSpec};

/// Checks every invariant of `graph`; lists all violations.
pub fn verify_graph(graph: &Graph) -> Result<(), IrError> {
    let mut errors = Vec::new();
    let mut fail = |i: usize, message: String| {
        errors.push(VerifyError { value: ValueId(i as u32), name: graph.nodes[i].name.clone(), message })
    };
    let mut inputs = Vec::new();
    for (i, n) in graph.nodes.iter().enumerate() {
        if let Some(v) = n.inputs.iter().find(|v| v.index() >= i) {
            fail(i, format!("operand {v} is not defined before its use"));
            continue;
        }
        match n.op.infer(&graph.operands(&n.inputs)) {
            Ok(ty) if ty == n.ty => {}
            Ok(ty) => fail(i, format!("type {} differs from the inferred {ty}", n.ty)),
            Err(m) => fail(i, format!("{}: {m}", n.op.mnemonic())),
        }
        if let Op::Input(inp) = &n.op {
            if inp.index != inputs.len() {
                fail(i, format!("input index {} out of order (expected {})", inp.index, inputs.len()));
            }
            inputs.push(ValueId(i as u32));
        }
    }
    if inputs != graph.inputs {
        errors.push(VerifyError { value: ValueId(0), name: String::new(), message: "input list does not match the input nodes".into() });
    }
    if graph.outputs.is_empty() {
        errors.push(VerifyError { value: ValueId(0), name: String::new(), message: "graph has no outputs".into() });
    }
    for v in &graph.outputs {
        if v.index() >= graph.nodes.len() {
            errors.push(VerifyError { value: *v, name: String::new(), message: "output is not a defined value".into() });
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(IrError::Verify { graph: graph.name.clone(), errors })
    }
}
