//! Replicated sharing (aby3.md §1): `x = x_0 + x_1 + x_2` over Z_2^64 (or XOR for
//! boolean shares), and party `i` holds slots `i` and `i + 1`, so slot `j` is held by
//! parties `j` and `j − 1`. This module is the one place that orientation is written.

use super::party::Party;
use super::MpcError;

/// A party's two slots of a shared vector: `s0` is slot `id`, `s1` slot `id + 1`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Shares {
    /// Slot `id`.
    pub s0: Vec<u64>,
    /// Slot `id + 1`.
    pub s1: Vec<u64>,
}

impl Shares {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.s0.len()
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.s0.is_empty()
    }

    /// Slot-by-slot combination of two sharings (add, sub, xor: all local).
    pub fn zip(&self, other: &Shares, f: impl Fn(u64, u64) -> u64) -> Shares {
        let z = |a: &[u64], b: &[u64]| a.iter().zip(b).map(|(x, y)| f(*x, *y)).collect();
        Shares { s0: z(&self.s0, &other.s0), s1: z(&self.s1, &other.s1) }
    }

    /// The same map on both slots (a linear function applied to each share).
    pub fn map(&self, f: impl Fn(&[u64]) -> Vec<u64>) -> Shares {
        Shares { s0: f(&self.s0), s1: f(&self.s1) }
    }

    /// `[x] + [y]`.
    pub fn add(&self, y: &Shares) -> Shares {
        self.zip(y, u64::wrapping_add)
    }

    /// `[x] − [y]`.
    pub fn sub(&self, y: &Shares) -> Shares {
        self.zip(y, u64::wrapping_sub)
    }

    /// `c_e · [x_e]` for public `c` (one constant per element, or one for all).
    pub fn mul_public(&self, c: &[u64]) -> Shares {
        self.map(|s| s.iter().enumerate().map(|(e, v)| v.wrapping_mul(c[e % c.len()])).collect())
    }

    /// Adds public `c` (one per element, or one for all) to slot 0, with `op` the group
    /// operation (wrapping add, or xor for boolean shares).
    pub fn add_public(&self, id: usize, c: &[u64], op: impl Fn(u64, u64) -> u64) -> Shares {
        let mut y = self.clone();
        let slot = match id {
            0 => Some(&mut y.s0),
            2 => Some(&mut y.s1),
            _ => None,
        };
        if let Some(s) = slot {
            s.iter_mut().enumerate().for_each(|(e, v)| *v = op(*v, c[e % c.len()]));
        }
        y
    }

    /// `len` elements, element `e` taken from element `index(e)` (a public re-indexing:
    /// weights repeated over a batch, a bias over columns).
    pub fn broadcast(&self, len: usize, index: impl Fn(usize) -> usize) -> Shares {
        self.map(|s| (0..len).map(|e| s[index(e)]).collect())
    }

    /// Concatenation of several sharings.
    pub fn concat(parts: &[&Shares]) -> Shares {
        Shares {
            s0: parts.iter().flat_map(|p| p.s0.clone()).collect(),
            s1: parts.iter().flat_map(|p| p.s1.clone()).collect(),
        }
    }

    /// Elements `range`.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Shares {
        Shares { s0: self.s0[range.clone()].to_vec(), s1: self.s1[range].to_vec() }
    }

    /// Elements picked by index.
    pub fn gather(&self, idx: &[usize]) -> Shares {
        self.map(|s| idx.iter().map(|&i| s[i]).collect())
    }
}

/// A value to share: its owner, and its words where this party is the owner.
pub struct Secret<'a> {
    /// The party that knows it.
    pub owner: usize,
    /// The words (at the owner only).
    pub words: Option<&'a [u64]>,
    /// Number of words.
    pub len: usize,
}

/// Input by a party (aby3.md §1), several secrets in one round: owner `j` sets slot
/// `j+1` from seed `k_{j+1}`, slot `j+2` to 0 and sends slot `j = x − x_{j+1}` (or
/// `x ⊕ x_{j+1}` for a boolean sharing) to `j − 1`.
pub fn share(p: &mut Party, secrets: &[Secret], boolean: bool) -> Result<Vec<Shares>, MpcError> {
    let op = p.begin();
    let id = p.id();
    let mut sends: [Vec<u64>; 3] = Default::default();
    let mut expect = [0; 3];
    let mut mine = Vec::new();
    for (tag, s) in secrets.iter().enumerate() {
        let j = s.owner;
        if id == j {
            let words = s.words.ok_or_else(|| MpcError::Setup(format!("party {id} must provide secret {tag}")))?;
            let r = p.prg.words(j + 1, op, tag as u8, s.len);
            let x0: Vec<u64> =
                words.iter().zip(&r).map(|(x, r)| if boolean { x ^ r } else { x.wrapping_sub(*r) }).collect();
            sends[(j + 2) % 3].extend_from_slice(&x0);
            mine.push(Shares { s0: x0, s1: r });
        } else if id == (j + 1) % 3 {
            mine.push(Shares { s0: p.prg.words(j + 1, op, tag as u8, s.len), s1: vec![0; s.len] });
        } else {
            expect[j] += s.len;
            mine.push(Shares::default());
        }
    }
    let mut got = p.net.round(sends, expect)?;
    for (s, sh) in secrets.iter().zip(&mut mine) {
        if id == (s.owner + 2) % 3 {
            let rest = got[s.owner].split_off(s.len);
            *sh = Shares { s0: vec![0; s.len], s1: std::mem::replace(&mut got[s.owner], rest) };
        }
    }
    Ok(mine)
}

/// Reveal to party `to` only (aby3.md §1): its successor sends it the slot it lacks.
pub fn reveal(p: &mut Party, to: usize, x: &Shares) -> Result<Option<Vec<u64>>, MpcError> {
    p.begin();
    let id = p.id();
    let mut sends: [Vec<u64>; 3] = Default::default();
    let mut expect = [0; 3];
    if id == (to + 1) % 3 {
        sends[to] = x.s1.clone();
    }
    if id == to {
        expect[(to + 1) % 3] = x.len();
    }
    let got = p.net.round(sends, expect)?;
    Ok((id == to).then(|| {
        let missing = &got[(to + 1) % 3];
        x.s0.iter().zip(&x.s1).zip(missing).map(|((a, b), c)| a.wrapping_add(*b).wrapping_add(*c)).collect()
    }))
}

/// Turns this party's additive term `z_i` (of a 3-of-3 sharing, arithmetic or XOR
/// by `xor`) into a replicated sharing: mask with a zero sharing, send to the
/// predecessor, receive slot `i + 1` from the successor (aby3.md §3).
pub fn reshare(p: &mut Party, mut z: Vec<u64>, xor: bool) -> Result<Shares, MpcError> {
    let op = p.begin();
    let id = p.id();
    let n = z.len();
    if xor {
        let m = p.prg.zero_xor(op, 0, n);
        z.iter_mut().zip(m).for_each(|(v, m)| *v ^= m);
    } else {
        let m = p.prg.zero(op, 0, n);
        z.iter_mut().zip(m).for_each(|(v, m)| *v = v.wrapping_add(m));
    }
    let mut sends: [Vec<u64>; 3] = Default::default();
    let mut expect = [0; 3];
    sends[(id + 2) % 3] = z.clone();
    expect[(id + 1) % 3] = n;
    let mut got = p.net.round(sends, expect)?;
    Ok(Shares { s0: z, s1: std::mem::take(&mut got[(id + 1) % 3]) })
}
