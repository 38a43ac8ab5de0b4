//! The probe: a workload that keeps measuring through switchover and failover.
//!
//! N clients write (and optionally read) through one endpoint (and, given a reader endpoint,
//! read their own newest row there after each write), never give up, and record every
//! attempt to a history file on disk; the analysis then reads that history back to report
//! unavailability windows, stalls, the cut-over gap, errors by class, latency, and — checked
//! against the primary at the end — acknowledged writes that were lost.

pub mod acked;
pub mod analysis;
pub mod classify;
pub mod command;
pub mod history;
pub mod html;
pub mod load;
pub mod lost;
pub mod model;
pub mod percentile;
pub mod readers;
pub mod record;
pub mod report;
pub mod seconds;
pub mod session;
pub mod settings;
pub mod sql;
pub mod windows;
pub mod workload;
