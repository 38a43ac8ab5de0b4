//! `stop-leader`: the leader's container stopped gracefully (SIGTERM), started again once
//! another member leads.

use std::time::Duration;

use crate::fault::steps::leader_down;
use patroni_lab_cluster::host::Service;
use patroni_lab_cluster::findings::leftover;
use crate::fault::{Args, Ctx, Declared, Effects, FaultError, FaultKind, Needs, Timing};
use crate::grade::Expectations;

pub struct StopLeader;

/// What it is, as data: its name, how long it lasts, what it needs and does beyond its steps,
/// what it can leave behind.
const DECLARED: Declared = Declared {
    name: "stop-leader",
    default_secs: None,
    needs: Needs::Containers,
    bound_rule: None,
    effects: Effects {
        in_matrix: true,
        ..Effects::PLAIN
    },
    params: &[],
    leftovers: &[leftover::CONTAINER_NOT_RUNNING],
};

impl FaultKind for StopLeader {
    fn declared(&self) -> Declared {
        DECLARED
    }
    fn describe(&self, _: &Args) -> String {
        "a graceful stop of the leader's service (SIGTERM); started again once the other leads".into()
    }
    /// A graceful stop releases the lock at once; the bound is 2x the worst run measured with
    /// the test build of the probe on a busy machine (docs/measurements/).
    fn expectations(&self, _: &Args, _: Timing) -> Expectations {
        Expectations {
            max_window: Some(Duration::from_secs(8)),
            ..Expectations::base()
        }
    }
    fn run(&self, ctx: &Ctx) -> Result<(), FaultError> {
        leader_down(ctx, &[Service::Stop])
    }
}
