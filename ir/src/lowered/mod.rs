//! What the lowerings produce: backend programs derived from the IR, as plain data.

pub mod mpc;
