//! The subcommands that run many things (`matrix`, `soak`, `bench`): each one's flags, defined
//! once with their doc and default, the checks made before anything slow, the reports written
//! and the exit code. No subcommand imports another.

pub mod bench;
pub mod matrix;
pub mod soak;
