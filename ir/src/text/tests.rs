//! Round trips of every op, type and step; every error with its position; no panic
//! on truncated or garbled text.

use super::*;
use crate::lowered::fhe::{catalog, Circuit, CircuitStats, FheLut};
use crate::lowered::mpc::{ConvGeometry, ForestPlan, Piece, Piecewise, Plan, PoolTaps, Roles, Step, StepOp, WeightSpec};
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
    Window { kernel: vec![2, 2], strides: vec![2, 2], pads: vec![0, 1, 0, 1] }
}

fn forest() -> TreeEnsemble {
    let branch = |feature, threshold, mode, t, f| TreeNode::Branch { feature, threshold, mode, true_child: t, false_child: f };
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
            Tree { nodes: vec![branch(1, f64::NEG_INFINITY, BranchMode::Lt, 1, 2), leaf(&[(0, 2.0)]), leaf(&[(1, -0.0)])] },
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
        post_transform: PostTransform::Softmax,
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
    let w = g.push_const(f32s(&[18, 2], |i| 1.0 / (i as f32 + 1.0)), None, "fc.weight");
    let y = g.push(Op::MatMul(MatMul { x_zp: 0 }), vec![r, w], "fc").unwrap();
    let t = g.push(Op::TreeEnsemble(forest()), vec![y], "TreeEnsembleRegressor").unwrap();
    g.outputs = vec![t, y];
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
    let sp = g.push(Op::SumPool(SumPool { window: window(), x_zp: 2 }), vec![y], "").unwrap();
    let flat = g.push(Op::Reshape(Reshape { shape: Shape(vec![1, 6]) }), vec![sp], "").unwrap();
    let wm = g.push_const(i64s(&[6, 2], |i| i as i64 - 6), Some(Quant::per_tensor(0.25, 0)), "fc.w");
    let mm = g.push(Op::MatMul(MatMul { x_zp: 0 }), vec![flat, wm], "fc").unwrap();
    let mq = g.ty(mm).as_int().unwrap().quant.clone().unwrap();
    let out = g.push(Op::Dequantize(Dequantize { quant: mq }), vec![mm], "out").unwrap();
    let plain = Lut { shift: 0, base: 0, tables: vec![vec![1, 2]], table_of: vec![], quant: None };
    let l2 = g.push(Op::Lut(plain), vec![xd], "").unwrap();
    g.outputs = vec![out, mp, l2];
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
    let mut seen = [false; 14];
    for g in [&f, &q] {
        round_trip_graph(g);
        g.nodes.iter().for_each(|n| seen[variant(&n.op)] = true);
    }
    assert!(seen.iter().all(|&s| s), "an op is missing from the round trip: {seen:?}");
    println!("{f}\n\n{q}");
}
