//! The doctor: reads a live cluster and names every known bad state (a second primary, two
//! timelines with one ID, a stopped process, a packet filter left behind, a paused cluster),
//! each with its evidence and its repair, and repairs what it can (`doctor`); the `doctor`
//! subcommand's edge (`command`). The soak and the runner ask it why a cluster is not whole.
//!
//! It must never import the faults, the scenario runner or the campaigns: it reads the cluster
//! as it is, whatever made it so.

pub mod command;
pub mod doctor;
