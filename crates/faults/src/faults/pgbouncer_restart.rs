//! `pgbouncer-restart`: PgBouncer restarted (its service restarted on its host), proven by a new start time.

use std::time::Duration;

use crate::fault::steps::restart_service;
use patroni_lab_cluster::findings::leftover;
use crate::fault::{Args, Ctx, Declared, Effects, FaultError, FaultKind, Needs, Timing};
use crate::grade::Expectations;
use patroni_lab_cluster::lab;

pub struct PgbouncerRestart;

/// What it is, as data: its name, how long it lasts, what it needs and does beyond its steps,
/// what it can leave behind.
const DECLARED: Declared = Declared {
    name: "pgbouncer-restart",
    default_secs: None,
    needs: Needs::Containers,
    bound_rule: None,
    effects: Effects::PLAIN,
    params: &[],
    leftovers: &[leftover::CONTAINER_NOT_RUNNING],
};

impl FaultKind for PgbouncerRestart {
    fn declared(&self) -> Declared {
        DECLARED
    }
    fn describe(&self, _: &Args) -> String {
        "PgBouncer's service restarted".into()
    }
    /// Clients reconnect once it listens again; the bound is over 2x the worst measured
    /// (docs/measurements/).
    fn expectations(&self, _: &Args, _: Timing) -> Expectations {
        Expectations {
            max_window: Some(Duration::from_secs(5)),
            ..Expectations::base()
        }
    }
    fn run(&self, ctx: &Ctx) -> Result<(), FaultError> {
        restart_service(ctx, lab::PGBOUNCER)
    }
}
