//! Correlated randomness without a dealer (aby3.md §2): each party draws a ChaCha20
//! seed `k_i` and sends it to its predecessor, so party `i` knows `k_i` and `k_{i+1}`
//! and seed `k_j` is known exactly to the two holders of share slot `j`.
//!
//! Streams are indexed by (op, tag), never by a running position: op is the number of
//! the protocol call in the public schedule, tag tells apart the values one call draws,
//! so the two holders of a seed always draw the same words.

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// A party's two seeds.
pub struct Prg {
    id: usize,
    own: [u8; 32],
    next: [u8; 32],
}

impl Prg {
    /// A fresh seed from the OS, to be sent to the predecessor.
    pub fn fresh_seed() -> [u8; 32] {
        let mut k = [0u8; 32];
        rand_core::OsRng.fill_bytes(&mut k);
        k
    }

    /// Party `id` with its own seed and its successor's.
    pub fn new(id: usize, own: [u8; 32], next: [u8; 32]) -> Prg {
        Prg { id, own, next }
    }

    /// `n` words of `F_{k_slot}(op, tag)`. Only slots `id` and `id + 1` are known here.
    pub fn words(&self, slot: usize, op: u64, tag: u8, n: usize) -> Vec<u64> {
        let seed = if slot % 3 == self.id {
            self.own
        } else if slot % 3 == (self.id + 1) % 3 {
            self.next
        } else {
            unreachable!("party {} does not know seed {slot}", self.id)
        };
        let mut rng = ChaCha20Rng::from_seed(seed);
        rng.set_stream((op << 8) | tag as u64);
        (0..n).map(|_| rng.next_u64()).collect()
    }

    /// This party's part of an arithmetic zero sharing: `F_{k_i} − F_{k_{i+1}}`.
    pub fn zero(&self, op: u64, tag: u8, n: usize) -> Vec<u64> {
        let (a, b) = (self.words(self.id, op, tag, n), self.words(self.id + 1, op, tag, n));
        a.iter().zip(&b).map(|(x, y)| x.wrapping_sub(*y)).collect()
    }

    /// This party's part of a boolean zero sharing: `F_{k_i} ⊕ F_{k_{i+1}}`.
    pub fn zero_xor(&self, op: u64, tag: u8, n: usize) -> Vec<u64> {
        let (a, b) = (self.words(self.id, op, tag, n), self.words(self.id + 1, op, tag, n));
        a.iter().zip(&b).map(|(x, y)| x ^ y).collect()
    }
}
