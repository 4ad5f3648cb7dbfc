//! Round trips of every op, type and step; every error with its position; no panic
//! on truncated or garbled text.

use super::*;
use crate::lowered::fhe::{catalog, Circuit, CircuitStats, FheLut, ParamSet};
use crate::lowered::mpc::{
    Broadcast, ConvGeometry, ForestPlan, PairOp, Piece, Piecewise, Plan, PoolTaps, Roles, Step, StepOp, WeightSpec,
};
use crate::ops::*;
use crate::{verify_graph, Graph, Op, Quant, Shape, Tensor, TensorType, ValueId};
use ndarray::{ArrayD, IxDyn};

fn f32s(shape: &[usize], f: impl Fn(usize) -> f32) -> Tensor {
    let n = shape.iter().product();
    Tensor::F32(ArrayD::from_shape_vec(IxDyn(shape), (0..n).map(f).collect()).unwrap())
}

fn i64s(shape: &[usize], f: impl Fn(usize) -> i64) -> Tensor {
    let n = shape.iter().product();
    Tensor::I64(ArrayD::from_shape_vec(IxDyn(shape), (0..n).map(f).collect()).unwrap())
}

fn window() -> Window {
    Window { kernel: vec![2, 2], strides: vec![2, 2], pads: vec![0, 1, 0, 1], ceil_mode: false }
}

fn forest() -> TreeEnsemble {
    let branch =
        |feature, threshold, mode, t, f| TreeNode::Branch { feature, threshold, mode, true_child: t, false_child: f };
    let leaf = |w: &[(usize, f64)]| TreeNode::Leaf { weights: w.to_vec() };
    TreeEnsemble {
        trees: vec![
            Tree {
                nodes: vec![
                    branch(0, 0.5, BranchMode::Leq, 1, 2),
                    leaf(&[(0, -1.25), (1, 0.1)]),
                    branch(1, -3e-9, BranchMode::Gt, 3, 4),
                    leaf(&[]),
                    leaf(&[(1, f64::MAX)]),
                ],
            },
            Tree {
                nodes: vec![branch(1, f64::NEG_INFINITY, BranchMode::Lt, 1, 2), leaf(&[(0, 2.0)]), leaf(&[(1, -0.0)])],
            },
            Tree {
                nodes: vec![
                    branch(0, 1.0, BranchMode::Gte, 1, 2),
                    branch(1, 2.0, BranchMode::Eq, 3, 4),
                    branch(0, 0.3, BranchMode::Neq, 5, 6),
                    leaf(&[(0, 1.0)]),
                    leaf(&[(0, 2.0)]),
                    leaf(&[(0, 3.0)]),
                    leaf(&[(0, 4.0)]),
                ],
            },
        ],
        n_targets: 2,
        base_values: vec![0.5, 1e300],
        aggregate: Aggregate::Average,
    }
}

