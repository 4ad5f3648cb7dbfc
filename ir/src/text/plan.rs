//! The SMPC plan's text: a header with the encoding and roles, a line per weight the
//! model owner shares, the weights' values when the plan holds them, then a line per
//! step, `%rOUT = protocol %rX, wW {attributes}  ; "label"`.
//!
//! ```
//! let text = r#"plan "dense" {graph="sha256:000000000000000000000000000000000000000000000000000000000000beef", frac_bits=18, data_owner=0, model_owner=1, receiver=0, input_shape=[1,2], output_shape=[1,1], regs=4} {
//!   w0 = weight {len=2}  ; "%1 \"fc.weight\""
//!   w1 = weight {len=1}  ; "%2 \"fc.bias\""
//!   weight_values = [[262144, -131072], [68719476736]]
//!   %r0 = share {len=2}  ; "%0 \"input\""
//!   %r1 = matmul %r0, w0, w1 {m=1, k=2, n=1}  ; "%3 \"/fc/Gemm\""
//!   %r2 = trunc %r1 {len=1, bits=18}
//!   %r3 = relu %r2 {len=1}
//!   reveal %r3 {len=1}
//! }"#;
//! let parsed = secc_ir::parse_plan(text)?;
//! assert_eq!(parsed.to_string(), text);
//! # Ok::<(), secc_ir::ParseError>(())
//! ```
//!
//! A weightless plan (every party's but the model owner's) has no `weight_values` line.

use super::{ParseError, Parser, Printer};
use crate::lowered::mpc::{
    Broadcast, ConvGeometry, ForestPlan, PairOp, Piece, Piecewise, Plan, PoolTaps, Roles, Step, StepOp, WeightSpec,
};
use std::fmt;

/// An operand of a step: a register `%rN` or a weight `wN`.
#[derive(Clone, Copy, PartialEq)]
enum Arg {
    Reg(usize),
    Weight(usize),
}

fn print_step(w: &mut Printer, op: &StepOp) {
    let (out, args): (Option<usize>, Vec<Arg>) = match op {
        StepOp::Share { out, .. } => (Some(*out), vec![]),
        StepOp::MatMul { x, w, b, out, .. } | StepOp::Conv { x, w, b, out, .. } => {
            (Some(*out), [Arg::Reg(*x), Arg::Weight(*w)].into_iter().chain(b.map(Arg::Weight)).collect())
        }
        StepOp::Trunc { x, out, .. }
        | StepOp::Relu { x, out, .. }
        | StepOp::MaxPool { x, out, .. }
        | StepOp::AvgPool { x, out, .. }
        | StepOp::Piecewise { x, out, .. }
        | StepOp::Forest { x, out, .. } => (Some(*out), vec![Arg::Reg(*x)]),
        StepOp::Pair { a, b, out, .. } | StepOp::MatMulShares { a, b, out, .. } => {
            (Some(*out), vec![Arg::Reg(*a), Arg::Reg(*b)])
        }
        StepOp::Reveal { x, .. } => (None, vec![Arg::Reg(*x)]),
        StepOp::Gather { xs, w, out, .. } => {
            (Some(*out), xs.iter().map(|&x| Arg::Reg(x)).chain(w.map(Arg::Weight)).collect())
        }
    };
    w.text("  ");
    if let Some(out) = out {
        w.text(&format!("%r{out} = "));
    }
    w.text(op.mnemonic());
    for (i, a) in args.iter().enumerate() {
        w.text(if i == 0 { " " } else { ", " });
        match a {
            Arg::Reg(r) => w.text(&format!("%r{r}")),
            Arg::Weight(k) => w.text(&format!("w{k}")),
        }
    }
    w.attrs(|w| print_step_attrs(w, op));
}

fn weight(w: &mut Printer, k: usize) {
    w.text(&format!("w{k}"));
}

fn print_taps(w: &mut Printer, taps: &PoolTaps) {
    w.attr("input_len", |w| w.display(taps.input_len));
    w.attr("taps", |w| w.list(&taps.taps, |w, t| w.list(t, |w, i| w.display(i))));
}

