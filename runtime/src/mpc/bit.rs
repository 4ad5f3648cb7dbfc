//! Bit injection `[b] · [x]` (MulA1B, aby3.md §6): a boolean-shared bit times an
//! arithmetic sharing by two 3-party OTs run side by side, 2 rounds.
//!
//! In OT_s the sender `S = P_s` knows `t = b_s ⊕ b_{s+1}` and a value `a`; the helper
//! `H = P_{s+1}` and the receiver `R = P_{s+2}` both know `b_{s+2}`. S masks
//! `m_j = (j ⊕ t)·a − c_R − c_H` with pads it shares with H; H sends R the pad of the
//! right message; R learns `m = b·a − c_R − c_H` and forwards it to H. The output
//! sharing is `(c_R, c_H, m)` in slots `(s, s+1, s+2)`. OT_0 carries `a = x_1`, OT_2
//! carries `a = x_2 + x_0`; their sum is `b · x`.

use super::party::Party;
use super::share::Shares;
use super::MpcError;

/// Which OT a party plays which part in, and with what.
struct Ot {
    s: usize,
    tag: u8,
}

impl Ot {
    fn sender(&self) -> usize {
        self.s
    }
    fn helper(&self) -> usize {
        (self.s + 1) % 3
    }
    fn receiver(&self) -> usize {
        (self.s + 2) % 3
    }
}

/// `[b · x]` with `b` in bit 0 of the boolean sharing `bits`.
pub fn mul_bit(p: &mut Party, bits: &Shares, x: &Shares) -> Result<Shares, MpcError> {
    let op = p.begin();
    let id = p.id();
    let n = x.len();
    let b = bits.map(|s| s.iter().map(|v| v & 1).collect());
    let ots = [Ot { s: 0, tag: 0 }, Ot { s: 2, tag: 8 }];
    let mut sends: [Vec<u64>; 3] = Default::default();
    let mut expect = [0; 3];
    // Per OT, this party's output slots once it is done: (first, second) of its pair.
    let mut pending: Vec<(Vec<u64>, Vec<u64>)> = Vec::new();
    for ot in &ots {
        let (s, t) = (ot.s, ot.tag);
        if id == ot.sender() {
            let a: Vec<u64> =
                if s == 0 { x.s1.clone() } else { x.s0.iter().zip(&x.s1).map(|(u, v)| u.wrapping_add(*v)).collect() };
            let c_r = p.prg.words(s, op, t, n);
            let c_h = p.prg.words(s + 1, op, t + 1, n);
            let (w0, w1) = (p.prg.words(s + 1, op, t + 2, n), p.prg.words(s + 1, op, t + 3, n));
            for e in 0..n {
                let tb = b.s0[e] ^ b.s1[e];
                let m = |j: u64| ((j ^ tb).wrapping_mul(a[e])).wrapping_sub(c_r[e]).wrapping_sub(c_h[e]);
                sends[ot.receiver()].push(m(0) ^ w0[e]);
                sends[ot.receiver()].push(m(1) ^ w1[e]);
            }
            pending.push((c_r, c_h));
        } else if id == ot.helper() {
            let (w0, w1) = (p.prg.words(s + 1, op, t + 2, n), p.prg.words(s + 1, op, t + 3, n));
            sends[ot.receiver()].extend((0..n).map(|e| if b.s1[e] == 1 { w1[e] } else { w0[e] }));
            pending.push((p.prg.words(s + 1, op, t + 1, n), vec![]));
        } else {
            expect[ot.sender()] += 2 * n;
            expect[ot.helper()] += n;
            pending.push((vec![], p.prg.words(s, op, t, n)));
        }
    }
    let got = p.net.round(sends, expect)?;
    // Round 2: each receiver forwards m to its helper. Party 2 receives in OT_0 from
    // parties 0 and 1; party 1 receives in OT_2 from parties 2 and 0.
    let mut sends: [Vec<u64>; 3] = Default::default();
    let mut expect = [0; 3];
    for (ot, pend) in ots.iter().zip(&mut pending) {
        if id == ot.receiver() {
            let from_s = &got[ot.sender()];
            let from_h = &got[ot.helper()];
            // Each sender's words for this OT are its only words to this party, and so
            // are the helper's (each party plays one part per OT).
            let m: Vec<u64> = (0..n)
                .map(|e| {
                    let pair = (from_s[2 * e], from_s[2 * e + 1]);
                    let chosen = if b.s0[e] == 1 { pair.1 } else { pair.0 };
                    chosen ^ from_h[e]
                })
                .collect();
            sends[ot.helper()] = m.clone();
            pend.0 = m;
        } else if id == ot.helper() {
            expect[ot.receiver()] = n;
        }
    }
    let got = p.net.round(sends, expect)?;
    let mut total = Shares { s0: vec![0; n], s1: vec![0; n] };
    for (ot, (first, second)) in ots.iter().zip(pending) {
        // Slots in this party's order (s0 = slot id, s1 = slot id + 1).
        let sh = if id == ot.sender() {
            Shares { s0: first, s1: second }
        } else if id == ot.helper() {
            Shares { s0: first, s1: got[ot.receiver()].clone() }
        } else {
            Shares { s0: first, s1: second }
        };
        total = total.add(&sh);
    }
    Ok(total)
}
