//! The subcommands that run against a cluster (`scenario`, `soak`, `matrix`, `doctor`,
//! `profile`): each one's flags, defined once with their doc and default, the checks made
//! before anything slow, the reports written and the exit code. The engines they hand over to
//! are the crate's other modules; no subcommand imports another.

pub mod doctor;
pub mod matrix;
pub mod profile;
pub mod scenario;
pub mod soak;
