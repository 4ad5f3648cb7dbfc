//! Products of two shared operands (aby3.md §3): each party computes the three cross
//! terms it can, `z_i = x_i·y_i + x_i·y_{i+1} + x_{i+1}·y_i`, for every output at once,
//! then one resharing round. Elementwise products, matmuls and convolutions differ
//! only in the local bilinear map.

use super::party::Party;
use super::share::{reshare, Shares};
use super::MpcError;
use secc_ir::ops::{conv_accumulate, ConvGeometry};
use std::num::Wrapping;

/// `[x ⊙ y]` elementwise, at the sum of the operands' scales.
pub fn mul(p: &mut Party, x: &Shares, y: &Shares) -> Result<Shares, MpcError> {
    let z = (0..x.len())
        .map(|e| {
            let (a0, a1, b0, b1) = (x.s0[e], x.s1[e], y.s0[e], y.s1[e]);
            a0.wrapping_mul(b0.wrapping_add(b1)).wrapping_add(a1.wrapping_mul(b0))
        })
        .collect();
    reshare(p, z, false)
}

/// `[X · W]` for `X` of `rows × k` and `W` of `k × n`.
pub fn matmul(p: &mut Party, x: &Shares, w: &Shares, rows: usize, k: usize, n: usize) -> Result<Shares, MpcError> {
    let w01: Vec<u64> = w.s0.iter().zip(&w.s1).map(|(a, b)| a.wrapping_add(*b)).collect();
    let mut z = gemm(&x.s0, &w01, rows, k, n);
    gemm(&x.s1, &w.s0, rows, k, n).iter().zip(&mut z).for_each(|(a, b)| *b = b.wrapping_add(*a));
    reshare(p, z, false)
}

/// `[A_i · B_i]` for `pairs` pairs of shared matrices, `A_i` of `m × k` and `B_i` of
/// `k × n`, laid out one pair after the other: every product's cross terms, then one
/// resharing round for all.
pub fn matmul_shares(
    p: &mut Party,
    a: &Shares,
    b: &Shares,
    pairs: usize,
    (m, k, n): (usize, usize, usize),
    transpose_b: bool,
) -> Result<Shares, MpcError> {
    // A right operand stored `n × k` is re-indexed to `k × n` locally.
    let b = if transpose_b {
        b.broadcast(b.len(), |e| e / (k * n) * k * n + e % n * k + e % (k * n) / n)
    } else {
        b.clone()
    };
    let mut z = Vec::with_capacity(pairs * m * n);
    for i in 0..pairs {
        let (ra, rb) = (i * m * k..(i + 1) * m * k, i * k * n..(i + 1) * k * n);
        let b01: Vec<u64> = b.s0[rb.clone()].iter().zip(&b.s1[rb.clone()]).map(|(x, y)| x.wrapping_add(*y)).collect();
        let mut y = gemm(&a.s0[ra.clone()], &b01, m, k, n);
        gemm(&a.s1[ra], &b.s0[rb], m, k, n).iter().zip(&mut y).for_each(|(c, d)| *d = d.wrapping_add(*c));
        z.extend(y);
    }
    reshare(p, z, false)
}

/// `[conv(X, W)]` for every sample `X` holds.
pub fn conv(p: &mut Party, x: &Shares, w: &Shares, g: &ConvGeometry) -> Result<Shares, MpcError> {
    let w01: Vec<u64> = w.s0.iter().zip(&w.s1).map(|(a, b)| a.wrapping_add(*b)).collect();
    let mut z = conv_local(&x.s0, &w01, g);
    conv_local(&x.s1, &w.s0, g).iter().zip(&mut z).for_each(|(a, b)| *b = b.wrapping_add(*a));
    reshare(p, z, false)
}

/// Wrapping u64 matrix product, `rows × k` by `k × n`.
fn gemm(x: &[u64], w: &[u64], rows: usize, k: usize, n: usize) -> Vec<u64> {
    let mut y = vec![0u64; rows * n];
    for r in 0..rows {
        let out = &mut y[r * n..(r + 1) * n];
        for (i, &a) in x[r * k..(r + 1) * k].iter().enumerate() {
            for (o, &b) in out.iter_mut().zip(&w[i * n..(i + 1) * n]) {
                *o = o.wrapping_add(a.wrapping_mul(b));
            }
        }
    }
    y
}

/// Wrapping u64 convolution: the IR's own index maths, on the ring.
fn conv_local(x: &[u64], w: &[u64], g: &ConvGeometry) -> Vec<u64> {
    let [_, c, h, wd] = g.input;
    let images = x.len() / (c * h * wd);
    let y = conv_accumulate(g, images, |i| Wrapping(x[i]), |i| Wrapping(w[i]), |_| Wrapping(0));
    y.into_iter().map(|v| v.0).collect()
}
