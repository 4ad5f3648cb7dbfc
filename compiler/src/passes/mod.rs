//! Passes over the IR, one file each, in pipeline order:
//!
//! | pass | does |
//! |---|---|
//! | [`fold_constants`] | evaluates nodes whose operands are all constants |
//! | [`fold_affine`] | absorbs per-channel bias adds and scalings into the linear op before them |
//! | [`calibrate`] | records each float value's range over calibration samples |
//! | [`quantize`] | float IR → integer IR (weights, input boundary, linear ops) |
//! | [`fuse_lut`] | each elementwise chain after an integer value → one table per element (used by `quantize`) |
//! | [`tree_tables`] | a tree ensemble → comparison tables, path sums, leaf tables, a sum (used by `quantize`) |
//! | [`bit_width`] | per-value bit widths and table statistics of an integer graph |

pub mod bit_width;
pub mod calibrate;
pub mod fold_affine;
pub mod fold_constants;
pub mod fuse_lut;
pub mod quantize;
pub mod tree_tables;

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
