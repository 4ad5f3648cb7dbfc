//! The graph: nodes in evaluation order, each defining one value.
//!
//! A graph is plain data. Passes rebuild it (a [`Graph`] is cheap to clone) and call
//! [`Graph::compact`] after rewriting, which drops nodes no output depends on and
//! renumbers the rest densely in topological order, so dumps read `%0, %1, ...`.

use crate::entity::ValueId;
use crate::ops::{Const, Op, OpSpec, Operand};
use crate::tensor::Tensor;
use crate::types::{Quant, TensorType};
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::Dfs;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A node: an op applied to earlier values, defining the value of the same number.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Node {
    /// The operation.
    pub op: Op,
    /// Operands, all defined earlier.
    pub inputs: Vec<ValueId>,
    /// The type of the value this node defines.
    pub ty: TensorType,
    /// Where the node came from (the ONNX node name), for messages.
    pub name: String,
}

/// A computation graph.
#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize)]
pub struct Graph {
    /// Model name.
    pub name: String,
    /// Nodes in evaluation order; node `i` defines value `%i`.
    pub nodes: Vec<Node>,
    /// Graph inputs, in order.
    pub inputs: Vec<ValueId>,
    /// Graph outputs, in order.
    pub outputs: Vec<ValueId>,
}

impl Graph {
    /// An empty graph.
    pub fn new(name: impl Into<String>) -> Self {
        Graph { name: name.into(), ..Default::default() }
    }

    /// The node defining `v`.
    pub fn node(&self, v: ValueId) -> &Node {
        &self.nodes[v.index()]
    }

    /// The type of `v`.
    pub fn ty(&self, v: ValueId) -> &TensorType {
        &self.node(v).ty
    }

    /// The constant value of `v`, if a `const` defines it.
    pub fn const_value(&self, v: ValueId) -> Option<&Tensor> {
        if let Op::Const(c) = &self.node(v).op {
            Some(&c.value)
        } else {
            None
        }
    }

    /// The operands of node `v` as `infer` sees them.
    pub fn operands(&self, inputs: &[ValueId]) -> Vec<Operand<'_>> {
        inputs.iter().map(|&i| Operand { ty: self.ty(i), value: self.const_value(i) }).collect()
    }

    /// Appends a node, inferring its type. Errors name the op and the node.
    pub fn push(&mut self, op: Op, inputs: Vec<ValueId>, name: impl Into<String>) -> Result<ValueId, crate::IrError> {
        let name = name.into();
        let id = ValueId(self.nodes.len() as u32);
        if let Some(bad) = inputs.iter().find(|i| i.index() >= self.nodes.len()) {
            return Err(crate::IrError::Build {
                value: id,
                name,
                message: format!("operand {bad} is not defined yet"),
            });
        }
        let ty = op.infer(&self.operands(&inputs)).map_err(|m| crate::IrError::Build {
            value: id,
            name: name.clone(),
            message: format!("{}: {m}", op.mnemonic()),
        })?;
        if let Op::Input(_) = op {
            self.inputs.push(id);
        }
        self.nodes.push(Node { op, inputs, ty, name });
        Ok(id)
    }

    /// Appends a constant.
    pub fn push_const(&mut self, value: Tensor, quant: Option<Quant>, name: impl Into<String>) -> ValueId {
        self.push(Op::Const(Const { value, quant }), vec![], name).expect("constants always type-check")
    }

    /// SHA-256 of the graph's encoding: lowered programs carry the digest of the graph
    /// they were lowered from, so a program cannot be paired with another model.
    pub fn digest(&self) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        Sha256::digest(bincode::serialize(self).expect("graphs serialize")).into()
    }

    /// The nodes that use each value.
    pub fn users(&self) -> Vec<Vec<ValueId>> {
        let mut users = vec![Vec::new(); self.nodes.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            for &v in &n.inputs {
                users[v.index()].push(ValueId(i as u32));
            }
        }
        users
    }

    /// Drops nodes that no output depends on (inputs are always kept) and renumbers
    /// the rest densely. Operands always precede their users ([`Graph::push`] enforces
    /// it), so the kept nodes stay in a valid evaluation order.
    pub fn compact(&mut self) {
        let mut g = DiGraph::<(), ()>::new();
        let idx: Vec<NodeIndex> = (0..self.nodes.len()).map(|_| g.add_node(())).collect();
        for (i, n) in self.nodes.iter().enumerate() {
            for v in &n.inputs {
                g.add_edge(idx[i], idx[v.index()], ());
            }
        }
        let mut live = vec![false; self.nodes.len()];
        for root in self.outputs.iter().chain(&self.inputs) {
            let mut dfs = Dfs::new(&g, idx[root.index()]);
            while let Some(n) = dfs.next(&g) {
                live[n.index()] = true;
            }
        }
        let order: Vec<usize> = (0..self.nodes.len()).filter(|&i| live[i]).collect();
        let remap: HashMap<usize, ValueId> =
            order.iter().enumerate().map(|(new, &old)| (old, ValueId(new as u32))).collect();
        let old = std::mem::take(&mut self.nodes);
        let mut old: Vec<Option<Node>> = old.into_iter().map(Some).collect();
        for &i in &order {
            let mut n = old[i].take().expect("each node once");
            n.inputs.iter_mut().for_each(|v| *v = remap[&v.index()]);
            self.nodes.push(n);
        }
        self.inputs.iter_mut().for_each(|v| *v = remap[&v.index()]);
        self.outputs.iter_mut().for_each(|v| *v = remap[&v.index()]);
    }
}
