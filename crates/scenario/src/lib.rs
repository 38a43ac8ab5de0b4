//! Fault scenarios: the probe runs in-process while a fault is injected at a set time and
//! undone; the runner waits until the cluster is whole again, records a timeline of fault
//! steps and role changes on the probe's clock, grades the run against the scenario's
//! expectations, and writes one report.
//!
//! A newcomer adding a fault adds one file in `faults/` (the fault, its proof, its undo, its
//! expectations) and its line in the registry (`faults/mod.rs`); everything else is shared.
//! `lease` places faults in the leader's loop. `profiles` applies a settings profile to the running lab and
//! reads the active one back; `soak` runs many faults, picked at random, through one probe run.

pub mod bench;
pub mod cluster;
pub mod command;
pub mod direct;
pub mod doctor;
pub mod fault;
pub mod faults;
pub mod findings;
pub mod grade;
pub mod guard;
pub mod host;
pub mod lab;
pub mod lease;
pub mod matrix;
pub mod phases;
pub mod plan;
pub mod profiles;
pub mod readers;
pub mod report;
pub mod runner;
pub mod soak;
pub mod timeline;
