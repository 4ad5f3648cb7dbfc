//! ReLU and max through comparison (aby3.md §6): `relu(x) = (NOT msb(x)) · x`,
//! `max(a, b) = b + [a > b] · (a − b)` with `[a > b] = msb(b − a)`. 10 rounds each,
//! whatever the number of elements.

use super::bit::mul_bit;
use super::boolean::{msb, not};
use super::party::Party;
use super::share::Shares;
use super::MpcError;

/// `[max(x, 0)]`.
pub fn relu(p: &mut Party, x: &Shares) -> Result<Shares, MpcError> {
    let neg = msb(p, x)?;
    let pos = not(p.id(), &neg);
    mul_bit(p, &pos, x)
}

/// `[max(a_e, b_e)]` for every pair, in one batch (ties give `b`).
pub fn max(p: &mut Party, a: &Shares, b: &Shares) -> Result<Shares, MpcError> {
    let greater = msb(p, &b.sub(a))?;
    Ok(b.add(&mul_bit(p, &greater, &a.sub(b))?))
}
