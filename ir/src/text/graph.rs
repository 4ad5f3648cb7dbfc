//! The graph's text: a `graph "name" { ... }` block of node lines, then data entries.

use super::{ParseError, Parser, Printer};
use crate::entity::ValueId;
use crate::graph::{Graph, Node};
use crate::ops::{Op, OpSpec};
use crate::types::TensorType;
use std::fmt;

/// The `input` nodes in order: what a graph's input list is unless it is broken.
fn input_nodes(g: &Graph) -> Vec<ValueId> {
    let inputs = g.nodes.iter().enumerate().filter(|(_, n)| matches!(n.op, Op::Input(_)));
    inputs.map(|(i, _)| ValueId(i as u32)).collect()
}

fn print_values(w: &mut Printer, keyword: &str, values: &[ValueId]) {
    w.text("  ");
    w.text(keyword);
    for (i, v) in values.iter().enumerate() {
        w.text(if i == 0 { " " } else { ", " });
        w.display(v);
    }
    w.text("\n");
}

/// The lossless text form (see [`crate::text`]).
impl fmt::Display for Graph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut w = Printer::document();
        w.text("graph ");
        w.string(&self.name);
        w.text(" {\n");
        for (i, n) in self.nodes.iter().enumerate() {
            w.set_context(i.to_string());
            w.text(&format!("  %{i} = {}", n.op.mnemonic()));
            for (k, v) in n.inputs.iter().enumerate() {
                w.text(if k == 0 { " " } else { ", " });
                w.display(v);
            }
            w.set_node_type(Some(n.ty.clone()));
            w.attrs(|w| n.op.print_attrs(w));
            w.text(" : ");
            w.field("type");
            n.ty.print(&mut w);
            w.name(&n.name);
            w.text("\n");
        }
        if self.inputs != input_nodes(self) {
            print_values(&mut w, "inputs", &self.inputs);
        }
        print_values(&mut w, "return", &self.outputs);
        w.text("}");
        f.write_str(&w.finish())
    }
}

fn parse_values(p: &mut Parser) -> Result<Vec<ValueId>, ParseError> {
    let mut values = Vec::new();
    if p.at_value() {
        values.push(p.value()?);
        while p.eat(",") {
            values.push(p.value()?);
        }
    }
    Ok(values)
}

/// `%N = mnemonic operands {attributes} : type  ; "name"`. The type is read before
/// the attributes, which may default to what it says.
fn parse_node(p: &mut Parser, index: usize) -> Result<Node, ParseError> {
    let number = p.error(format!("expected `%{index}`: nodes are numbered from 0 in order"));
    if p.value()?.index() != index {
        return Err(number);
    }
    p.expect("=")?;
    let unknown = p.error("");
    let mnemonic = p.ident()?;
    let inputs = parse_values(p)?;
    let attrs = p.position();
    if p.at("{") {
        p.skip_braces();
    }
    let colon = p.position();
    p.expect(":")?;
    let ty = TensorType::parse(p)?;
    let name = p.line_name();
    let end = p.position();
    p.seek(attrs);
    p.set_node_type(Some(ty.clone()));
    p.open_attrs();
    let op = match Op::parse(&mnemonic, p) {
        Some(op) => op?,
        None => return Err(ParseError { message: format!("unknown op `{mnemonic}`"), ..unknown }),
    };
    p.close_attrs()?;
    if p.position() != colon {
        return Err(p.expected("`:`"));
    }
    p.seek(end);
    Ok(Node { op, inputs, ty, name })
}

/// Reads a graph from its text form (the output of `Display`). The types are taken
/// as written: run [`crate::verify_graph`] to check them.
pub fn parse_graph(text: &str) -> Result<Graph, ParseError> {
    let mut p = Parser::new(text)?;
    p.keyword("graph")?;
    let mut g = Graph::new(p.string()?);
    p.expect("{")?;
    while p.at_value() {
        let node = parse_node(&mut p, g.nodes.len())?;
        g.nodes.push(node);
    }
    let explicit = p.is_keyword("inputs");
    g.inputs = if explicit {
        p.keyword("inputs")?;
        parse_values(&mut p)?
    } else {
        input_nodes(&g)
    };
    if !p.is_keyword("return") {
        return Err(p.expected(if explicit { "`return`" } else { "a node `%N = ...`, `inputs` or `return`" }));
    }
    p.keyword("return")?;
    g.outputs = parse_values(&mut p)?;
    p.expect("}")?;
    p.finish()?;
    Ok(g)
}
