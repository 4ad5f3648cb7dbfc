//! One module per subcommand: its arguments (with their `--help`) and its body.

pub mod bench;
pub mod calibrate;
pub mod compile;
pub mod fhe;
pub mod inspect;
pub mod ir;
pub mod party;
pub mod run;
pub mod serve;
pub mod serve_fhe;

use anyhow::{anyhow, Result};
use secc_ir::artifact::Artifact;
use secc_ir::Graph;

/// The artifact's quantized IR, or why the model has none.
pub(crate) fn quantized(art: &Artifact) -> Result<&Graph> {
    art.quantized.as_ref().map_err(|e| anyhow!("this model has no quantized IR (no simulation, no TFHE): {e}"))
}
