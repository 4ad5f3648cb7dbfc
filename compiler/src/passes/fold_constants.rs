//! `fold_constants`: a node whose operands are all constants becomes a constant
//! (tract leaves some, e.g. Gemm's `beta · C` with `beta = 1`).

use super::Rebuild;
use crate::CompileError;
use secc_ir::{Graph, OpSpec, Tensor};

/// Evaluates every node whose operands are all constants. Sources (inputs and
/// constants) have no operands and stay.
pub fn fold_constants(graph: &Graph) -> Result<Graph, CompileError> {
    let mut r = Rebuild::new(graph);
    for (i, node) in graph.nodes.iter().enumerate() {
        let inputs: Vec<_> = node.inputs.iter().map(|&v| r.get(v)).collect();
        let consts: Option<Vec<&Tensor>> = inputs.iter().map(|&v| r.new.const_value(v)).collect();
        let v = match consts {
            Some(args) if !args.is_empty() => {
                let value = node.op.eval(&args);
                r.new.push_const(value, None, node.name.clone())
            }
            _ => r.new.push(node.op.clone(), inputs, node.name.clone())?,
        };
        r.map[i] = Some(v);
    }
    Ok(r.finish(graph))
}
