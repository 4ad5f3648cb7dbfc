//! Every protocol against plaintext, three real parties over loopback sockets, on
//! random values including zeros, negatives and values near the fixed-point limits.

use super::boolean::msb;
use super::linear::{matmul, mul};
use super::net::Net;
use super::party::Party;
use super::relu::{max, relu};
use super::session::fresh_tls;
use super::share::{reveal, share, Secret, Shares};
use super::trunc::trunc;
use super::{bit::mul_bit, piecewise::piecewise};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use secc_ir::lowered::mpc::{Piece, Piecewise};
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

/// Runs `f` in three parties; `f` gets the party and the plaintext inputs, shares
/// them from party 0, and returns a sharing that is revealed to party 0.
fn run3(inputs: Vec<Vec<u64>>, f: impl Fn(&mut Party, &[Shares]) -> Shares + Sync) -> Vec<u64> {
    let listeners: Vec<TcpListener> = (0..3).map(|_| TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    let addrs: [SocketAddr; 3] =
        listeners.iter().map(|l| l.local_addr().unwrap()).collect::<Vec<_>>().try_into().unwrap();
    let security = fresh_tls();
    let out = std::thread::scope(|s| {
        let hs: Vec<_> = listeners
            .into_iter()
            .zip(&security)
            .enumerate()
            .map(|(id, (l, security))| {
                let (inputs, f) = (&inputs, &f);
                s.spawn(move || {
                    let net = Net::connect(id, l, &addrs, security, Duration::from_secs(10), &[0; 32]).unwrap();
                    let (mut p, _) = Party::setup(net, 0, 1).unwrap();
                    let secrets: Vec<Secret> = inputs
                        .iter()
                        .map(|v| Secret { owner: 0, words: (id == 0).then_some(&v[..]), len: v.len() })
                        .collect();
                    let xs = share(&mut p, &secrets, false).unwrap();
                    let y = f(&mut p, &xs);
                    reveal(&mut p, 0, &y).unwrap()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect::<Vec<_>>()
    });
    out.into_iter().next().unwrap().unwrap()
}

/// Random signed values of at most `bits` bits, with zeros, ±1 and both extremes.
fn values(n: usize, bits: u32, seed: u64) -> Vec<i64> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let lim = (1i64 << bits) - 1;
    let mut v = vec![0, 1, -1, lim, -lim, lim - 1, -lim + 1];
    v.extend((0..n).map(|_| (rng.next_u64() as i64) >> (64 - bits - 1)));
    v
}

fn ring(v: &[i64]) -> Vec<u64> {
    v.iter().map(|&x| x as u64).collect()
}

#[test]
fn multiplication_and_matmul_are_exact() {
    let (x, y) = (values(50, 30, 1), values(50, 30, 2));
    let got = run3(vec![ring(&x), ring(&y)], |p, s| mul(p, &s[0], &s[1]).unwrap());
    let want: Vec<u64> = x.iter().zip(&y).map(|(a, b)| a.wrapping_mul(*b) as u64).collect();
    assert_eq!(got, want);
    // 2x3 · 3x2
    let (a, w) = (vec![1i64, -2, 3, 0, 5, -6], vec![7i64, 8, -9, 10, 11, -12]);
    let got = run3(vec![ring(&a), ring(&w)], |p, s| matmul(p, &s[0], &s[1], 2, 3, 2).unwrap());
    assert_eq!(got, ring(&[7 + 18 + 33, 8 - 20 - 36, -45 - 66, 50 + 72]));
}

#[test]
fn truncation_is_floor_or_floor_plus_one_up_to_2_62() {
    let x = values(300, 61, 3);
    for d in [1, 16, 18, 32] {
        let got = run3(vec![ring(&x)], |p, s| trunc(p, &s[0], d).unwrap());
        for (v, g) in x.iter().zip(&got) {
            let floor = v >> d;
            assert!(*g as i64 == floor || *g as i64 == floor + 1, "trunc({v}, {d}) = {}", *g as i64);
        }
    }
}

#[test]
fn msb_relu_and_max_match_plaintext() {
    let x = values(200, 62, 4);
    let bits = run3(vec![ring(&x)], |p, s| {
        let b = msb(p, &s[0]).unwrap();
        // Reveal the bit as an arithmetic value by injecting it into 1.
        let one = Shares { s0: vec![(p.id() == 0) as u64; b.len()], s1: vec![(p.id() == 2) as u64; b.len()] };
        mul_bit(p, &b, &one).unwrap()
    });
    assert_eq!(bits, x.iter().map(|&v| (v < 0) as u64).collect::<Vec<_>>());
    let got = run3(vec![ring(&x)], |p, s| relu(p, &s[0]).unwrap());
    assert_eq!(got, ring(&x.iter().map(|&v| v.max(0)).collect::<Vec<_>>()));
    let y = values(200, 62, 5);
    let got = run3(vec![ring(&x), ring(&y)], |p, s| max(p, &s[0], &s[1]).unwrap());
    assert_eq!(got, ring(&x.iter().zip(&y).map(|(a, b)| *a.max(b)).collect::<Vec<_>>()));
}

#[test]
fn piecewise_evaluates_each_piece_on_its_interval() {
    let f = 16;
    // |x| on [-4, 4]: tails 0.5·x and −0.5·x outside, a normalised piece t² on [-2, 2].
    let pw = Piecewise {
        function: "test".into(),
        breakpoints: vec![-2.0, 2.0],
        pieces: vec![
            Piece { lo: f64::NEG_INFINITY, hi: -2.0, scale: 1.0, offset: 0.0, coeffs: vec![1.0, -1.0] },
            Piece { lo: -2.0, hi: 2.0, scale: 0.5, offset: 0.0, coeffs: vec![0.0, 0.0, 4.0] },
            Piece { lo: 2.0, hi: f64::INFINITY, scale: 1.0, offset: 0.0, coeffs: vec![1.0, 1.0] },
        ],
        max_error: 0.0,
    };
    let xs = [-7.5f64, -2.0, -1.5, 0.0, 0.25, 1.999, 2.0, 100.0, -1000.0];
    let enc: Vec<u64> = xs.iter().map(|&x| (x * 65536.0).round() as i64 as u64).collect();
    let got = run3(vec![enc], |p, s| piecewise(p, &s[0], &pw, f).unwrap());
    for (x, g) in xs.iter().zip(&got) {
        let want = if *x < -2.0 {
            1.0 - x
        } else if *x < 2.0 {
            x * x
        } else {
            1.0 + x
        };
        let g = *g as i64 as f64 / 65536.0;
        assert!((g - want).abs() < 1e-3, "f({x}) = {g}, want {want}");
    }
}
