//! `replica-loss`: the replica's container stopped for N s, then started.

use crate::fault::steps::{hold_service, host, start_again};
use patroni_lab_cluster::host::{Service, State};
use crate::fault::{Ctx, FaultError, FaultKind, Needs, Timing};
use crate::grade::Expectations;

pub struct ReplicaLoss;

impl FaultKind for ReplicaLoss {
    fn name(&self) -> &'static str {
        "replica-loss"
    }
    fn describe(&self, secs: Option<u64>) -> String {
        format!(
            "the replica's service stopped for {} s, then started",
            secs.unwrap_or_default()
        )
    }
    fn default_secs(&self) -> Option<u64> {
        Some(10)
    }
    fn needs(&self) -> Needs {
        Needs::Containers
    }
    /// Asynchronous replication: clients of the primary do not notice.
    fn expectations(&self, _: Option<u64>, _: Timing) -> Expectations {
        Expectations {
            // After the hold (the default 10 s hold: 90 s from the injection, as before).
            whole_within: std::time::Duration::from_secs(80),
            ..Expectations::writers_unaffected()
        }
    }
    fn run(&self, ctx: &Ctx) -> Result<(), FaultError> {
        let replica = host(ctx.lab, &ctx.replica)?;
        let undo = start_again(&replica);
        hold_service(ctx, &replica, Service::Stop, undo, |s| *s != State::Running)
    }
}
