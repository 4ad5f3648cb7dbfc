//! One party of a session: its links, its seeds and its place in the public schedule.

use super::net::{Net, Traffic};
use super::prg::Prg;
use super::MpcError;

/// Largest batch a party accepts from the data owner (a garbage count cannot make it
/// allocate without bound).
pub const MAX_BATCH: u64 = 1 << 16;

/// A party, set up and ready to run protocols.
pub struct Party {
    /// Links to the other two.
    pub net: Net,
    /// Seeds `k_id` and `k_{id+1}`.
    pub prg: Prg,
    op: u64,
}

impl Party {
    /// The set-up round: every party sends its fresh seed to its predecessor, and the
    /// data owner tells both others the batch size (`batch` at the data owner, ignored
    /// elsewhere). Returns the party and the batch size.
    pub fn setup(mut net: Net, data_owner: usize, batch: usize) -> Result<(Party, usize), MpcError> {
        let (prg, batch) = Party::setup_on(&mut net, data_owner, batch)?;
        Ok((Party::new(net, prg), batch))
    }

    /// A party on `net` with seeds `prg`, at the start of the schedule.
    pub fn new(net: Net, prg: Prg) -> Party {
        Party { net, prg, op: 0 }
    }

    /// The set-up round of [`Party::setup`] on a borrowed link set (so the caller can
    /// still tell the peers if it fails): the seeds and the batch size.
    pub fn setup_on(net: &mut Net, data_owner: usize, batch: usize) -> Result<(Prg, usize), MpcError> {
        let id = net.id();
        let own = Prg::fresh_seed();
        let announced = if id == data_owner { batch as u64 } else { 0 };
        let mut sends: [Vec<u64>; 3] = Default::default();
        sends[(id + 2) % 3] = std::iter::once(announced).chain(seed_words(&own)).collect();
        sends[(id + 1) % 3] = vec![announced];
        let mut expect = [0; 3];
        expect[(id + 1) % 3] = 5;
        expect[(id + 2) % 3] = 1;
        let got = net.round(sends, expect)?;
        let next = &got[(id + 1) % 3];
        let mut next_seed = [0u8; 32];
        next[1..].iter().enumerate().for_each(|(i, w)| next_seed[8 * i..8 * i + 8].copy_from_slice(&w.to_le_bytes()));
        let batch = if id == data_owner { batch as u64 } else { got[data_owner][0] };
        if batch == 0 || batch > MAX_BATCH {
            return Err(MpcError::Garbage {
                peer: data_owner,
                round: 0,
                what: format!("batch size {batch} (must be 1 to {MAX_BATCH})"),
            });
        }
        Ok((Prg::new(id, own, next_seed), batch as usize))
    }

    /// This party's id.
    pub fn id(&self) -> usize {
        self.net.id()
    }

    /// Starts a protocol call: its number in the schedule, which indexes its randomness.
    pub fn begin(&mut self) -> u64 {
        self.op += 1;
        self.op
    }

    /// What was sent so far.
    pub fn traffic(&self) -> Traffic {
        self.net.traffic()
    }
}

fn seed_words(k: &[u8; 32]) -> impl Iterator<Item = u64> + '_ {
    k.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
}