fn print_step_attrs(w: &mut Printer, op: &StepOp) {
    match op {
        StepOp::Share { len, .. } | StepOp::Relu { len, .. } | StepOp::Reveal { len, .. } => {
            w.attr("len", |w| w.display(len))
        }
        StepOp::MatMul { m, k, n, .. } => {
            w.attr("m", |w| w.display(m));
            w.attr("k", |w| w.display(k));
            w.attr("n", |w| w.display(n));
        }
        StepOp::Conv { geometry: g, .. } => {
            w.attr("input", |w| w.dims(&g.input));
            w.attr("kernel", |w| w.dims(&g.kernel));
            w.attr("output", |w| w.dims(&g.output));
            w.attr("strides", |w| w.dims(&g.strides));
            w.attr("pads", |w| w.dims(&g.pads));
            w.attr("dilations", |w| w.dims(&g.dilations));
            w.attr("group", |w| w.display(g.group));
        }
        StepOp::Trunc { len, bits, .. } => {
            w.attr("len", |w| w.display(len));
            w.attr("bits", |w| w.display(bits));
        }
        StepOp::MaxPool { taps, .. } => print_taps(w, taps),
        StepOp::Gather { index, .. } => w.attr("index", |w| w.list(index, |w, i| w.display(i))),
        StepOp::AvgPool { taps, divisors, .. } => {
            print_taps(w, taps);
            w.attr("divisors", |w| w.list(divisors, |w, d| w.display(d)));
        }
        StepOp::Piecewise { len, function: f, .. } => {
            w.attr("len", |w| w.display(len));
            w.attr("function", |w| w.string(&f.function));
            w.attr("breakpoints", |w| w.list(&f.breakpoints, |w, b| w.f64(*b)));
            w.attr("pieces", |w| {
                w.list(&f.pieces, |w, piece| {
                    w.record(|w| {
                        w.attr("lo", |w| w.f64(piece.lo));
                        w.attr("hi", |w| w.f64(piece.hi));
                        w.attr("scale", |w| w.f64(piece.scale));
                        w.attr("offset", |w| w.f64(piece.offset));
                        w.attr("coeffs", |w| w.list(&piece.coeffs, |w, c| w.f64(*c)));
                    })
                })
            });
            w.attr("max_error", |w| w.f64(f.max_error));
        }
        StepOp::Pair { shapes, .. } => {
            w.attr("a", |w| w.dims(&shapes.a));
            w.attr("b", |w| w.dims(&shapes.b));
            w.attr("out", |w| w.dims(&shapes.out));
        }
        StepOp::MatMulShares { batch, m, k, n, transpose_b, .. } => {
            w.attr("batch", |w| w.display(batch));
            w.attr("m", |w| w.display(m));
            w.attr("k", |w| w.display(k));
            w.attr("n", |w| w.display(n));
            w.attr("transpose_b", |w| w.display(transpose_b));
        }
        StepOp::Forest { forest: f, .. } => {
            w.attr("features", |w| w.display(f.features));
            w.attr("comparisons", |w| w.display(f.comparisons));
            w.attr("select", |w| weight(w, f.select));
            w.attr("bounds", |w| weight(w, f.bounds));
            w.attr("values", |w| weight(w, f.values));
            w.attr("base", |w| weight(w, f.base));
            w.attr("targets", |w| w.display(f.targets));
            w.attr("paths", |w| {
                w.list(&f.paths, |w, path| {
                    w.list(path, |w, (c, want)| w.text(&format!("{}{c}", if *want { "" } else { "!" })))
                })
            });
            w.attr("entries", |w| w.list(&f.entries, |w, (leaf, target)| w.text(&format!("{leaf}: {target}"))));
        }
    }
}

