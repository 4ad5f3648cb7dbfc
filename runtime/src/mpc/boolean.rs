//! Boolean shares (XOR, same slot layout): AND, and the MSB of an arithmetic sharing
//! through a parallel-prefix carry circuit (aby3.md §5; SPU `MsbA2B`).

use super::party::Party;
use super::share::{reshare, share, Secret, Shares};
use super::MpcError;

/// `[x ∧ y]` on boolean shares: 1 round.
pub fn and(p: &mut Party, x: &Shares, y: &Shares) -> Result<Shares, MpcError> {
    let z = (0..x.len()).map(|e| (x.s0[e] & (y.s0[e] ^ y.s1[e])) ^ (x.s1[e] & y.s0[e])).collect();
    reshare(p, z, true)
}

/// `NOT` of the bits of `[b]`: flip slot 0.
pub fn not(id: usize, b: &Shares) -> Shares {
    b.add_public(id, &[u64::MAX], |a, c| a ^ c)
}

/// The sign bit of `[x]` as a boolean sharing in bit 0 (other bits are junk): 8 rounds.
///
/// Round 1: party 0 knows `M = x_0 + x_1` and shares it as boolean; `N = x_2` is
/// already a boolean sharing (slot 2). `x = M + N`, so the MSB is `M_63 ⊕ N_63 ⊕ c_63`
/// with `c_63` the carry out of the low 63 bits: round 2 computes the generate bits
/// `G = M ∧ N`, then six levels combine (G, P) pairs of adjacent bit spans,
/// `(G_hi ⊕ P_hi ∧ G_lo, P_hi ∧ P_lo)`, both ANDs of a level packed into one word.
pub fn msb(p: &mut Party, x: &Shares) -> Result<Shares, MpcError> {
    let id = p.id();
    let n = x.len();
    let m_words: Vec<u64> = x.s0.iter().zip(&x.s1).map(|(a, b)| a.wrapping_add(*b)).collect();
    let m = share(p, &[Secret { owner: 0, words: (id == 0).then_some(&m_words[..]), len: n }], true)?.remove(0);
    // N = x_2 sits in slot 2: party 1's s1 and party 2's s0.
    let zeros = vec![0u64; n];
    let nb = match id {
        0 => Shares { s0: zeros.clone(), s1: zeros },
        1 => Shares { s0: zeros, s1: x.s1.clone() },
        _ => Shares { s0: x.s0.clone(), s1: zeros },
    };
    let pp = m.zip(&nb, |a, b| a ^ b);
    let top = pp.map(|s| s.iter().map(|v| v >> 63).collect());
    let gg = and(p, &m, &nb)?;
    // Bit 0 becomes a span with g = p = 0, so 64 bits pair up evenly.
    let mut g = gg.map(|s| s.iter().map(|v| v << 1).collect());
    let mut q = pp.map(|s| s.iter().map(|v| v << 1).collect());
    for _ in 0..6 {
        let (g_lo, g_hi) = (
            g.map(|s| s.iter().map(|&v| even_bits(v)).collect()),
            g.map(|s| s.iter().map(|&v| even_bits(v >> 1)).collect()),
        );
        let (p_lo, p_hi) = (
            q.map(|s| s.iter().map(|&v| even_bits(v)).collect()),
            q.map(|s| s.iter().map(|&v| even_bits(v >> 1)).collect()),
        );
        let a = p_hi.map(|s| s.iter().map(|&v| v | (v << 32)).collect());
        let b = g_lo.zip(&p_lo, |gl, pl| gl | (pl << 32));
        let c = and(p, &a, &b)?;
        g = g_hi.zip(&c, |gh, c| gh ^ (c & 0xffff_ffff));
        q = c.map(|s| s.iter().map(|v| v >> 32).collect());
    }
    Ok(top.zip(&g, |t, c| (t ^ c) & 1))
}

/// Gathers the even-position bits of `x` into its low 32 bits.
fn even_bits(x: u64) -> u64 {
    let mut x = x & 0x5555_5555_5555_5555;
    x = (x | (x >> 1)) & 0x3333_3333_3333_3333;
    x = (x | (x >> 2)) & 0x0f0f_0f0f_0f0f_0f0f;
    x = (x | (x >> 4)) & 0x00ff_00ff_00ff_00ff;
    x = (x | (x >> 8)) & 0x0000_ffff_0000_ffff;
    (x | (x >> 16)) & 0x0000_0000_ffff_ffff
}

#[cfg(test)]
mod tests {
    use super::even_bits;

    #[test]
    fn even_bits_compacts() {
        assert_eq!(even_bits(0b0101), 0b11);
        assert_eq!(even_bits(0b1010), 0);
        assert_eq!(even_bits(u64::MAX), 0xffff_ffff);
        assert_eq!(even_bits(1 << 62), 1 << 31);
    }
}
