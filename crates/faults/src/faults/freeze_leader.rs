//! `freeze-leader`: every process of the leader frozen at one instant (its host paused) for N s, then thawed.

use std::time::Duration;

use crate::fault::steps::{hold_service, host};
use patroni_lab_cluster::findings::leftover;
use crate::fault::{Args, Ctx, Declared, Effects, FaultError, FaultKind, Needs, Timing};
use crate::grade::Expectations;
use patroni_lab_cluster::guard::Guard;
use patroni_lab_cluster::host::{Action, Service, State};

pub struct FreezeLeader;

/// What it is, as data: its name, how long it lasts, what it needs and does beyond its steps,
/// what it can leave behind.
const DECLARED: Declared = Declared {
    name: "freeze-leader",
    default_secs: Some(40),
    needs: Needs::Containers,
    bound_rule: Some("min(secs, ttl) + 10 s"),
    effects: Effects {
        in_matrix: true,
        lock_expires: true,
        ..Effects::PLAIN
    },
    params: &[],
    leftovers: &[leftover::CONTAINER_NOT_RUNNING],
};

impl FaultKind for FreezeLeader {
    fn declared(&self) -> Declared {
        DECLARED
    }
    fn describe(&self, args: &Args) -> String {
        let secs = args.secs;
        format!(
            "every process of the leader frozen at one instant (its host paused) for {} s, then resumed",
            secs.unwrap_or_default()
        )
    }
    /// The lock expires within ttl of the freeze; a shorter freeze is ridden out. The bound
    /// follows the live ttl (figures: SCENARIOS.md and docs/measurements/).
    fn expectations(&self, args: &Args, t: Timing) -> Expectations {
        let secs = args.secs;
        Expectations {
            max_window: Some(Duration::from_secs(secs.unwrap_or(0).min(t.ttl) + 10)),
            // After the hold (the default 40 s hold: 120 s from the injection, as before).
            whole_within: Duration::from_secs(80),
            ..Expectations::base()
        }
    }
    fn run(&self, ctx: &Ctx) -> Result<(), FaultError> {
        let leader = host(ctx.lab, ctx.leader)?;
        let pause = Action::Service(Service::Pause);
        let undo = Guard::arm(patroni_lab_cluster::host::undo(leader.clone(), &pause).expect("a pause undoes"));
        hold_service(ctx, &leader, Service::Pause, undo, |s| *s == State::Paused)
    }
}
