//! Passes over the IR, one file each, in pipeline order:
//!
//! | pass | does |
//! |---|---|
//! | [`fold_constants`] | evaluates nodes whose operands are all constants |
//! | [`fold_affine`] | absorbs per-channel bias adds and scalings into the linear op before them |
//! | [`calibrate`] | records each float value's range over calibration samples |
//! | [`quantize`] | float IR → integer IR: runs each op's quantization rule (`secc_ir::ops::QuantizeRule`, in the op's file) |
//! | [`fuse_lut`] | each elementwise chain after an integer value → one table per element (used by `quantize`) |
//! | [`precision`] | runs `quantize` at the cheapest widths whose simulation stays within an accuracy budget of float |
//! | [`bit_width`] | per-value bit widths and table statistics of an integer graph |
//!
//! The per-op parts of a pass live with the op (`ir/src/ops/`): a tree ensemble's
//! comparison and leaf tables, for instance, are its quantization rule in
//! `ir/src/ops/tree/tables.rs`. A pass file holds what is the same for every op.

pub mod bit_width;
pub mod calibrate;
pub mod fold_affine;
pub mod fold_constants;
pub mod fuse_lut;
pub mod precision;
pub mod quantize;

use secc_ir::{Graph, ValueId};

/// Rebuilds a graph node by node: passes read old nodes and push new ones, and
/// `map` records which new value stands for each old one.
pub(crate) struct Rebuild {
    pub(crate) new: Graph,
    pub(crate) map: Vec<Option<ValueId>>,
}

impl Rebuild {
    pub(crate) fn new(old: &Graph) -> Self {
        Rebuild { new: Graph::new(old.name.clone()), map: vec![None; old.nodes.len()] }
    }

    /// The new value standing for old value `v`.
    pub(crate) fn get(&self, v: ValueId) -> ValueId {
        self.map[v.index()].expect("operands are rebuilt before their users")
    }

    /// Finishes: maps the outputs and compacts.
    pub(crate) fn finish(mut self, old: &Graph) -> Graph {
        self.new.outputs = old.outputs.iter().map(|&v| self.get(v)).collect();
        self.new.compact();
        self.new
    }
}
