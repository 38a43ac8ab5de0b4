//! Many runs: every scenario under every profile in one table (`matrix`), many faults picked
//! at random through one probe run (`soak`), and the benchmarks' tables (`bench`); their
//! subcommands' edges (`command`). The top of the library: nothing imports it but the binary.

pub mod bench;
pub mod command;
pub mod matrix;
pub mod soak;
