//! The clear interpreter: evaluates nodes in order with each op's own semantics
//! ([`crate::OpSpec::eval`]). Running the float IR gives the float reference; running
//! the quantized IR is the integer-exact simulation. It belongs to the IR, as
//! Cranelift's interpreter does: the compiler's passes evaluate subgraphs with it
//! (calibration, table building, polynomial fitting) and every backend is held to it.

use crate::graph::Graph;
use crate::ops::{Op, OpSpec};
use crate::tensor::Tensor;
use crate::types::Shape;
use crate::ValueId;
use std::collections::HashMap;

/// Checks `inputs` against the graph's declared inputs.
pub fn check_inputs(graph: &Graph, inputs: &[Tensor]) -> Result<(), InputError> {
    if inputs.len() != graph.inputs.len() {
        return Err(InputError::InputCount { expected: graph.inputs.len(), got: inputs.len() });
    }
    for (index, (v, t)) in graph.inputs.iter().zip(inputs).enumerate() {
        let ty = graph.ty(*v);
        if t.shape() != ty.shape {
            return Err(InputError::InputShape { index, expected: ty.shape.clone(), got: t.shape() });
        }
        if ty.is_float() != t.as_f32().is_some() {
            let expected = if ty.is_float() { "float" } else { "integer" };
            return Err(InputError::InputType { index, expected });
        }
    }
    Ok(())
}

/// Evaluates every node; returns the value of each (indexed by [`ValueId`]).
pub fn eval_all(graph: &Graph, inputs: &[Tensor]) -> Result<Vec<Tensor>, InputError> {
    check_inputs(graph, inputs)?;
    let mut values: Vec<Tensor> = Vec::with_capacity(graph.nodes.len());
    for node in &graph.nodes {
        let v = match &node.op {
            Op::Input(i) => inputs[i.index].clone(),
            op => {
                let args: Vec<&Tensor> = node.inputs.iter().map(|v| &values[v.index()]).collect();
                op.eval(&args)
            }
        };
        values.push(v);
    }
    Ok(values)
}

/// Runs the graph and returns its outputs.
pub fn run_graph(graph: &Graph, inputs: &[Tensor]) -> Result<Vec<Tensor>, InputError> {
    let values = eval_all(graph, inputs)?;
    Ok(graph.outputs.iter().map(|v| values[v.index()].clone()).collect())
}

/// Evaluates the nodes `order` (in that order) given values for the ones they read
/// from outside; constants among the operands are evaluated on the way. Returns the
/// value of the last node. The quantizer uses it to tabulate fused elementwise chains.
pub fn eval_nodes(graph: &Graph, order: &[ValueId], mut bound: HashMap<ValueId, Tensor>) -> Tensor {
    for &v in order {
        let node = graph.node(v);
        for &i in &node.inputs {
            bound.entry(i).or_insert_with(|| {
                graph.const_value(i).expect("operands outside the region are bound or constant").clone()
            });
        }
        let args: Vec<&Tensor> = node.inputs.iter().map(|i| &bound[i]).collect();
        let value = node.op.eval(&args);
        bound.insert(v, value);
    }
    bound.remove(order.last().expect("non-empty region")).expect("evaluated")
}

/// Inputs that do not fit the graph: problems with what the caller passed in, never internal bugs.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
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
