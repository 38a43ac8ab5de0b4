//! `pgbouncer-restart`: PgBouncer restarted (its service restarted on its host), proven by a new start time.

use std::time::Duration;

use crate::fault::steps::restart_service;
use crate::fault::{Ctx, FaultError, FaultKind, Needs, Timing};
use crate::grade::Expectations;
use patroni_lab_cluster::lab;

pub struct PgbouncerRestart;

impl FaultKind for PgbouncerRestart {
    fn name(&self) -> &'static str {
        "pgbouncer-restart"
    }
    fn describe(&self, _: Option<u64>) -> String {
        "PgBouncer's service restarted".into()
    }
    fn needs(&self) -> Needs {
        Needs::Containers
    }
    /// Clients reconnect once it listens again; the bound is over 2x the worst measured
    /// (docs/measurements/).
    fn expectations(&self, _: Option<u64>, _: Timing) -> Expectations {
        Expectations {
            max_window: Some(Duration::from_secs(5)),
            ..Expectations::base()
        }
    }
    fn run(&self, ctx: &Ctx) -> Result<(), FaultError> {
        restart_service(ctx, lab::PGBOUNCER)
    }
}
