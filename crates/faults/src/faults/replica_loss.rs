//! `replica-loss`: the replica's container stopped for N s, then started.

use crate::fault::steps::{hold_service, host, start_again};
use patroni_lab_cluster::host::{Service, State};
use patroni_lab_cluster::findings::leftover;
use crate::fault::{Args, Ctx, Declared, Effects, FaultError, FaultKind, Needs, Timing};
use crate::grade::Expectations;

pub struct ReplicaLoss;

/// What it is, as data: its name, how long it lasts, what it needs and does beyond its steps,
/// what it can leave behind.
const DECLARED: Declared = Declared {
    name: "replica-loss",
    default_secs: Some(10),
    needs: Needs::Containers,
    bound_rule: None,
    effects: Effects::PLAIN,
    params: &[],
    leftovers: &[leftover::CONTAINER_NOT_RUNNING],
};

impl FaultKind for ReplicaLoss {
    fn declared(&self) -> Declared {
        DECLARED
    }
    fn describe(&self, args: &Args) -> String {
        let secs = args.secs;
        format!(
            "the replica's service stopped for {} s, then started",
            secs.unwrap_or_default()
        )
    }
    /// Asynchronous replication: clients of the primary do not notice.
    fn expectations(&self, _: &Args, _: Timing) -> Expectations {
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
