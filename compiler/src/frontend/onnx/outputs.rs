//! Which of a graph's outputs secc computes, and the graph cut down to them.
//!
//! secc computes float tensors privately. A classifier's other outputs carry nothing
//! more: its label is the argmax of its probabilities and a `ZipMap` is the same
//! probabilities as a list of maps, so whoever receives the probabilities (after
//! decryption or reveal) derives them. An output a `ZipMap` writes therefore stands
//! for the `ZipMap`'s input; an output of another type (a label) cannot be chosen.
//! The graph is pruned to the cone of the chosen outputs before anything analyses it,
//! so the nodes that only serve the others (`ArgMax`, `ArrayFeatureExtractor`, `Cast`
//! to integers, `ZipMap`) are never loaded.

use crate::CompileError;
use std::collections::HashSet;
use tract_onnx::pb::{GraphProto, ValueInfoProto};

/// The outputs an import computes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputChoice {
    /// The graph outputs computed, as the file names them.
    pub chosen: Vec<String>,
    /// The graph outputs left out.
    pub left_out: Vec<String>,
    /// Whether secc picked `chosen` (no `--output` was given).
    pub defaulted: bool,
}

impl OutputChoice {
    /// What to tell the user when secc picked among several outputs: which, what was
    /// left out, and how to choose.
    pub fn note(&self) -> Option<String> {
        (self.defaulted && !self.left_out.is_empty()).then(|| {
            format!(
                "note: computing output {} (left out: {}; the receiver derives labels and maps from the \
                 probabilities); choose with --output NAME",
                quoted(&self.chosen),
                quoted(&self.left_out)
            )
        })
    }
}

fn quoted(names: &[String]) -> String {
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

/// An output as secc sees it.
enum Kind {
    /// A float tensor: computed as is.
    Float,
    /// A ZipMap's result: its input (a float tensor) is computed.
    ZipMap(String),
    /// Anything else (labels): derived by the receiver, never computed.
    Derived(String),
}

fn kind(graph: &GraphProto, output: &ValueInfoProto) -> Kind {
    use tract_onnx::pb::type_proto::Value;
    if let Some(z) = graph.node.iter().find(|n| n.op_type == "ZipMap" && n.output.contains(&output.name)) {
        return Kind::ZipMap(z.input.first().cloned().unwrap_or_default());
    }
    match output.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        // TensorProto.DataType 1 = FLOAT; no type: let the analysis tell.
        Some(Value::TensorType(t)) if t.elem_type == 1 || t.elem_type == 0 => Kind::Float,
        None => Kind::Float,
        Some(Value::TensorType(t)) => Kind::Derived(format!("a tensor of element type {}", t.elem_type)),
    }
}

/// Chooses the outputs (`requested`, or every float output when empty), rewrites
/// `graph` to compute exactly those (a ZipMap's output replaced by its input) and
/// drops every node outside their cone.
pub(super) fn select_outputs(graph: &mut GraphProto, requested: &[String]) -> Result<OutputChoice, CompileError> {
    let names: Vec<String> = graph.output.iter().map(|o| o.name.clone()).collect();
    let kinds: Vec<Kind> = graph.output.iter().map(|o| kind(graph, o)).collect();
    let computable = |k: &Kind| !matches!(k, Kind::Derived(_));
    let defaulted = requested.is_empty();
    let chosen: Vec<usize> = if defaulted {
        let c: Vec<usize> = (0..names.len()).filter(|&i| computable(&kinds[i])).collect();
        if c.is_empty() {
            return Err(CompileError::Output(format!("none of the outputs ({}) is a float tensor", quoted(&names))));
        }
        c
    } else {
        let mut c = Vec::new();
        for r in requested {
            let Some(i) = names.iter().position(|n| n == r) else {
                return Err(CompileError::Output(format!("no output `{r}`; the outputs are {}", quoted(&names))));
            };
            if let Kind::Derived(what) = &kinds[i] {
                let floats: Vec<String> =
                    (0..names.len()).filter(|&j| computable(&kinds[j])).map(|j| names[j].clone()).collect();
                return Err(CompileError::Output(format!(
                    "output `{r}` is {what}: secc computes float tensors, and a classifier's label is derived \
                     from its probabilities by whoever receives them; choose among {}",
                    quoted(&floats)
                )));
            }
            if !c.contains(&i) {
                c.push(i);
            }
        }
        c
    };
    let choice = OutputChoice {
        chosen: chosen.iter().map(|&i| names[i].clone()).collect(),
        left_out: (0..names.len()).filter(|i| !chosen.contains(i)).map(|i| names[i].clone()).collect(),
        defaulted,
    };
    graph.output = chosen
        .iter()
        .map(|&i| match &kinds[i] {
            Kind::ZipMap(input) => ValueInfoProto { name: input.clone(), ..Default::default() },
            _ => graph.output[i].clone(),
        })
        .collect();
    prune(graph);
    Ok(choice)
}

/// Keeps the nodes the graph outputs depend on, in their order.
fn prune(graph: &mut GraphProto) {
    let mut needed: HashSet<String> = graph.output.iter().map(|o| o.name.clone()).collect();
    let mut keep = vec![false; graph.node.len()];
    for (i, node) in graph.node.iter().enumerate().rev() {
        if node.output.iter().any(|o| needed.contains(o)) {
            keep[i] = true;
            needed.extend(node.input.iter().filter(|n| !n.is_empty()).cloned());
        }
    }
    let mut k = keep.into_iter();
    graph.node.retain(|_| k.next().expect("one flag per node"));
}
