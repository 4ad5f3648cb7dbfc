//! secc's executors of lowered programs: the TFHE circuit ([`fhe`]) and the SMPC plan
//! ([`mpc`]), plus the sample file readers. The clear interpreter, the oracle both are
//! held to, is `secc_ir::interp`.

pub mod csv;
pub mod fhe;
pub mod mpc;
pub mod npy;
