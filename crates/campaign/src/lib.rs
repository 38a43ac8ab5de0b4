//! Many runs: every scenario under every profile in one table (`matrix`), many faults picked
//! at random through one probe run (`soak`), the benchmarks' tables (`bench`) and
//! the current headline figures from the dated measurement files (`figures`); their
//! subcommands' edges (`command`). The top of the library: nothing imports it but the binary.

pub mod bench;
pub mod command;
pub mod figures;
pub mod matrix;
pub mod soak;