/// A float graph with every float op.
fn float_graph() -> Graph {
    let mut g = Graph::new("every float op: \"quoted\", ünïcode\n");
    let ty = TensorType::f32(Shape(vec![1, 2, 4, 4]));
    let x = g.push(Op::Input(Input { index: 0, ty }), vec![], "input").unwrap();
    let w = g.push_const(f32s(&[3, 2, 3, 3], |i| i as f32 * 0.1 - 1.0), None, "conv.weight");
    let b = g.push_const(f32s(&[3], |i| [-0.0, 1.5, f32::MIN_POSITIVE][i]), None, "conv.bias");
    let conv = Conv { strides: vec![1, 1], pads: vec![1, 1, 1, 1], dilations: vec![1, 1], group: 1, x_zp: 0 };
    let mut v = g.push(Op::Conv(conv), vec![x, w, b], "/conv/Conv").unwrap();
    for kind in UnaryKind::ALL {
        v = g.push(Op::Unary(Unary { kind }), vec![v], kind.mnemonic()).unwrap();
    }
    let c = g.push_const(f32s(&[1], |_| 3.0), None, "");
    for kind in BinaryKind::ALL {
        v = g.push(Op::Binary(Binary { kind }), vec![v, c], "").unwrap();
    }
    let m = g.push(Op::MaxPool(MaxPool { window: window() }), vec![v], "max").unwrap();
    let a = g.push(Op::AvgPool(AvgPool { window: window(), count_include_pad: false }), vec![v], "avg").unwrap();
    let s = g.push(Op::Binary(Binary { kind: BinaryKind::Add }), vec![m, a], "").unwrap();
    let r = g.push(Op::Reshape(Reshape { shape: Shape(vec![1, 18]) }), vec![s], "flatten").unwrap();
    let sum = g.push(Op::Reduce(Reduce { kind: ReduceKind::Sum, axes: vec![1], x_zp: 0 }), vec![r], "sum").unwrap();
    let max = g.push(Op::Reduce(Reduce { kind: ReduceKind::Max, axes: vec![0, 1], x_zp: 0 }), vec![r], "").unwrap();
    let index = (0..18).rev().chain([-1, 18, 19, -2]).collect();
    let cat = Gather { shape: Shape(vec![1, 22]), index, values: vec![0.0, -2.5] };
    let r = g.push(Op::Gather(cat), vec![r, sum, max], "cat").unwrap();
    let r = g
        .push(Op::Gather(Gather { shape: Shape(vec![1, 18]), index: (0..18).collect(), values: vec![] }), vec![r], "")
        .unwrap();
    let w = g.push_const(f32s(&[18, 2], |i| 1.0 / (i as f32 + 1.0)), None, "fc.weight");
    let y = g.push(Op::MatMul(MatMul { x_zp: 0 }), vec![r, w], "fc").unwrap();
    let t = g.push(Op::TreeEnsemble(forest()), vec![y], "TreeEnsembleRegressor").unwrap();
    let sq = g.push(Op::Reshape(Reshape { shape: Shape(vec![1, 3, 2, 3]) }), vec![s], "").unwrap();
    let p = g.push(Op::BatchMatMul(BatchMatMul { transpose_b: true }), vec![sq, sq], "attn").unwrap();
    let sm = g.push(Op::Softmax(Softmax { axes: vec![1], log: false }), vec![t], "softmax").unwrap();
    let ls = g.push(Op::Softmax(Softmax { axes: vec![0, 1], log: true }), vec![y], "log_softmax").unwrap();
    let nm = g.push(Op::Normalize(Normalize { norm: Norm::L1 }), vec![sm], "Normalizer").unwrap();
    let grid = Quant { axis: Some(1), scale: vec![0.5, (1.0f32 / 255.0) as f64], zero_point: vec![0, -128] };
    let fq = g.push(Op::FakeQuant(FakeQuant { quant: grid, lo: -128, hi: 127 }), vec![y], "fc_QuantizeLinear").unwrap();
    g.outputs = vec![nm, ls, y, fq, p];
    g
}

/// A quantized graph with every integer op and per-channel quantization.
fn quantized_graph() -> Graph {
    let mut g = Graph::new("q");
    let x = g.push(Op::Input(Input { index: 0, ty: TensorType::f32(Shape(vec![1, 2, 4, 4])) }), vec![], "x").unwrap();
    let q = Quant { axis: Some(1), scale: vec![0.1, 1.0 / 3.0], zero_point: vec![3, -4] };
    let xq = g.push(Op::Quantize(Quantize { quant: q, lo: 0, hi: 15 }), vec![x], "x").unwrap();
    let xd = g.push(Op::Reshape(Reshape { shape: Shape(vec![1, 2, 16]) }), vec![xq], "").unwrap();
    let x2 = g.push(Op::Input(Input { index: 1, ty: TensorType::f32(Shape(vec![1, 1, 4, 4])) }), vec![], "x2").unwrap();
    let q2 = Quant::per_tensor(0.0627451, 7);
    let x2q = g.push(Op::Quantize(Quantize { quant: q2.clone(), lo: -8, hi: 7 }), vec![x2], "").unwrap();
    let wq = Quant { axis: Some(0), scale: vec![0.01, 0.02, 0.03], zero_point: vec![0; 3] };
    let w = g.push_const(i64s(&[3, 1, 3, 3], |i| i as i64 - 13), Some(wq), "w");
    let b = g.push_const(i64s(&[3], |i| i as i64 * 100), None, "b");
    let conv = Conv { strides: vec![1, 1], pads: vec![0, 0, 0, 0], dilations: vec![1, 1], group: 1, x_zp: 7 };
    let acc = g.push(Op::Conv(conv), vec![x2q, w, b], "conv").unwrap();
    let tables = vec![(0..40).map(|i| i / 3).collect(), (0..40).map(|i| 40 - i).collect(), vec![5; 40]];
    let table_of = (0..12).map(|e| (e % 3) as u32).collect();
    let out = Some(Quant::per_tensor(0.5, 0));
    let lut = Lut { shift: 3, base: -20, tables, table_of, quant: out };
    let y = g.push(Op::Lut(lut), vec![acc], "act").unwrap();
    let mp = g.push(Op::MaxPool(MaxPool { window: window() }), vec![y], "").unwrap();
    let sp = g.push(Op::SumPool(SumPool { window: window(), x_zp: 2, count_include_pad: true }), vec![y], "").unwrap();
    let flat = g.push(Op::Reshape(Reshape { shape: Shape(vec![1, 6]) }), vec![sp], "").unwrap();
    let sum = g.push(Op::Reduce(Reduce { kind: ReduceKind::Sum, axes: vec![1], x_zp: 3 }), vec![flat], "").unwrap();
    let max = g.push(Op::Reduce(Reduce { kind: ReduceKind::Max, axes: vec![1], x_zp: 0 }), vec![flat], "").unwrap();
    let pick = Gather { shape: Shape(vec![1, 2]), index: vec![0, -1], values: vec![-7.0] };
    let _ = g.push(Op::Gather(pick), vec![max], "").unwrap();
    let _ =
        g.push(Op::Gather(Gather { shape: Shape(vec![1]), index: vec![0], values: vec![] }), vec![sum], "").unwrap();
    let wm = g.push_const(i64s(&[6, 2], |i| i as i64 - 6), Some(Quant::per_tensor(0.25, 0)), "fc.w");
    let mm = g.push(Op::MatMul(MatMul { x_zp: 0 }), vec![flat, wm], "fc").unwrap();
    let mq = g.ty(mm).as_int().unwrap().quant.clone().unwrap();
    let out = g.push(Op::Dequantize(Dequantize { quant: mq }), vec![mm], "out").unwrap();
    let plain = Lut { shift: 0, base: 0, tables: vec![vec![1, 2]], table_of: vec![], quant: None };
    let l2 = g.push(Op::Lut(plain), vec![xd], "").unwrap();
    let sum = g.push(Op::AddInt(AddInt { sign: -1, a_zp: 3, b_zp: 0 }), vec![y, y], "residual").unwrap();
    let x3 = g.push(Op::Input(Input { index: 2, ty: TensorType::f32(Shape(vec![3, 2])) }), vec![], "x3").unwrap();
    let cuts = vec![
        vec![Cut { at: -0.5, closed: true }, Cut { at: -0.5, closed: false }],
        vec![Cut { at: 1e-3, closed: false }],
    ];
    let buckets = g.push(Op::Bucketize(Bucketize { cuts }), vec![x3], "x3").unwrap();
    g.outputs = vec![out, mp, l2, sum, buckets];
    g
}

