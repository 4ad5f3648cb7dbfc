//! The SMPC backend's runtime: three parties run a [`Plan`] on 3-party replicated
//! secret shares over Z_2^64 (ABY3-style, semi-honest, honest majority), talking over
//! TCP. `shared/notes/aby3.md` specifies every protocol here; each file implements one.
//!
//! - [`net`]: links, timeouts, traffic counters; [`frame`]: the frame header, checked
//!   before allocating; [`tls`]: TLS 1.3 with pinned certificates; [`prg`]: dealer-free
//!   seeds; [`party`]: set-up and the public schedule.
//! - [`share`]: the slot layout, input, reveal, resharing; [`linear`]: products,
//!   matmul, conv; [`trunc`]: TruncAPr2; [`boolean`]: AND and MSB; [`bit`]: bit
//!   injection; [`relu`], [`pool`], [`piecewise`]: the non-linear layers; [`forest`]:
//!   tree ensembles.
//! - [`exec`]: runs a plan in one party; [`session`]: a whole party process, and
//!   three of them over loopback; [`serve`]: three long-lived parties serving outside
//!   clients.

pub mod bit;
pub mod boolean;
mod error;
pub mod exec;
pub mod forest;
pub mod frame;
pub mod linear;
pub mod net;
pub mod party;
pub mod piecewise;
pub mod pool;
pub mod prg;
pub mod relu;
pub mod serve;
pub mod session;
pub mod share;
#[cfg(test)]
mod tests;
pub mod tls;
pub mod trunc;

pub use error::MpcError;
pub use secc_ir::lowered::mpc::Plan;