/// The lossless text form (see [`parse_plan`]).
impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut w = Printer::document();
        w.text("plan ");
        w.string(&self.name);
        w.text(" ");
        w.record(|w| {
            w.attr("graph", |w| super::print_digest(w, &self.graph_digest));
            w.attr("frac_bits", |w| w.display(self.frac_bits));
            w.attr("data_owner", |w| w.display(self.roles.data_owner));
            w.attr("model_owner", |w| w.display(self.roles.model_owner));
            w.attr("receiver", |w| w.display(self.roles.receiver));
            w.attr("input_shape", |w| w.dims(&self.input_shape));
            w.attr("output_shape", |w| w.dims(&self.output_shape));
            w.attr("regs", |w| w.display(self.regs));
        });
        w.text(" {\n");
        for (k, spec) in self.weights.iter().enumerate() {
            w.text(&format!("  w{k} = weight {{len={}}}", spec.len));
            w.name(&spec.name);
            w.text("\n");
        }
        if let Some(values) = &self.weight_values {
            w.set_context("weight_values");
            w.text("  weight_values = ");
            w.list(values, |w, v| w.list(v, |w, x| w.display(x)));
            w.text("\n");
        }
        for (i, step) in self.steps.iter().enumerate() {
            w.set_context(format!("s{i}"));
            print_step(&mut w, &step.op);
            w.name(&step.label);
            w.text("\n");
        }
        if let Some(g) = &self.finish {
            w.set_context("finish");
            w.text("  finish = ");
            w.string(&g.to_string());
            w.text("\n");
        }
        w.text("}");
        f.write_str(&w.finish())
    }
}

fn parse_arg(p: &mut Parser) -> Result<Arg, ParseError> {
    if p.at_value() {
        p.prefixed_value("r").map(Arg::Reg)
    } else {
        p.prefixed_word("w").map(Arg::Weight)
    }
}

fn parse_taps(p: &mut Parser) -> Result<PoolTaps, ParseError> {
    Ok(PoolTaps {
        input_len: p.attr("input_len", Parser::usize)?,
        taps: p.attr("taps", |p| p.list(|p| p.list(Parser::usize)))?,
    })
}

fn array<const N: usize>(p: &mut Parser) -> Result<[usize; N], ParseError> {
    let here = p.error("");
    let v = p.dims()?;
    v.try_into()
        .map_err(|v: Vec<usize>| ParseError { message: format!("expected {N} numbers, found {}", v.len()), ..here })
}

fn parse_piece(p: &mut Parser) -> Result<Piece, ParseError> {
    p.record(|p| {
        Ok(Piece {
            lo: p.attr("lo", Parser::f64)?,
            hi: p.attr("hi", Parser::f64)?,
            scale: p.attr("scale", Parser::f64)?,
            offset: p.attr("offset", Parser::f64)?,
            coeffs: p.attr("coeffs", |p| p.list(Parser::f64))?,
        })
    })
}

fn parse_literal(p: &mut Parser) -> Result<(u32, bool), ParseError> {
    let want = !p.eat("!");
    Ok((p.u32()?, want))
}

fn parse_entry(p: &mut Parser) -> Result<(u32, u32), ParseError> {
    let leaf = p.u32()?;
    p.expect(":")?;
    Ok((leaf, p.u32()?))
}