/// Which [`Op`] variant: fails to compile when a variant is added, so the round trip
/// below must then cover it.
fn variant(op: &Op) -> usize {
    match op {
        Op::Input(_) => 0,
        Op::Const(_) => 1,
        Op::Conv(_) => 2,
        Op::MatMul(_) => 3,
        Op::Unary(_) => 4,
        Op::Binary(_) => 5,
        Op::MaxPool(_) => 6,
        Op::AvgPool(_) => 7,
        Op::SumPool(_) => 8,
        Op::Reshape(_) => 9,
        Op::Quantize(_) => 10,
        Op::Dequantize(_) => 11,
        Op::Lut(_) => 12,
        Op::TreeEnsemble(_) => 13,
        Op::Softmax(_) => 14,
        Op::Normalize(_) => 15,
        Op::Gather(_) => 16,
        Op::Reduce(_) => 17,
        Op::FakeQuant(_) => 18,
        Op::BatchMatMul(_) => 19,
        Op::AddInt(_) => 20,
        Op::Bucketize(_) => 21,
    }
}

fn round_trip_graph(g: &Graph) -> String {
    let text = g.to_string();
    let back = parse_graph(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(&back, g, "{text}");
    assert_eq!(back.to_string(), text);
    text
}

#[test]
fn every_op_round_trips() {
    let (f, q) = (float_graph(), quantized_graph());
    verify_graph(&f).unwrap();
    verify_graph(&q).unwrap();
    let mut seen = [false; 22];
    for g in [&f, &q] {
        round_trip_graph(g);
        g.nodes.iter().for_each(|n| seen[variant(&n.op)] = true);
    }
    assert!(seen.iter().all(|&s| s), "an op is missing from the round trip: {seen:?}");
    println!("{f}\n\n{q}");
}

#[test]
fn odd_graphs_round_trip_too() {
    // Inputs out of step with the input nodes, an input whose type is not its node's,
    // quantizations that differ from the node type's, dangling operands, no outputs.
    let mut g = quantized_graph();
    g.inputs = vec![ValueId(3)];
    let Op::Input(i) = &mut g.nodes[0].op else { panic!() };
    i.ty =
        TensorType::int(Shape(vec![2]), -1, 1, Some(Quant { axis: None, scale: vec![1.0, 2.0], zero_point: vec![] }));
    let Op::Lut(l) = &mut g.nodes[8].op else { panic!() };
    l.quant = None;
    let Op::Const(c) = &mut g.nodes[6].op else { panic!() };
    c.quant = Some(Quant::per_tensor(f64::INFINITY, i64::MIN));
    g.nodes[1].ty = TensorType::f32(Shape(vec![]));
    g.nodes[2].inputs = vec![ValueId(99), ValueId(u32::MAX)];
    g.nodes[0].name = String::new();
    g.nodes[3].name = "\"; \\ \t\r\0\u{1b}\u{2028}\u{202e} 日本".into();
    g.outputs.clear();
    let text = round_trip_graph(&g);
    assert!(text.contains("  inputs %3\n  return\n}"), "{text}");
    assert!(
        text.contains("%1 = quantize %0 {quant=q(axis=1, [0.1, 0.3333333333333333], [3, -4]), range=[0, 15]} : f32[]")
    );
    assert!(text.contains("out=none"), "{text}");
    assert!(text.contains(r#"; "\"; \\ \t\r\0\u{1b}\u{2028}\u{202e} 日本""#), "{text}");
    assert!(text.contains("quant=q(inf, -9223372036854775808)"), "{text}");
    assert!(text.contains("type=i2[2] [-1, 1] q([1.0, 2.0], [])"), "{text}");
    assert_eq!(round_trip_graph(&Graph::new("")), "graph \"\" {\n  return\n}");
}

#[test]
fn floats_keep_every_bit() {
    let xs = [0.1, -0.0, 1e-320, f64::MIN_POSITIVE, 1.0 / 3.0, f64::MAX, f64::NEG_INFINITY, 123456789.0, 5e-324];
    for x in xs {
        let q = Quant::per_tensor(x, 0);
        let mut p = Parser::new(&q.to_string()).unwrap();
        assert_eq!(Quant::parse(&mut p).unwrap().scale[0].to_bits(), x.to_bits(), "{x}");
    }
    let t = Tensor::F32(ArrayD::from_shape_vec(IxDyn(&[4]), vec![f32::NAN, 16777217.0, 1e-45, -3.4028235e38]).unwrap());
    let text = t.to_string();
    assert_eq!(text, "f32[4] [NaN, 16777216.0, 1e-45, -3.4028235e38]");
    let back = Tensor::parse(&mut Parser::new(&text).unwrap()).unwrap();
    assert_eq!(back.to_string(), text);
    assert!(back.as_f32().unwrap()[0].is_nan());
}

#[test]
fn long_lists_move_to_shared_data_entries() {
    let mut g = Graph::new("d");
    let value = || f32s(&[40], |i| i as f32);
    let a = g.push_const(value(), None, "a");
    let b = g.push_const(value(), None, "b");
    g.outputs = vec![a, b];
    let text = round_trip_graph(&g);
    assert!(text.contains("%1 = const {value=f32[40] @0.value} : f32[40]"), "{text}");
    assert_eq!(text.matches("@0.value = [").count(), 1, "{text}");
    // A hand-written text may put anything inline, and reads the same.
    let inline = text[..text.find("\n\n@").unwrap()].replace("@0.value", &value().to_string()[8..]);
    assert_eq!(parse_graph(&inline).unwrap(), g);
}

#[test]
fn comments_are_ignored_and_names_are_read_after_the_type() {
    let text = "; test: nothing\ngraph \"c\" { ; \"not a name\"\n; \"unterminated\n; \"a\\\n  %0 = input {index=0} ; \"nor this\"\n : f32[1]  ; \"x\" ; check: %0\n; \"a lone string\"\n  return %0 ; end\n}\n";
    let g = parse_graph(text).unwrap();
    assert_eq!(g.name, "c");
    assert_eq!(g.nodes[0].name, "x");
    assert_eq!(g.to_string(), "graph \"c\" {\n  %0 = input {index=0} : f32[1]  ; \"x\"\n  return %0\n}");
}

fn circuit() -> Circuit {
    let lut = |precision, offset, norm| Some(FheLut { precision, offset, norm });
    Circuit {
        graph_digest: [0xa5; 32],
        params: vec![catalog(-128)[3].clone()],
        partition: Vec::new(),
        log_delta: vec![None, Some(57), None, Some(53), Some(59), Some(0)],
        luts: vec![None, None, None, None, lut(4, -1, 3.0), lut(1, i64::MIN, 0.1)],
        linear: vec![
            None,
            None,
            None,
            Some(LinearMap { terms: vec![vec![(0, 2), (1, -3)], vec![]], constant: vec![5, i64::MIN] }),
            None,
            None,
        ],
        inputs: vec![1],
        outputs: vec![4, 5],
        stats: CircuitStats { pbs: 2, widest_table: Some((4, 4)), max_norm: Some((3.0, 4)), levelled_macs: 8 },
    }
}

fn round_trip_circuit(c: &Circuit) -> String {
    let text = c.to_string();
    let back = parse_circuit(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(&back, c, "{text}");
    assert_eq!(back.to_string(), text);
    text
}

#[test]
fn circuits_round_trip() {
    let mut c = circuit();
    let text = round_trip_circuit(&c);
    assert!(text.contains("\n  %4 {log_delta=59, lut={precision=4, offset=-1, norm=3.0}}\n"), "{text}");
    println!("{text}");
    c.luts.truncate(4);
    c.log_delta[5] = None;
    c.log_delta.push(None);
    c.stats.widest_table = None;
    c.stats.max_norm = None;
    c.inputs.clear();
    assert!(round_trip_circuit(&c).contains("values 7, 4, 6\n  inputs\n"));
    // A searched set spells its numbers out.
    let base = catalog(-128)[4].lattice;
    c.params = vec![ParamSet::searched(base, 6, -128).unwrap()];
    let text = round_trip_circuit(&c);
    assert!(text.contains("lattice={n=930, k=1, N=4096, pbs=(2, 15), ks=(6, 3), lwe_std="), "{text}");
    assert!(text.contains(", searched=true}"), "{text}");
    // Partitions: a `params` line each, and every encoded value names its own.
    c.params.push(ParamSet::searched(catalog(-128)[3].lattice, 4, -128).unwrap());
    c.partition = c.log_delta.iter().enumerate().map(|(i, d)| d.map(|_| (i % 2) as u32)).collect();
    let text = round_trip_circuit(&c);
    assert!(text.contains("\n  %3 {log_delta=53, partition=1, linear="), "{text}");
    assert_eq!(text.matches("\n  params ").count(), 2, "{text}");
}

fn plan() -> Plan {
    let taps = PoolTaps { input_len: 9, taps: vec![vec![0, 1, 3, 4], vec![1, 2], vec![8]] };
    let piece = |lo, hi| Piece { lo, hi, scale: 0.5, offset: -1.0, coeffs: vec![0.5, 0.25, -1e-3] };
    let function = Piecewise {
        function: "sigmoid ∘ \"gelu\"".into(),
        breakpoints: vec![-4.0, 4.0],
        pieces: vec![piece(f64::NEG_INFINITY, -4.0), piece(-4.0, 4.0), piece(4.0, f64::INFINITY)],
        max_error: 9e-4,
    };
    let forest = ForestPlan {
        features: 3,
        comparisons: 2,
        select: 4,
        bounds: 5,
        paths: vec![vec![(0, true), (1, false)], vec![], vec![(1, true)]],
        entries: vec![(0, 0), (2, 1)],
        values: 6,
        targets: 2,
        base: 7,
    };
    let geometry = ConvGeometry {
        input: [1, 1, 3, 3],
        kernel: [2, 1, 2, 2],
        output: [1, 2, 2, 2],
        strides: [1, 1],
        pads: [0, 0],
        dilations: [1, 1],
        group: 1,
    };
    let step = |label: &str, op| Step { label: label.into(), op };
    let mut finish = Graph::new("every step.finish");
    let ty = TensorType::f32(Shape(vec![1, 2]));
    let x = finish.push(Op::Input(Input { index: 0, ty }), vec![], "logits").unwrap();
    let y = finish.push(Op::Softmax(Softmax { axes: vec![1], log: false }), vec![x], "head \"softmax\"").unwrap();
    finish.outputs.push(y);
    Plan {
        name: "every step".into(),
        graph_digest: [7; 32],
        frac_bits: 18,
        roles: Roles::default(),
        input_shape: vec![1, 9],
        output_shape: vec![1, 2],
        weights: (0..8).map(|k| WeightSpec { name: format!("%{k} \"w{k}\""), len: k + 1 }).collect(),
        weight_values: Some((0..8).map(|k| (0..k as i64 * 7).map(|v| v << 20).collect()).collect()),
        regs: 12,
        steps: vec![
            step("%0 \"input\"", StepOp::Share { out: 0, len: 9 }),
            step("", StepOp::MatMul { x: 0, w: 0, b: Some(1), m: 1, k: 9, n: 9, out: 1 }),
            step("", StepOp::MatMul { x: 1, w: 2, b: None, m: 3, k: 3, n: 3, out: 2 }),
            step("conv", StepOp::Conv { x: 2, w: 3, b: None, geometry: geometry.clone(), out: 3 }),
            step("conv", StepOp::Conv { x: 2, w: 3, b: Some(2), geometry, out: 3 }),
            step("", StepOp::Trunc { x: 3, len: 8, bits: 18, out: 4 }),
            step("", StepOp::Relu { x: 4, len: 8, out: 5 }),
            step("", StepOp::MaxPool { x: 5, taps: taps.clone(), out: 6 }),
            step("", StepOp::AvgPool { x: 5, taps, divisors: vec![4, 2, 1], out: 7 }),
            step("", StepOp::Piecewise { x: 7, len: 3, function, out: 8 }),
            step("", StepOp::Forest { x: 8, forest, out: 9 }),
            step("", StepOp::Gather { xs: vec![9, 8], w: Some(4), index: vec![0, -1, 2, -5], out: 10 }),
            step("", StepOp::Gather { xs: vec![10], w: None, index: vec![1, 0], out: 9 }),
            step(
                "",
                StepOp::Pair {
                    a: 8,
                    b: 7,
                    op: PairOp::Mul,
                    shapes: Broadcast { a: vec![1, 3], b: vec![1, 3], out: vec![1, 3] },
                    out: 10,
                },
            ),
            step("", StepOp::MatMulShares { a: 8, b: 7, batch: 1, m: 1, k: 3, n: 1, transpose_b: true, out: 11 }),
            step("out", StepOp::Reveal { x: 9, len: 2 }),
        ],
        finish: Some(finish),
    }
}

fn round_trip_plan(plan: &Plan) -> String {
    let text = plan.to_string();
    let back = parse_plan(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(&back, plan, "{text}");
    assert_eq!(back.to_string(), text);
    text
}

#[test]
fn plans_round_trip_with_and_without_weights() {
    let p = plan();
    let text = round_trip_plan(&p);
    println!("{text}");
    assert!(text.contains("  %r1 = matmul %r0, w0, w1 {m=1, k=9, n=9}\n"), "{text}");
    assert!(text.contains("  weight_values = @weight_values\n"), "{text}");
    assert!(text.contains("  finish = \"graph \\\"every step.finish\\\" {\\n  %0 = input"), "{text}");
    let weightless = round_trip_plan(&p.weightless());
    assert!(!weightless.contains("weight_values"), "{weightless}");
    let mut empty = p.weightless();
    empty.weight_values = Some(vec![]);
    empty.steps.clear();
    empty.weights.clear();
    empty.finish = None;
    assert!(round_trip_plan(&empty).contains("  weight_values = []\n}"));
}

/// The error `text` gives, as `line:col message`.
fn error_of(parse: impl Fn(&str) -> Result<String, ParseError>, text: &str) -> String {
    match parse(text) {
        Ok(v) => panic!("parsed: {text}\n{v}"),
        Err(e) => format!("{}:{} {}", e.line, e.col, e.message),
    }
}

fn graph_error(body: &str) -> String {
    error_of(|t| parse_graph(t).map(|g| g.to_string()), &format!("graph \"g\" {{\n{body}\n}}"))
}

#[test]
fn errors_give_line_column_and_reason() {
    let cases: &[(&str, &str)] = &[
        ("  %1 = input {index=0} : f32[1]\n  return", "2:3 expected `%0`: nodes are numbered from 0 in order"),
        ("  %0 = frob : f32[1]\n  return", "2:8 unknown op `frob`"),
        ("  %0 = input {index=0} : f16[1]\n  return", "2:26 expected a type (`f32`, `u8`, `i9`...), found `f16`"),
        ("  %0 = input {index=0} : u4[1] [0, 255]\n  return", "2:26 `u4` is not the bit width of [0, 255] (u8)"),
        ("  %0 = input {index=0} : u8[1] [0, 255] q(0.5)\n  return", "2:46 expected `,`, found `)`"),
        ("  %0 = conv %0 {pads=[0,0,0,0]} : f32[1]\n  return", "2:17 expected attribute `strides`, found `pads`"),
        ("  %0 = matmul %0 {x_zp=1, foo=2} : f32[1]\n  return", "2:27 unexpected attribute `foo` (attributes come in a fixed order)"),
        ("  %0 = matmul %0 {x_zp=1 2} : f32[1]\n  return", "2:26 expected `,` or `}`, found `2`"),
        ("  %0 = reshape %0 : f32[1]\n  return", "2:19 missing attribute `shape` (no `{...}` before here)"),
        ("  %0 = const {value=f32[2] [1.0, 2.0} : f32[2]\n  return", "2:37 expected `,` or `]`, found `}`"),
        ("  %0 = const {value=f32[3] [1.0]} : f32[3]\n  return", "2:28 1 elements for shape [3]"),
        ("  %0 = const {value=i64[1] [1.5]} : f32[1]\n  return", "2:29 expected a 64-bit integer, found `1.5`"),
        ("  %0 = input {index=-1} : f32[1]\n  return", "2:21 expected an unsigned integer, found `-1`"),
        ("  %0 = const {value=f32[2] @nope} : f32[2]\n  return", "2:28 no data entry `@nope`"),
        ("  %0 = quantize %0 : f32[1]\n  return", "2:20 expected attribute `quant`, found `:`"),
        ("  %0 = relu %0, : f32[1]\n  return", "2:17 expected a value `%N`, found `:`"),
        ("  %0 = relu %0 : f32[1]\n  %0 = relu %0 : f32[1]\n  return", "3:3 expected `%1`: nodes are numbered from 0 in order"),
        ("  %0 = relu %0 : f32[1]\n  return %99999999999", "3:10 value `%99999999999` is out of range"),
        ("  %0 = relu %0 : f32[1]\n  inputs %0\n  %1 = relu %0 : f32[1]", "4:3 expected `return`, found `%1`"),
        ("  %0 = relu %0 : f32[1]\n  ruturn %0", "3:3 expected a node `%N = ...`, `inputs` or `return`, found `ruturn`"),
        ("  %0 = relu %0 : f32[1] $", "2:25 unexpected character '$'"),
        ("  %0 = relu %0 : f32[1] - 1", "2:25 `-` must start a number"),
        ("  %0 = 5 : f32[1]", "2:8 expected a word, found `5`"),
        ("  %0 = relu %0 {,} : f32[1]", "2:17 expected an attribute or `}`, found `,`"),
        ("  %0 = tree_ensemble %0 {targets=1, aggregate=sum, base_values=[0.0], trees=[[x[0] =< 1.0 ? 1 : 2]]} : f32[1]\n  return", "2:84 expected a comparison (`<=`, `<`, `>=`, `>`, `==`, `!=`), found `=`"),
        ("  %0 = tree_ensemble %0 {targets=1, aggregate=mean, base_values=[], trees=[]} : f32[1]\n  return", "2:47 expected one of `sum`, `average`, found `mean`"),
        ("  %0 = tree_ensemble %0 {targets=1, aggregate=sum, base_values=[], trees=[[y]]} : f32[1]\n  return", "2:76 expected a branch `x[feature] <= threshold ? node : node` or a `leaf [...]`, found `y`"),
        ("  %0 = lut %0 {shift=0, base=0, tables=[[1]], out=q(1.0, 0) x} : f32[1]\n  return", "2:61 expected `,` or `}`, found `x`"),
        ("  %0 = avg_pool %0 {kernel=[1,1], strides=[1,1], pads=[0,0,0,0], count_include_pad=1} : f32[1]\n  return", "2:84 expected one of `false`, `true`, found `1`"),
    ];
    let mut bad = Vec::new();
    for (body, want) in cases {
        let got = graph_error(body);
        if &got != want {
            bad.push(format!("{body:?}\n  got  {got}\n  want {want}"));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    let whole: &[(&str, &str)] = &[
        ("", "1:1 expected `graph`, found the end of the text"),
        ("graph g {}", "1:7 expected a string, found `g`"),
        ("graph \"g\" {\n  return", "2:9 expected `}`, found the end of the text"),
        ("graph \"g\" {\n  return\n}\nx", "4:1 expected a data entry `@name = [...]` or the end of the text, found `x`"),
        ("graph \"g\" {\n  return\n}\n@a = [1]", "4:1 data entry `@a` is not used"),
        ("graph \"g\" {\n  return\n}\n@a = [1]\n@a = [2]", "5:1 data entry `@a` is defined twice"),
        (
            "graph \"g\" {\n  %0 = lut %0 {shift=0, base=0, tables=@a} : u1[1] [1, 1]\n  return\n}\n@a = [@b]\n@b = [1]",
            "5:7 a data entry cannot refer to another",
        ),
        ("graph \"g\" {\n  %0 = const {value=i64[1] @a} : u1[1] [1, 1]\n  return\n}\n@a = [1", "5:8 expected `,` or `]`, found the end of the text"),
        ("graph \"\\x\" {}", "1:8 unknown escape (use \\\" \\\\ \\n \\r \\t \\0 or \\u{...})"),
    ];
    for (text, want) in whole {
        assert_eq!(&error_of(|t| parse_graph(t).map(|g| g.to_string()), text), want, "{text}");
    }
    let e = parse_graph("graph \"g\" {\n  %0 = frob : f32[1]").unwrap_err();
    assert_eq!(e.to_string(), "line 2, column 8: unknown op `frob`");
}

#[test]
fn references_cannot_expand_without_bound() {
    let mut text = String::from("graph \"bomb\" {\n");
    for i in 0..100 {
        text += &format!("  %{i} = lut %0 {{shift=0, base=0, tables=@a}} : u1[1] [0, 0]\n");
    }
    text += "  return\n}\n@a = [[";
    text += &vec!["0"; 20_000].join(", ");
    text += "]]";
    let e = parse_graph(&text).unwrap_err();
    assert_eq!(e.message, "data references expand to too many items");
}

#[test]
fn circuit_and_plan_errors_give_line_column_and_reason() {
    let circuit_text = circuit().to_string();
    let circuit_error = |from: &str, to: &str| {
        error_of(|t| parse_circuit(t).map(|c| c.to_string()), &circuit_text.replacen(from, to, 1))
    };
    assert_eq!(circuit_error("%3 {", "%1 {"), "8:3 value %1 is out of order or beyond the 6 values");
    assert_eq!(
        circuit_error("values 6", "values 99999999999999"),
        "4:10 99999999999999 values is more than this text can describe"
    );
    assert_eq!(circuit_error("{log_delta=57}", "{}"), "7:3 %1 has neither `log_delta`, `lut` nor `linear`");
    assert_eq!(circuit_error("values 6", "values 6, 5, 6"), "10:3 %5 is beyond the 5 tables");
    assert_eq!(circuit_error("norm=3.0", "norm=x"), "9:55 expected a number, found `x`");
    assert_eq!(
        circuit_error("levelled_macs=8", "levelled_macs=8, pbs=3"),
        "11:76 unexpected attribute `pbs` (attributes come in a fixed order)"
    );
    let plan_text = plan().to_string();
    let plan_error =
        |from: &str, to: &str| error_of(|t| parse_plan(t).map(|c| c.to_string()), &plan_text.replacen(from, to, 1));
    assert_eq!(plan_error("w1 = weight", "w2 = weight"), "3:3 expected `w1`: weights are numbered in order");
    assert_eq!(plan_error("kernel=[2,1,2,2]", "kernel=[2,1,2]"), "14:47 expected 4 numbers, found 3");
    assert_eq!(
        plan_error("%r2 = matmul %r1, w2", "%r2 = matmul %r1, %r2"),
        "13:9 not a step: expected `%rO = share`, `%rO = matmul|conv %rX, wW[, wB]`, `%rO = trunc|relu|max_pool|avg_pool|piecewise|forest %rX`, `%rO = gather %rX, ...[, wW]`, `%rO = add|sub|mul|matmul_shares %rA, %rB` or `reveal %rX`"
    );
    assert_eq!(plan_error("reveal %r9", "%r10 = reveal %r9"), "26:10 not a step: expected `%rO = share`, `%rO = matmul|conv %rX, wW[, wB]`, `%rO = trunc|relu|max_pool|avg_pool|piecewise|forest %rX`, `%rO = gather %rX, ...[, wW]`, `%rO = add|sub|mul|matmul_shares %rA, %rB` or `reveal %rX`");
    assert_eq!(
        plan_error("paths=[[0, !1]", "paths=[[0, !!1]"),
        "21:113 expected an unsigned 32-bit integer, found `!`"
    );
    assert_eq!(plan_error("select=w4", "select=%r4"), "21:55 expected `wN`, found `%r4`");
}

/// xorshift64: deterministic garbling.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}

/// Cuts, flips, deletes, duplicates and splices pieces of `text`, keeping it UTF-8.
fn garble(rng: &mut Rng, text: &str) -> String {
    let mut b = text.as_bytes().to_vec();
    for _ in 0..1 + rng.below(3) {
        let at = rng.below(b.len() + 1);
        match rng.below(5) {
            0 if at < b.len() => b[at] ^= 1 << rng.below(8),
            1 if at < b.len() => {
                let end = (at + 1 + rng.below(12)).min(b.len());
                b.drain(at..end);
            }
            2 => {
                let from = rng.below(text.len());
                let piece = &text.as_bytes()[from..(from + 1 + rng.below(24)).min(text.len())];
                b.splice(at..at, piece.iter().copied());
            }
            3 => {
                let tok =
                    ["[", "]", "{", "}", "@0.value", "@x", "-", "%", ";", "\"", "9999999999999999999999", "NaN", ","];
                b.splice(at..at, tok[rng.below(tok.len())].bytes());
            }
            _ => b.truncate(at),
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

/// `parse` never panics on any prefix or garbling of `text`; what parses prints to a
/// text that parses to the same print.
fn never_panics(text: &str, parse: impl Fn(&str) -> Result<String, ParseError> + std::panic::RefUnwindSafe) {
    let check = |t: &str| {
        let got = std::panic::catch_unwind(|| parse(t)).unwrap_or_else(|_| panic!("panics on {t:?}"));
        if let Ok(printed) = got {
            assert_eq!(parse(&printed).as_ref(), Ok(&printed), "{t:?}");
        }
    };
    for (i, _) in text.char_indices() {
        check(&text[..i]);
    }
    let mut rng = Rng(0x5ecc_7e47 ^ text.len() as u64);
    for _ in 0..1000 {
        check(&garble(&mut rng, text));
    }
}

#[test]
fn truncated_or_garbled_text_never_panics() {
    for g in [float_graph(), quantized_graph()] {
        never_panics(&g.to_string(), |t| parse_graph(t).map(|g| g.to_string()));
    }
    never_panics(&circuit().to_string(), |t| parse_circuit(t).map(|c| c.to_string()));
    never_panics(&plan().to_string(), |t| parse_plan(t).map(|p| p.to_string()));
}
