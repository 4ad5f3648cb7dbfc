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
