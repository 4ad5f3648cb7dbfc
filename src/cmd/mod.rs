//! One module per subcommand: its arguments (with their `--help`) and its body.

pub mod compile;
pub mod fhe;
pub mod inspect;
pub mod party;
pub mod run;
