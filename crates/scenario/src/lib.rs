//! Fault scenarios: the probe runs in-process while a fault is injected at a set time and
//! undone; the runner waits until the cluster is whole again (and asks the doctor why when it
//! is not), records a timeline of fault steps and role changes on the probe's clock, grades the
//! run against the fault's expectations, and writes one report (`plan`, `runner`, `phases`,
//! `readers`, what the leader's Patroni logged about its DCS (`dcs_log`), `report`); the `scenario` subcommand's edge (`command`).
//!
//! It must never import the campaigns (matrix, soak, bench), which are built on it.

pub mod command;
pub mod dcs_log;
pub mod phases;
pub mod plan;
pub mod readers;
pub mod report;
pub mod runner;