/// A step's attributes, given its mnemonic, output register and operands.
fn parse_step_op(
    p: &mut Parser,
    mnemonic: &str,
    out: Option<usize>,
    args: &[Arg],
) -> Result<Option<StepOp>, ParseError> {
    use Arg::{Reg, Weight};
    let len = |p: &mut Parser| p.attr("len", Parser::usize);
    let linear = match *args {
        [Reg(x), Weight(w)] => Some((x, w, None)),
        [Reg(x), Weight(w), Weight(b)] => Some((x, w, Some(b))),
        _ => None,
    };
    Ok(Some(match (mnemonic, out, args, linear) {
        ("share", Some(out), [], _) => StepOp::Share { len: len(p)?, out },
        ("matmul", Some(out), _, Some((x, w, b))) => StepOp::MatMul {
            x,
            w,
            b,
            m: p.attr("m", Parser::usize)?,
            k: p.attr("k", Parser::usize)?,
            n: p.attr("n", Parser::usize)?,
            out,
        },
        ("conv", Some(out), _, Some((x, w, b))) => StepOp::Conv {
            x,
            w,
            b,
            geometry: ConvGeometry {
                input: p.attr("input", array)?,
                kernel: p.attr("kernel", array)?,
                output: p.attr("output", array)?,
                strides: p.attr("strides", array)?,
                pads: p.attr("pads", array)?,
                dilations: p.attr("dilations", array)?,
                group: p.attr("group", Parser::usize)?,
            },
            out,
        },
        ("trunc", Some(out), &[Reg(x)], _) => {
            StepOp::Trunc { x, len: len(p)?, bits: p.attr("bits", Parser::u32)?, out }
        }
        ("relu", Some(out), &[Reg(x)], _) => StepOp::Relu { x, len: len(p)?, out },
        ("max_pool", Some(out), &[Reg(x)], _) => StepOp::MaxPool { x, taps: parse_taps(p)?, out },
        ("avg_pool", Some(out), &[Reg(x)], _) => {
            StepOp::AvgPool { x, taps: parse_taps(p)?, divisors: p.attr("divisors", |p| p.list(Parser::usize))?, out }
        }
        ("piecewise", Some(out), &[Reg(x)], _) => StepOp::Piecewise {
            x,
            len: len(p)?,
            function: Piecewise {
                function: p.attr("function", Parser::string)?,
                breakpoints: p.attr("breakpoints", |p| p.list(Parser::f64))?,
                pieces: p.attr("pieces", |p| p.list(parse_piece))?,
                max_error: p.attr("max_error", Parser::f64)?,
            },
            out,
        },
        ("forest", Some(out), &[Reg(x)], _) => StepOp::Forest {
            x,
            forest: ForestPlan {
                features: p.attr("features", Parser::usize)?,
                comparisons: p.attr("comparisons", Parser::usize)?,
                select: p.attr("select", |p| p.prefixed_word("w"))?,
                bounds: p.attr("bounds", |p| p.prefixed_word("w"))?,
                values: p.attr("values", |p| p.prefixed_word("w"))?,
                base: p.attr("base", |p| p.prefixed_word("w"))?,
                targets: p.attr("targets", Parser::usize)?,
                paths: p.attr("paths", |p| p.list(|p| p.list(parse_literal)))?,
                entries: p.attr("entries", |p| p.list(parse_entry))?,
            },
            out,
        },
        (m @ ("add" | "sub" | "mul"), Some(out), &[Reg(a), Reg(b)], _) => StepOp::Pair {
            a,
            b,
            op: match m {
                "add" => PairOp::Add,
                "sub" => PairOp::Sub,
                _ => PairOp::Mul,
            },
            shapes: Broadcast {
                a: p.attr("a", Parser::dims)?,
                b: p.attr("b", Parser::dims)?,
                out: p.attr("out", Parser::dims)?,
            },
            out,
        },
        ("matmul_shares", Some(out), &[Reg(a), Reg(b)], _) => StepOp::MatMulShares {
            a,
            b,
            batch: p.attr("batch", Parser::usize)?,
            m: p.attr("m", Parser::usize)?,
            k: p.attr("k", Parser::usize)?,
            n: p.attr("n", Parser::usize)?,
            transpose_b: p.attr("transpose_b", Parser::bool)?,
            out,
        },
        ("reveal", None, &[Reg(x)], _) => StepOp::Reveal { x, len: len(p)? },
        ("gather", Some(out), [regs @ .., last], _) => {
            let (regs, w) = match *last {
                Weight(w) => (regs, Some(w)),
                Reg(_) => (args, None),
            };
            let xs = regs.iter().map(|a| if let Reg(x) = *a { Some(x) } else { None }).collect::<Option<Vec<_>>>();
            let Some(xs) = xs.filter(|xs| !xs.is_empty()) else { return Ok(None) };
            StepOp::Gather { xs, w, index: p.attr("index", |p| p.list(Parser::i64))?, out }
        }
        _ => return Ok(None),
    }))
}

