//! Lowered programs as plain data, one module per backend. They annotate the
//! quantized graph rather than copy it: the executors walk the graph and read here
//! how each value is encoded and what each step needs.

pub mod fhe;
pub mod fixed;
pub mod mpc;
