//! The verifier. Invariants checked, all reported at once:
//!
//! 1. every operand is defined by an earlier node (evaluation order is node order);
//! 2. every node's stored type equals what its op infers from its operands, so integer
//!    ranges and bit widths are exactly those of the range analysis;
//! 3. `inputs` lists exactly the `input` nodes, and `input {index=i}` is the i-th;
//! 4. there is at least one output and every output is a defined value.
//!
//! Before any of these, every stored type must be sound (at most `MAX_ELEMENTS`
//! elements, integer ranges with `lo ≤ hi`): the type rules compute on operand types,
//! and a graph read from a file may be crafted.

use crate::entity::ValueId;
use crate::error::{IrError, VerifyError};
use crate::graph::Graph;
use crate::ops::{Op, OpSpec};

/// Most elements of one value (executors index elements with `u32`).
const MAX_ELEMENTS: usize = u32::MAX as usize;

/// Checks every invariant of `graph`; lists all violations.
pub fn verify_graph(graph: &Graph) -> Result<(), IrError> {
    let unsound = unsound_types(graph);
    if !unsound.is_empty() {
        return Err(IrError::Verify { graph: graph.name.clone(), errors: unsound });
    }
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
        errors.push(VerifyError {
            value: ValueId(0),
            name: String::new(),
            message: "input list does not match the input nodes".into(),
        });
    }
    if graph.outputs.is_empty() {
        errors.push(VerifyError { value: ValueId(0), name: String::new(), message: "graph has no outputs".into() });
    }
    for v in &graph.outputs {
        if v.index() >= graph.nodes.len() {
            errors.push(VerifyError {
                value: *v,
                name: String::new(),
                message: "output is not a defined value".into(),
            });
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(IrError::Verify { graph: graph.name.clone(), errors })
    }
}

/// Stored types the type rules cannot compute on.
fn unsound_types(graph: &Graph) -> Vec<VerifyError> {
    let mut errors = Vec::new();
    for (i, n) in graph.nodes.iter().enumerate() {
        let mut fail = |message| errors.push(VerifyError { value: ValueId(i as u32), name: n.name.clone(), message });
        let numel = n.ty.shape.0.iter().try_fold(1usize, |p, &d| p.checked_mul(d).filter(|&p| p <= MAX_ELEMENTS));
        if numel.is_none() {
            fail(format!("shape {:?} has more than {MAX_ELEMENTS} elements", n.ty.shape.0));
        }
        if let Some(t) = n.ty.as_int().filter(|t| t.lo > t.hi) {
            fail(format!("integer range [{}, {}] is empty", t.lo, t.hi));
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{Input, Unary, UnaryKind};
    use crate::{Shape, TensorType, ValueId};

    #[test]
    fn reports_every_broken_invariant() {
        let mut g = Graph::new("t");
        let ty = TensorType::f32(Shape(vec![1, 4]));
        let x = g.push(Op::Input(Input { index: 0, ty: ty.clone() }), vec![], "x").unwrap();
        let y = g.push(Op::Unary(Unary { kind: UnaryKind::Relu }), vec![x], "relu").unwrap();
        g.outputs.push(y);
        assert!(verify_graph(&g).is_ok());
        g.nodes[1].ty = TensorType::f32(Shape(vec![4]));
        g.nodes[1].inputs = vec![ValueId(1)];
        g.outputs.push(ValueId(7));
        let Err(IrError::Verify { errors, .. }) = verify_graph(&g) else { panic!("must fail") };
        let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(text.len(), 2, "{text:?}");
        assert!(text[0].starts_with("%1 (\"relu\"): operand %1 is not defined before its use"), "{text:?}");
        assert!(text[1].contains("%7: output is not a defined value"), "{text:?}");
    }

    /// What a crafted `model.secc` may hold: each is an error, never an overflow or a panic.
    #[test]
    fn crafted_graphs_are_errors() {
        use crate::ops::{Const, Conv, Lut, MatMul};
        use crate::Tensor;
        let mut g = Graph::new("t");
        let ty = TensorType::int(Shape(vec![1, 2]), -128, 127, None);
        let x = g.push(Op::Input(Input { index: 0, ty }), vec![], "x").unwrap();
        let big = Tensor::I64(ndarray::array![[i64::MAX], [1]].into_dyn());
        let w = g.push(Op::Const(Const { value: big, quant: None }), vec![], "w").unwrap();
        let err = g.push(Op::MatMul(MatMul { x_zp: 0 }), vec![x, w], "mm").unwrap_err().to_string();
        assert!(err.contains("overflows 64 bits"), "{err}");
        let err = g.push(Op::MatMul(MatMul { x_zp: i64::MIN }), vec![x, w], "mm").unwrap_err().to_string();
        assert!(err.contains("overflows 64 bits"), "{err}");
        let lut = |shift, tables| Op::Lut(Lut { shift, base: i64::MIN, tables, table_of: vec![], quant: None });
        assert!(g.push(lut(64, vec![vec![1, 2]]), vec![x], "t").is_err());
        assert!(g.push(lut(0, vec![vec![]]), vec![x], "t").is_err());
        assert!(g.push(lut(62, vec![vec![1, 2]]), vec![x], "t").is_ok());
        let conv = Conv { strides: vec![0, 1], pads: vec![usize::MAX; 4], dilations: vec![1, 1], group: 1, x_zp: 0 };
        assert!(g.push(Op::Conv(conv), vec![x, w], "c").is_err());
        g.outputs.push(x);
        g.nodes[0].ty = TensorType::int(Shape(vec![usize::MAX, 2]), 5, 4, None);
        let err = verify_graph(&g).unwrap_err().to_string();
        assert!(err.contains("elements") && err.contains("integer range [5, 4] is empty"), "{err}");
    }

    #[test]
    fn stale_types_are_caught() {
        let mut g = Graph::new("t");
        let x = g.push(Op::Input(Input { index: 0, ty: TensorType::f32(Shape(vec![2])) }), vec![], "x").unwrap();
        let y = g.push(Op::Unary(Unary { kind: UnaryKind::Tanh }), vec![x], "tanh").unwrap();
        g.outputs.push(y);
        g.nodes[1].ty = TensorType::f32(Shape(vec![3]));
        let err = verify_graph(&g).unwrap_err().to_string();
        assert!(err.contains("type f32[3] differs from the inferred f32[2]"), "{err}");
    }
}
