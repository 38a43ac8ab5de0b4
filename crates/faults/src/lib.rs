//! What a fault is (`fault`: the trait, its context and errors), the steps faults share on a
//! host (`fault::steps`), what a run of one is expected to show (`grade`: expectations and
//! grades), and the faults themselves, one file each, with their registry (`faults`).
//!
//! A newcomer adding a fault adds one file in `faults/` (the fault, its proof, its undo, its
//! expectations) and its line in the registry (`faults/mod.rs`).
//!
//! It must never import the scenario runner, the doctor or the campaigns; it acts on machines
//! only through the cluster crate's `Host` seam.

pub mod fault;
pub mod faults;
pub mod grade;
