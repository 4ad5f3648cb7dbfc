//! Lowered programs as plain data, one module per backend. They annotate the
//! quantized graph rather than copy it: the executors walk the graph and read here
//! how each value is encoded and what each step needs.

pub mod fhe;
pub mod fixed;
pub mod mpc;
mod verify;

pub use verify::{
    verify_circuit, verify_params, verify_plan, verify_sets, CircuitError, PlanError, PlanProblem, StepProblem,
    MAX_FRAC_BITS, MAX_LEN, MAX_MACS, MAX_PLAN_BYTES, MAX_PLAN_ELEMENTS, MAX_PRODUCT_FRAC_BITS, MAX_REGS, MAX_STEPS,
    MAX_WEIGHTS, MAX_WEIGHT_ELEMENTS,
};