const FORMS: &str = "`%rO = share`, `%rO = matmul|conv %rX, wW[, wB]`, \
    `%rO = trunc|relu|max_pool|avg_pool|piecewise|forest %rX`, `%rO = gather %rX, ...[, wW]`, \
    `%rO = add|sub|mul|matmul_shares %rA, %rB` or `reveal %rX`";

fn parse_step(p: &mut Parser) -> Result<Step, ParseError> {
    let out = if p.at_value() {
        let r = p.prefixed_value("r")?;
        p.expect("=")?;
        Some(r)
    } else {
        None
    };
    let here = p.error("");
    let mnemonic = p.ident()?;
    let mut args = Vec::new();
    if p.at_value() {
        args.push(parse_arg(p)?);
        while p.eat(",") {
            args.push(parse_arg(p)?);
        }
    }
    p.open_attrs();
    let Some(op) = parse_step_op(p, &mnemonic, out, &args)? else {
        return Err(ParseError { message: format!("not a step: expected {FORMS}"), ..here });
    };
    p.close_attrs()?;
    Ok(Step { label: p.line_name(), op })
}

/// Reads an SMPC plan from its text form (the output of `Display`):
///
/// ```text
/// plan "NAME" {graph="sha256:HEX", frac_bits, data_owner, model_owner, receiver, input_shape, output_shape, regs} {
///   wK = weight {len=N}  ; "name"             (one line per weight, in order)
///   weight_values = [[...], ...]              (the model owner's plan only)
///   %rO = protocol %rX, wW, ... {attributes}  ; "label"
///   reveal %rX {len=N}
///   finish = "graph ..."                      (the receiver's part, when there is one)
/// }
/// ```
pub fn parse_plan(text: &str) -> Result<Plan, ParseError> {
    let mut p = Parser::new(text)?;
    p.keyword("plan")?;
    let name = p.string()?;
    let (graph_digest, frac_bits, roles, input_shape, output_shape, regs) = p.record(|p| {
        Ok((
            p.attr("graph", super::parse_digest)?,
            p.attr("frac_bits", Parser::u32)?,
            Roles {
                data_owner: p.attr("data_owner", Parser::usize)?,
                model_owner: p.attr("model_owner", Parser::usize)?,
                receiver: p.attr("receiver", Parser::usize)?,
            },
            p.attr("input_shape", Parser::dims)?,
            p.attr("output_shape", Parser::dims)?,
            p.attr("regs", Parser::usize)?,
        ))
    })?;
    p.expect("{")?;
    let mut weights = Vec::new();
    while !p.at_value() && !p.at("}") && !p.is_keyword("weight_values") && !p.is_keyword("reveal") {
        let here = p.error("");
        if p.prefixed_word("w")? != weights.len() {
            return Err(ParseError {
                message: format!("expected `w{}`: weights are numbered in order", weights.len()),
                ..here
            });
        }
        p.expect("=")?;
        p.keyword("weight")?;
        let len = p.record(|p| p.attr("len", Parser::usize))?;
        weights.push(WeightSpec { name: p.line_name(), len });
    }
    let weight_values = if p.is_keyword("weight_values") {
        p.keyword("weight_values")?;
        p.expect("=")?;
        Some(p.list(|p| p.list(Parser::i64))?)
    } else {
        None
    };
    let mut steps = Vec::new();
    while !p.at("}") && !p.is_keyword("finish") {
        steps.push(parse_step(&mut p)?);
    }
    let finish = if p.is_keyword("finish") {
        p.keyword("finish")?;
        p.expect("=")?;
        let here = p.error("");
        let text = p.string()?;
        Some(super::parse_graph(&text).map_err(|e| ParseError { message: format!("the finish graph: {e}"), ..here })?)
    } else {
        None
    };
    p.expect("}")?;
    p.finish()?;
    Ok(Plan {
        name,
        graph_digest,
        frac_bits,
        roles,
        input_shape,
        output_shape,
        weights,
        weight_values,
        regs,
        steps,
        finish,
    })
}
