//! Entity references. A [`ValueId`] prints as `%N`, the same text the IR dump and
//! every error message use, so an id in a log can be found in the dump.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A value of the graph: the single output of node number `N`, written `%N`.
///
/// Nodes are kept in evaluation order and renumbered densely after each pass
/// ([`crate::Graph::compact`]), so ids in a dump are `%0, %1, ...` in order.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct ValueId(pub u32);

impl ValueId {
    /// The position of the defining node in [`crate::Graph::nodes`].
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for ValueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "%{}", self.0)
    }
}
